/*-------------------------------------------------------------------------
 *
 * keystore.c
 *	  Table access: probing, storing, reading and deleting rows of
 *	  idempotency_keys, and the guards registry idempotency_guards.
 *
 * What to do with a key is decided in claim.c, from a probe of the primary
 * key index (keystore_probe); the key row is written once, with its result
 * (keystore_insert_result).  The expiry rule lives here too (key_expired,
 * KEY_EXPIRED_SQL).
 *
 * A key has at most one live row, and any number of expired ones: a new
 * request under an expired key inserts a row of its own and leaves the old
 * one to the purge, never touching it, so that it never waits for a purge
 * deleting it at that very moment.  The primary key (owner, scope, key,
 * expires_at) lets them coexist; that a key has one live row is the key
 * lock's doing (claim.c), as is every other decision about a key.
 *
 * The extension's own statements run as the owner of the keys table, the
 * way ri_triggers.c runs its queries as the owner of the referenced table:
 * ordinary roles have no write privilege on it.  Every statement is
 * prepared once per backend with schema-qualified names and operators, so
 * search_path cannot redirect it.
 *
 * The caller must be connected to SPI.
 *
 * src/keystore.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/stratnum.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "idempotency.h"

#define KEYS_TABLE_NAME "idempotency_keys"
#define GUARDS_TABLE_NAME "idempotency_guards"

/* more indexes than this on the keys table: keystore_insert_result uses SQL */
#define KEYS_MAX_INDEXES 4

/* The extension's own statements, prepared once per backend. */
typedef enum KeyStatement
{
	KS_INSERT_RESULT,
	KS_LOOKUP,
	KS_FORGET,
	KS_PURGE_EXPIRED,
	KS_DROPPED_OWNERS,
	KS_PURGE_OWNER,
	KS_FORGET_SCOPE,
	KS_SCOPE_HAS_KEYS,
	KS_GUARD_OF_TABLE,
	KS_TABLE_OF_GUARD,
	KS_GUARD_REGISTER,
	KS_GUARD_UNREGISTER,
	KS_NUM_STATEMENTS
} KeyStatement;

typedef struct KeyStatementDef
{
	const char *sql;			/* with @keys@ and @guards@ for the tables */
	int			nargs;
	Oid			argtypes[7];
} KeyStatementDef;

/* a key: the prefix (owner, scope, key) of the primary key, as $1, $2, $3 */
#define KEY_IS_SQL \
	" owner OPERATOR(pg_catalog.=) $1 AND scope OPERATOR(pg_catalog.=) $2" \
	" AND key OPERATOR(pg_catalog.=) $3"
#define KEY_ARGTYPES OIDOID, TEXTOID, TEXTOID

static const KeyStatementDef key_statements[KS_NUM_STATEMENTS] = {
	/* a new key's row, when the table has more than its primary key */
	[KS_INSERT_RESULT] = {
		"INSERT INTO @keys@"
		" (created_at, expires_at, owner, scope, key, fingerprint, command, result)"
		" VALUES (pg_catalog.now(), pg_catalog.now() OPERATOR(pg_catalog.+) $6,"
		" $1, $2, $3, $4, $7, $5)",
		7, {KEY_ARGTYPES, BYTEAOID, JSONBOID, INTERVALOID, TEXTOID}
	},
	[KS_LOOKUP] = {
		"SELECT command, result FROM @keys@"
		" WHERE" KEY_IS_SQL " AND NOT (" KEY_EXPIRED_SQL ")",
		3, {KEY_ARGTYPES}
	},

	/*
	 * The live row only: expired rows of the key (there may be several, see
	 * keystore_probe) are the purge's, which may be deleting them right now.
	 */
	[KS_FORGET] = {
		"DELETE FROM @keys@ WHERE" KEY_IS_SQL
		" AND NOT (" KEY_EXPIRED_SQL ")",
		3, {KEY_ARGTYPES}
	},

	/*
	 * A batch of expired keys, read through the index on expires_at: the
	 * ORDER BY keeps the planner on it, whatever share of the table has
	 * expired, so a batch reads its own keys and not the live ones.  SKIP
	 * LOCKED: two purges at once split the work instead of queueing.
	 */
	[KS_PURGE_EXPIRED] = {
		"DELETE FROM @keys@ WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
		" SELECT k.ctid FROM @keys@ k WHERE k." KEY_EXPIRED_SQL
		" ORDER BY k.expires_at LIMIT $1 FOR UPDATE SKIP LOCKED))",
		1, {INT8OID}
	},

	/*
	 * Owners of keys that are no longer roles: a later role given the same
	 * OID must not inherit their keys (see scope.c).  A skip scan of the
	 * primary key, one probe per owner, instead of a read of every key.
	 */
	[KS_DROPPED_OWNERS] = {
		"WITH RECURSIVE o(owner) AS ("
		" SELECT (SELECT k.owner::pg_catalog.oid FROM @keys@ k"
		" WHERE k.owner::pg_catalog.oid OPERATOR(pg_catalog.>) 0::pg_catalog.oid"
		" ORDER BY k.owner LIMIT 1)"
		" UNION ALL"
		" SELECT (SELECT k.owner::pg_catalog.oid FROM @keys@ k"
		" WHERE k.owner::pg_catalog.oid OPERATOR(pg_catalog.>) o.owner"
		" ORDER BY k.owner LIMIT 1)"
		" FROM o WHERE o.owner IS NOT NULL)"
		" SELECT o.owner FROM o WHERE o.owner IS NOT NULL AND NOT EXISTS ("
		" SELECT FROM pg_catalog.pg_roles r"
		" WHERE r.oid OPERATOR(pg_catalog.=) o.owner)",
		0, {InvalidOid}
	},

	/* a batch of one such owner's keys, through the primary key */
	[KS_PURGE_OWNER] = {
		"DELETE FROM @keys@ WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
		" SELECT k.ctid FROM @keys@ k"
		" WHERE k.owner OPERATOR(pg_catalog.=) $2"
		" ORDER BY k.owner, k.scope, k.key LIMIT $1 FOR UPDATE SKIP LOCKED))",
		2, {INT8OID, OIDOID}
	},
	[KS_FORGET_SCOPE] = {
		"DELETE FROM @keys@ WHERE owner OPERATOR(pg_catalog.=) $1"
		" AND scope OPERATOR(pg_catalog.=) $2",
		2, {OIDOID, TEXTOID}
	},
	[KS_SCOPE_HAS_KEYS] = {
		"SELECT FROM @keys@ WHERE owner OPERATOR(pg_catalog.=) $1"
		" AND scope OPERATOR(pg_catalog.=) $2 LIMIT 1",
		2, {OIDOID, TEXTOID}
	},
	[KS_GUARD_OF_TABLE] = {
		"SELECT guard_id FROM @guards@ WHERE tbl OPERATOR(pg_catalog.=) $1",
		1, {OIDOID}
	},
	[KS_TABLE_OF_GUARD] = {
		"SELECT tbl FROM @guards@ WHERE guard_id OPERATOR(pg_catalog.=) $1",
		1, {TEXTOID}
	},
	[KS_GUARD_REGISTER] = {
		"INSERT INTO @guards@ (guard_id, tbl) VALUES ($1, $2)",
		2, {TEXTOID, OIDOID}
	},
	[KS_GUARD_UNREGISTER] = {
		"DELETE FROM @guards@ WHERE tbl OPERATOR(pg_catalog.=) $1",
		1, {OIDOID}
	},
};

static Jsonb *stored_result(TupleTableSlot *slot);

/* Plans for key_statements, valid for the keys table cached_relid. */
static Oid	cached_relid = InvalidOid;
static SPIPlanPtr cached_plans[KS_NUM_STATEMENTS];

/*
 * Where each calling function's keys table is, and who owns it, looked up
 * once rather than on every call.  An invalidation of a cached table (DROP
 * EXTENSION, ALTER TABLE ... OWNER) empties the cache.
 */
#define OPEN_CACHE_SIZE 8

typedef struct OpenCacheEntry
{
	Oid			fn_oid;
	Oid			relid;
	Oid			owner;
} OpenCacheEntry;

static OpenCacheEntry open_cache[OPEN_CACHE_SIZE];
static int	open_cache_used = 0;
static int	open_cache_next = 0;

static void
open_cache_invalidate(Datum arg, Oid relid)
{
	int			i;

	for (i = 0; i < open_cache_used; i++)
	{
		if (!OidIsValid(relid) || open_cache[i].relid == relid)
		{
			open_cache_used = 0;
			open_cache_next = 0;
			return;
		}
	}
}

void
keystore_init(void)
{
	CacheRegisterRelcacheCallback(open_cache_invalidate, (Datum) 0);
}

/*
 * Find the keys table of the extension whose function fn_oid is being
 * called: it lives in the same schema as the function.
 */
void
keystore_open(KeyStore *ks, Oid fn_oid)
{
	OpenCacheEntry *entry = NULL;
	int			i;

	for (i = 0; i < open_cache_used; i++)
	{
		if (open_cache[i].fn_oid == fn_oid)
		{
			entry = &open_cache[i];
			break;
		}
	}

	if (entry == NULL)
	{
		Oid			relid;
		HeapTuple	tuple;

		relid = get_relname_relid(KEYS_TABLE_NAME, get_func_namespace(fn_oid));
		if (!OidIsValid(relid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("table \"%s\" of extension idempotency is missing",
							KEYS_TABLE_NAME),
					 errhint("Drop and recreate the extension.")));
		/*
		 * The library of 1.1 with the tables of 1.0: the server's package
		 * was updated, the extension in this database not yet.
		 */
		if (get_attnum(relid, "owner") != Anum_keys_owner)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("extension idempotency must be updated to version 1.1 before use"),
					 errdetail("Table \"%s\" has the layout of an earlier version.",
							   KEYS_TABLE_NAME),
					 errhint("Run ALTER EXTENSION idempotency UPDATE.")));
		tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
		if (!HeapTupleIsValid(tuple))
			elog(ERROR, "cache lookup failed for relation %u", relid);

		entry = &open_cache[open_cache_next];
		open_cache_next = (open_cache_next + 1) % OPEN_CACHE_SIZE;
		if (open_cache_used < OPEN_CACHE_SIZE)
			open_cache_used++;
		entry->fn_oid = fn_oid;
		entry->relid = relid;
		entry->owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
		ReleaseSysCache(tuple);
	}
	ks->relid = entry->relid;
	ks->owner = entry->owner;
	ks->beside_shard = false;
	ks->tenant = (Datum) 0;
	citus_check_keys_table(ks->relid);

	/* The extension was dropped and created again: its plans are stale. */
	if (ks->relid != cached_relid)
	{
		for (i = 0; i < KS_NUM_STATEMENTS; i++)
		{
			if (cached_plans[i] != NULL)
				SPI_freeplan(cached_plans[i]);
			cached_plans[i] = NULL;
		}
		cached_relid = ks->relid;
	}
}

/* Append a statement template with its table names filled in. */
static void
append_statement(StringInfo buf, const char *template, const char *keys,
				 const char *guards)
{
	const char *p = template;

	while (*p)
	{
		if (strncmp(p, "@keys@", 6) == 0)
		{
			appendStringInfoString(buf, keys);
			p += 6;
		}
		else if (strncmp(p, "@guards@", 8) == 0)
		{
			appendStringInfoString(buf, guards);
			p += 8;
		}
		else
			appendStringInfoChar(buf, *p++);
	}
}

/*
 * Run one of our own statements as the owner of the keys table.  Errors
 * restore the caller's user id through transaction abort.
 */
static int
run_as_owner(KeyStore *ks, KeyStatement which, Datum *values,
			 const char *nulls, int expected_rc)
{
	Oid			save_userid;
	int			save_sec_context;
	int			rc;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(ks->owner,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);

	if (cached_plans[which] == NULL)
	{
		const KeyStatementDef *def = &key_statements[which];
		char	   *schema = get_namespace_name(get_rel_namespace(ks->relid));
		StringInfoData sql;
		SPIPlanPtr	plan;

		initStringInfo(&sql);
		append_statement(&sql, def->sql,
						 quote_qualified_identifier(schema, KEYS_TABLE_NAME),
						 quote_qualified_identifier(schema, GUARDS_TABLE_NAME));
		plan = SPI_prepare(sql.data, def->nargs, (Oid *) def->argtypes);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s",
				 sql.data, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		cached_plans[which] = plan;
	}

	rc = SPI_execute_plan(cached_plans[which], values, nulls, false, 0);
	if (rc != expected_rc)
		elog(ERROR, "SPI_execute_plan of idempotency statement %d returned %s",
			 (int) which, SPI_result_code_string(rc));

	SetUserIdAndSecContext(save_userid, save_sec_context);
	return rc;
}

/* Is a key that expires at expires_at expired now? */
bool
key_expired(TimestampTz expires_at)
{
	return expires_at <= GetCurrentTransactionStartTimestamp();
}

/*
 * Look the key up in the primary key index with a dirty snapshot, which
 * shows rows of transactions still in flight (see claim.c for what each
 * outcome means).  Expired rows count as absent whoever holds them: the
 * purge may be deleting one right now, and nobody waits for that.  Copies
 * of the stored fingerprint and result go to the current memory context.
 */
void
keystore_probe(KeyStore *ks, const KeyScope *scope, const char *key,
			   KeyProbe *probe)
{
	Relation	rel;
	Relation	index;
	SnapshotData dirty;
	ScanKeyData skey[Nkeys_key];
	IndexScanDesc scan;
	TupleTableSlot *slot;

	memset(probe, 0, sizeof(KeyProbe));
	probe->state = PROBE_ABSENT;

	rel = table_open(ks->relid, AccessShareLock);
	index = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
	InitDirtySnapshot(dirty);

	ScanKeyEntryInitialize(&skey[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
						   index->rd_indcollation[0], F_OIDEQ,
						   ObjectIdGetDatum(scope->owner));
	ScanKeyEntryInitialize(&skey[1], 0, 2, BTEqualStrategyNumber, InvalidOid,
						   index->rd_indcollation[1], F_TEXTEQ,
						   CStringGetTextDatum(scope->scope));
	ScanKeyEntryInitialize(&skey[2], 0, 3, BTEqualStrategyNumber, InvalidOid,
						   index->rd_indcollation[2], F_TEXTEQ,
						   CStringGetTextDatum(key));

	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, index, &dirty, Nkeys_key, 0);
	index_rescan(scan, skey, Nkeys_key, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d;

		/* inserted by a transaction still in flight: it holds the key */
		if (TransactionIdIsValid(dirty.xmin))
		{
			probe->state = PROBE_IN_FLIGHT;
			probe->holder = dirty.xmin;
			break;
		}

		d = slot_getattr(slot, Anum_keys_expires_at, &isnull);
		if (key_expired(DatumGetTimestampTz(d)))
			continue;

		/* live, and being deleted (idem_forget) by a transaction in flight */
		if (TransactionIdIsValid(dirty.xmax))
		{
			probe->state = PROBE_IN_FLIGHT;
			probe->holder = dirty.xmax;
			break;
		}

		probe->state = PROBE_FOUND;

		/*
		 * A transaction-snapshot caller may only replay rows its snapshot
		 * sees; our own rows it always sees, even ones inserted by the
		 * current command, which the snapshot's command id would hide.
		 */
		probe->visible = true;
		if (IsolationUsesXactSnapshot())
		{
			bool		should_free;
			HeapTuple	tuple = ExecFetchSlotHeapTuple(slot, false, &should_free);
			TransactionId xmin = HeapTupleHeaderGetXmin(tuple->t_data);

			probe->visible = TransactionIdIsCurrentTransactionId(xmin) ||
				table_tuple_satisfies_snapshot(rel, slot, GetTransactionSnapshot());
			if (should_free)
				heap_freetuple(tuple);
		}

		d = slot_getattr(slot, Anum_keys_fingerprint, &isnull);
		if (!isnull)
			probe->fingerprint = DatumGetByteaPCopy(d);
		probe->result = stored_result(slot);
		break;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
}

/*
 * The result object of the key row in slot, in the current memory context,
 * or NULL: idem_execute's results are stored as their command ("INSERT 1")
 * and rows array (result_join puts them together again); idem_finish's
 * responses, and results stored by 1.0, as they are.
 */
static Jsonb *
stored_result(TupleTableSlot *slot)
{
	bool		isnull;
	bool		command_null;
	Datum		d = slot_getattr(slot, Anum_keys_result, &isnull);
	Datum		command = slot_getattr(slot, Anum_keys_command, &command_null);

	if (isnull)
		return NULL;
	if (command_null)
		return DatumGetJsonbPCopy(d);
	return result_join(TextDatumGetCString(command), DatumGetJsonbP(d));
}

/* The primary key's values, as the first three arguments of a statement. */
static void
set_key_values(Datum *values, const KeyScope *scope, const char *key)
{
	values[0] = ObjectIdGetDatum(scope->owner);
	values[1] = CStringGetTextDatum(scope->scope);
	values[2] = CStringGetTextDatum(key);
}

/*
 * KS_INSERT_RESULT's seven values.  A guard key has neither fingerprint nor
 * result; only idem_execute's results have a command.
 */
static void
run_result_statement(KeyStore *ks, KeyStatement which, const KeyScope *scope,
					 const char *key, bytea *fingerprint, Interval *ttl,
					 const char *command, Jsonb *result, int expected_rc)
{
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

	set_key_values(values, scope, key);
	values[3] = PointerGetDatum(fingerprint);
	values[4] = JsonbPGetDatum(result);
	values[5] = IntervalPGetDatum(ttl);
	values[6] = command != NULL ? CStringGetTextDatum(command) : (Datum) 0;
	if (fingerprint == NULL)
		nulls[3] = 'n';
	if (result == NULL)
		nulls[4] = 'n';
	if (command == NULL)
		nulls[6] = 'n';
	run_as_owner(ks, which, values, nulls, expected_rc);
}

/*
 * Open the table's indexes for keystore_insert_result, if each is one it
 * can fill by itself: plain columns, no predicate, no exclusion constraint,
 * checked at once if unique.  Those the extension makes (the primary key,
 * the one on expires_at) all are.  False, with nothing left open, if not.
 */
static bool
open_plain_indexes(Relation rel, Relation *indexes, IndexInfo **infos,
				   int *nindexes)
{
	List	   *oids = RelationGetIndexList(rel);
	ListCell   *lc;
	int			n = 0;
	bool		plain = list_length(oids) <= KEYS_MAX_INDEXES;

	foreach(lc, oids)
	{
		Relation	index;
		IndexInfo  *info;

		if (!plain)
			break;
		index = index_open(lfirst_oid(lc), RowExclusiveLock);
		info = BuildIndexInfo(index);
		indexes[n] = index;
		infos[n] = info;
		n++;
		plain = info->ii_Expressions == NIL && info->ii_Predicate == NIL &&
			info->ii_ExclusionOps == NULL && index->rd_index->indimmediate &&
			index->rd_index->indisready;
	}
	list_free(oids);
	if (!plain)
	{
		while (n > 0)
			index_close(indexes[--n], RowExclusiveLock);
	}
	*nindexes = n;
	return plain;
}

/*
 * Insert the key row of a statement that just ran, with its result.
 *
 * This is the one write of every new key, so it skips the executor: a
 * tuple into the table through its access method and an entry into its
 * primary key, as CatalogTupleInsert does for catalogs.  The unique check
 * still runs (UNIQUE_CHECK_YES), on (owner, scope, key, expires_at): an
 * expired row of the key, whoever is deleting it, never conflicts with the
 * new one, which expires later.  The index on expires_at (the purge's) is
 * filled the same way.  If someone gave the table a trigger or an index
 * this cannot fill (an expression or partial index, say), the row goes in
 * through an ordinary INSERT instead.  No policy applies to the owner.
 */
void
keystore_insert_result(KeyStore *ks, const KeyScope *scope, const char *key,
					   bytea *fingerprint, Interval *ttl, const char *command,
					   Jsonb *result)
{
	Relation	rel;
	Relation	indexes[KEYS_MAX_INDEXES];
	IndexInfo  *infos[KEYS_MAX_INDEXES];
	int			nindexes;
	int			i;
	TupleTableSlot *slot;
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	rel = table_open(ks->relid, RowExclusiveLock);
	if (rel->trigdesc != NULL ||
		!open_plain_indexes(rel, indexes, infos, &nindexes))
	{
		/* our statements name idempotency_keys, not a shard */
		if (ks->beside_shard)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("colocated keys shard \"%s\" has a trigger or an index on an expression or part of its rows",
							RelationGetRelationName(rel)),
					 errhint("Drop them from the colocated keys table.")));
		table_close(rel, NoLock);
		run_result_statement(ks, KS_INSERT_RESULT, scope, key, fingerprint,
							 ttl, command, result, SPI_OK_INSERT);
		return;
	}

	slot = table_slot_create(rel, NULL);
	ExecClearTuple(slot);
	memset(slot->tts_isnull, false, sizeof(bool) * slot->tts_tupleDescriptor->natts);
	slot->tts_values[Anum_keys_owner - 1] = ObjectIdGetDatum(scope->owner);
	slot->tts_values[Anum_keys_scope - 1] = CStringGetTextDatum(scope->scope);
	slot->tts_values[Anum_keys_key - 1] = CStringGetTextDatum(key);
	slot->tts_values[Anum_keys_fingerprint - 1] = PointerGetDatum(fingerprint);
	slot->tts_isnull[Anum_keys_fingerprint - 1] = fingerprint == NULL;
	slot->tts_values[Anum_keys_command - 1] =
		command != NULL ? CStringGetTextDatum(command) : (Datum) 0;
	slot->tts_isnull[Anum_keys_command - 1] = command == NULL;
	slot->tts_values[Anum_keys_result - 1] = JsonbPGetDatum(result);
	slot->tts_isnull[Anum_keys_result - 1] = result == NULL;
	slot->tts_values[Anum_keys_created_at - 1] = TimestampTzGetDatum(now);
	slot->tts_values[Anum_keys_expires_at - 1] =
		DirectFunctionCall2(timestamptz_pl_interval, TimestampTzGetDatum(now),
							IntervalPGetDatum(ttl));
	if (ks->beside_shard)
		slot->tts_values[Anum_keys_tenant - 1] = ks->tenant;
	ExecStoreVirtualTuple(slot);

	table_tuple_insert(rel, slot, GetCurrentCommandId(true), 0, NULL);

	/* as CatalogIndexInsert: plain columns need no executor state */
	for (i = 0; i < nindexes; i++)
	{
		Datum		values[INDEX_MAX_KEYS];
		bool		isnull[INDEX_MAX_KEYS];

		FormIndexDatum(infos[i], slot, NULL, values, isnull);
		index_insert(indexes[i], values, isnull, &slot->tts_tid, rel,
					 indexes[i]->rd_index->indisunique ?
					 UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
					 false, infos[i]);
		index_close(indexes[i], NoLock);
	}

	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, NoLock);
}

/*
 * The stored result of a live key, or NULL.  The copy lives in the memory
 * context that was current at SPI_connect, so it outlives SPI_finish.
 */
Jsonb *
keystore_lookup(KeyStore *ks, const KeyScope *scope, const char *key)
{
	Datum		values[Nkeys_key];
	Datum		d;
	Datum		command;
	bool		isnull;
	bool		command_null;

	set_key_values(values, scope, key);
	run_as_owner(ks, KS_LOOKUP, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return NULL;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (isnull)
		return NULL;
	command = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
							&command_null);
	if (!command_null)
		d = JsonbPGetDatum(result_join(TextDatumGetCString(command),
									   DatumGetJsonbP(d)));
	return (Jsonb *) SPI_datumTransfer(d, false, -1);
}

/* Delete a key's live row; true if there was one. */
bool
keystore_forget(KeyStore *ks, const KeyScope *scope, const char *key)
{
	Datum		values[Nkeys_key];

	set_key_values(values, scope, key);
	run_as_owner(ks, KS_FORGET, values, NULL, SPI_OK_DELETE);
	return SPI_processed > 0;
}

/*
 * Delete at most max_rows expired keys and keys of dropped roles (all of
 * them if max_rows < 0).  Each statement reads an index, never the whole
 * table: the cost of a batch follows the keys it deletes, not the number
 * of live keys.
 */
int64
keystore_purge(KeyStore *ks, int64 max_rows)
{
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	int64		purged;
	Oid		   *owners;
	uint64		nowners;
	uint64		i;

	values[0] = Int64GetDatum(max_rows);
	if (max_rows < 0)
		nulls[0] = 'n';			/* LIMIT NULL: no limit */
	run_as_owner(ks, KS_PURGE_EXPIRED, values, nulls, SPI_OK_DELETE);
	purged = (int64) SPI_processed;
	if (max_rows >= 0 && purged >= max_rows)
		return purged;

	run_as_owner(ks, KS_DROPPED_OWNERS, NULL, NULL, SPI_OK_SELECT);
	nowners = SPI_processed;
	owners = palloc(sizeof(Oid) * Max(nowners, 1));
	for (i = 0; i < nowners; i++)
	{
		bool		isnull;

		owners[i] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
												   SPI_tuptable->tupdesc,
												   1, &isnull));
	}
	for (i = 0; i < nowners && (max_rows < 0 || purged < max_rows); i++)
	{
		if (max_rows >= 0)
			values[0] = Int64GetDatum(max_rows - purged);
		values[1] = ObjectIdGetDatum(owners[i]);
		run_as_owner(ks, KS_PURGE_OWNER, values, nulls, SPI_OK_DELETE);
		purged += (int64) SPI_processed;
	}
	pfree(owners);
	return purged;
}

/* Delete every key of a scope, live or not; returns how many. */
int64
keystore_forget_scope(KeyStore *ks, const KeyScope *scope)
{
	Datum		values[2];

	values[0] = ObjectIdGetDatum(scope->owner);
	values[1] = CStringGetTextDatum(scope->scope);
	run_as_owner(ks, KS_FORGET_SCOPE, values, NULL, SPI_OK_DELETE);
	return (int64) SPI_processed;
}

/* Does a scope have any key row, live or expired? */
bool
keystore_scope_has_keys(KeyStore *ks, const KeyScope *scope)
{
	Datum		values[2];

	values[0] = ObjectIdGetDatum(scope->owner);
	values[1] = CStringGetTextDatum(scope->scope);
	run_as_owner(ks, KS_SCOPE_HAS_KEYS, values, NULL, SPI_OK_SELECT);
	return SPI_processed > 0;
}

/*
 * The guards registry: which table each guard id belongs to.  Only
 * idem_guard writes it, as the extension's owner, after checking that the
 * caller owns the table; the guard trigger trusts its id argument only if
 * the registry gives it to the trigger's table.  Trigger arguments are
 * readable by everyone, so without this any role could point a trigger of
 * its own at another table's guard scope.
 */

/* The guard id registered for a table, or NULL. */
char *
keystore_guard_of_table(KeyStore *ks, Oid relid)
{
	Datum		values[1];

	values[0] = ObjectIdGetDatum(relid);
	run_as_owner(ks, KS_GUARD_OF_TABLE, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return NULL;
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/* The table a guard id is registered for, or InvalidOid. */
Oid
keystore_table_of_guard(KeyStore *ks, const char *guard_id)
{
	Datum		values[1];
	bool		isnull;

	values[0] = CStringGetTextDatum(guard_id);
	run_as_owner(ks, KS_TABLE_OF_GUARD, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return InvalidOid;
	return DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
}

/* Register a guard id for a table, replacing whatever was registered. */
void
keystore_register_guard(KeyStore *ks, const char *guard_id, Oid relid)
{
	Datum		values[2];

	keystore_unregister_guard(ks, relid);
	values[0] = CStringGetTextDatum(guard_id);
	values[1] = ObjectIdGetDatum(relid);
	run_as_owner(ks, KS_GUARD_REGISTER, values, NULL, SPI_OK_INSERT);
}

void
keystore_unregister_guard(KeyStore *ks, Oid relid)
{
	Datum		values[1];

	values[0] = ObjectIdGetDatum(relid);
	run_as_owner(ks, KS_GUARD_UNREGISTER, values, NULL, SPI_OK_DELETE);
}
