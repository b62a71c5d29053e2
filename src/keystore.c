/*-------------------------------------------------------------------------
 *
 * keystore.c
 *	  Claiming, storing, reading and deleting rows of idempotency_keys.
 *
 * idem_execute decides what to do with a key in claim.c, from a probe of
 * the primary key index (keystore_probe), and writes the key row once, with
 * its result (keystore_insert_result).  The dedup guard has no statement to
 * run, so its claim (keystore_claim_guard_key) is a single
 * INSERT ... ON CONFLICT DO NOTHING, whose unique-index wait gives the same
 * concurrency rules: wait for an in-flight holder, then skip (READ
 * COMMITTED) or 40001 (REPEATABLE READ, SERIALIZABLE), or insert if it
 * aborted.
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

/* The extension's own statements, prepared once per backend. */
typedef enum KeyStatement
{
	KS_CLAIM,
	KS_FETCH,
	KS_RENEW,
	KS_RENEW_RESULT,
	KS_INSERT_RESULT,
	KS_LOOKUP,
	KS_FORGET,
	KS_PURGE,
	KS_FORGET_SCOPE,
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
	Oid			argtypes[5];
} KeyStatementDef;

static const KeyStatementDef key_statements[KS_NUM_STATEMENTS] = {
	/* the guard's claim: one row per key, no fingerprint, no result */
	[KS_CLAIM] = {
		"INSERT INTO @keys@ (scope, key, expires_at)"
		" VALUES ($1, $2, pg_catalog.now() OPERATOR(pg_catalog.+) $3)"
		" ON CONFLICT (scope, key) DO NOTHING RETURNING true",
		3, {TEXTOID, TEXTOID, INTERVALOID}
	},
	[KS_FETCH] = {
		"SELECT expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
		" FROM @keys@"
		" WHERE scope OPERATOR(pg_catalog.=) $1 AND key OPERATOR(pg_catalog.=) $2",
		2, {TEXTOID, TEXTOID}
	},
	/* an expired key counts as absent: take it over in place */
	[KS_RENEW] = {
		"UPDATE @keys@ SET created_at = pg_catalog.now(),"
		" expires_at = pg_catalog.now() OPERATOR(pg_catalog.+) $3"
		" WHERE scope OPERATOR(pg_catalog.=) $1 AND key OPERATOR(pg_catalog.=) $2"
		" AND expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
		" RETURNING true",
		3, {TEXTOID, TEXTOID, INTERVALOID}
	},
	/* an expired key taken over by a new request (see claim.c) */
	[KS_RENEW_RESULT] = {
		"UPDATE @keys@ SET fingerprint = $3, result = $4,"
		" created_at = pg_catalog.now(),"
		" expires_at = pg_catalog.now() OPERATOR(pg_catalog.+) $5"
		" WHERE scope OPERATOR(pg_catalog.=) $1 AND key OPERATOR(pg_catalog.=) $2"
		" AND expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()",
		5, {TEXTOID, TEXTOID, BYTEAOID, JSONBOID, INTERVALOID}
	},
	/* a new key's row, when the table has more than its primary key */
	[KS_INSERT_RESULT] = {
		"INSERT INTO @keys@ (scope, key, fingerprint, result, created_at, expires_at)"
		" VALUES ($1, $2, $3, $4, pg_catalog.now(),"
		" pg_catalog.now() OPERATOR(pg_catalog.+) $5)",
		5, {TEXTOID, TEXTOID, BYTEAOID, JSONBOID, INTERVALOID}
	},
	[KS_LOOKUP] = {
		"SELECT result FROM @keys@"
		" WHERE scope OPERATOR(pg_catalog.=) $1 AND key OPERATOR(pg_catalog.=) $2"
		" AND expires_at OPERATOR(pg_catalog.>) pg_catalog.now()",
		2, {TEXTOID, TEXTOID}
	},
	[KS_FORGET] = {
		"DELETE FROM @keys@"
		" WHERE scope OPERATOR(pg_catalog.=) $1 AND key OPERATOR(pg_catalog.=) $2"
		" RETURNING expires_at OPERATOR(pg_catalog.>) pg_catalog.now()",
		2, {TEXTOID, TEXTOID}
	},
	/* SKIP LOCKED: two purges at once split the work instead of queueing */
	[KS_PURGE] = {
		"DELETE FROM @keys@ WHERE ctid OPERATOR(pg_catalog.=) ANY (ARRAY("
		" SELECT ctid FROM @keys@"
		" WHERE expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
		" LIMIT $1 FOR UPDATE SKIP LOCKED))",
		1, {INT8OID}
	},
	[KS_FORGET_SCOPE] = {
		"DELETE FROM @keys@ WHERE scope OPERATOR(pg_catalog.=) $1",
		1, {TEXTOID}
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

/* Plans for key_statements, valid for the keys table cached_relid. */
static Oid	cached_relid = InvalidOid;
static SPIPlanPtr cached_plans[KS_NUM_STATEMENTS];

/*
 * Where each calling function's keys table is, and who owns it, looked up
 * once rather than on every call; likewise the current role's scope.  An
 * invalidation of a cached table (DROP EXTENSION, ALTER TABLE ... OWNER)
 * empties the first cache, any change to pg_authid (a rename) the second.
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

static Oid	scope_role = InvalidOid;
static char *scope_of_role = NULL;

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

static void
role_scope_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	scope_role = InvalidOid;
}

void
keystore_init(void)
{
	CacheRegisterRelcacheCallback(open_cache_invalidate, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, role_scope_invalidate, (Datum) 0);
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

/*
 * The scope of the calling role's keys: 'role:' and the role's name.  A copy
 * in the current memory context: a nested call as another role may replace
 * the cached one.
 */
char *
keystore_role_scope(void)
{
	Oid			role = GetUserId();

	if (role != scope_role)
	{
		char	   *scope = MemoryContextStrdup(TopMemoryContext,
												psprintf("role:%s",
														 GetUserNameFromId(role, false)));

		if (scope_of_role != NULL)
			pfree(scope_of_role);
		scope_of_role = scope;
		scope_role = role;
	}
	return pstrdup(scope_of_role);
}

/* IK002: the key is held by a transaction in flight (the holder if known). */
void
raise_key_in_flight(const char *key, TransactionId holder)
{
	ereport(ERROR,
			(errcode(ERRCODE_IDEM_KEY_IN_FLIGHT),
			 errmsg("idempotency key \"%s\" is held by another transaction in flight",
					key),
			 TransactionIdIsValid(holder) ?
			 errdetail("Transaction %u is running a request with this key.",
					   holder) :
			 errdetail("Another transaction is running a request with this key."),
			 errhint("Retry after that transaction ends, or set idempotency.wait to on to wait for it.")));
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

/*
 * Look the key up in the primary key index with a dirty snapshot, which
 * shows rows of transactions still in flight (see claim.c for what each
 * outcome means).  Copies of the stored fingerprint and result go to the
 * current memory context.
 */
void
keystore_probe(KeyStore *ks, const char *scope, const char *key,
			   KeyProbe *probe)
{
	Relation	rel;
	Relation	index;
	SnapshotData dirty;
	ScanKeyData skey[2];
	IndexScanDesc scan;
	TupleTableSlot *slot;

	memset(probe, 0, sizeof(KeyProbe));
	probe->state = PROBE_ABSENT;

	rel = table_open(ks->relid, AccessShareLock);
	index = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
	InitDirtySnapshot(dirty);

	ScanKeyEntryInitialize(&skey[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
						   index->rd_indcollation[0], F_TEXTEQ,
						   CStringGetTextDatum(scope));
	ScanKeyEntryInitialize(&skey[1], 0, 2, BTEqualStrategyNumber, InvalidOid,
						   index->rd_indcollation[1], F_TEXTEQ,
						   CStringGetTextDatum(key));

	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, index, &dirty, 2, 0);
	index_rescan(scan, skey, 2, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d;

		/* inserted, or being deleted, by a transaction still in flight */
		if (TransactionIdIsValid(dirty.xmin) || TransactionIdIsValid(dirty.xmax))
		{
			probe->state = PROBE_IN_FLIGHT;
			probe->holder = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
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

		d = slot_getattr(slot, Anum_keys_expires_at, &isnull);
		probe->expired = !isnull &&
			DatumGetTimestampTz(d) <= GetCurrentTransactionStartTimestamp();

		d = slot_getattr(slot, Anum_keys_fingerprint, &isnull);
		if (!isnull)
			probe->fingerprint = DatumGetByteaPCopy(d);
		d = slot_getattr(slot, Anum_keys_result, &isnull);
		if (!isnull)
			probe->result = DatumGetJsonbPCopy(d);
		break;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
}

/*
 * The dedup guard's claim of (scope, key): true if this transaction now
 * holds a fresh row for the key (the guarded row goes in), false if the key
 * is live (a duplicate, whether committed or this transaction's own).
 */
bool
keystore_claim_guard_key(KeyStore *ks, const char *scope, const char *key,
						 Interval *ttl)
{
	Datum		values[3];
	int			attempt;

	values[0] = CStringGetTextDatum(scope);
	values[1] = CStringGetTextDatum(key);
	values[2] = IntervalPGetDatum(ttl);
	citus_claim_key();

	/*
	 * Each pass either claims the key, finds it live, or saw it change under
	 * it (an expired key renewed or a key deleted by another transaction),
	 * which READ COMMITTED resolves on the next pass with a fresh snapshot.
	 */
	for (attempt = 0;; attempt++)
	{
		bool		isnull;

		CHECK_FOR_INTERRUPTS();
		if (attempt >= 100)
			elog(ERROR, "could not claim idempotency key \"%s\" after %d attempts",
				 key, attempt);

		if (!idem_wait)
		{
			KeyProbe	probe;

			keystore_probe(ks, scope, key, &probe);
			if (probe.state == PROBE_IN_FLIGHT)
				raise_key_in_flight(key, probe.holder);
		}

		run_as_owner(ks, KS_CLAIM, values, NULL, SPI_OK_INSERT_RETURNING);
		if (SPI_processed == 1)
			return true;

		run_as_owner(ks, KS_FETCH, values, NULL, SPI_OK_SELECT);
		if (SPI_processed == 0)
			continue;			/* deleted since the claim saw it */
		if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull)))
			return false;		/* live: a duplicate */

		run_as_owner(ks, KS_RENEW, values, NULL, SPI_OK_UPDATE_RETURNING);
		if (SPI_processed == 1)
			return true;
		/* renewed by someone else meanwhile: look again */
	}
}

/* KS_INSERT_RESULT or KS_RENEW_RESULT: both take the same five values. */
static void
run_result_statement(KeyStore *ks, KeyStatement which, const char *scope,
					 const char *key, bytea *fingerprint, Interval *ttl,
					 Jsonb *result, int expected_rc)
{
	Datum		values[5];

	values[0] = CStringGetTextDatum(scope);
	values[1] = CStringGetTextDatum(key);
	values[2] = PointerGetDatum(fingerprint);
	values[3] = JsonbPGetDatum(result);
	values[4] = IntervalPGetDatum(ttl);
	run_as_owner(ks, which, values, NULL, expected_rc);
}

/* Is the table's primary key its only index? */
static bool
only_primary_key(Relation rel)
{
	List	   *indexes = RelationGetIndexList(rel);
	bool		only = list_length(indexes) == 1;

	list_free(indexes);
	return only;
}

/*
 * Insert the key row of a statement that just ran, with its result.
 *
 * This is the one write of every new key, so it skips the executor: a
 * tuple into the table through its access method and an entry into its
 * primary key, as CatalogTupleInsert does for catalogs.  The unique check
 * still runs (UNIQUE_CHECK_YES), so were the key lock ever bypassed, the
 * index would make the second inserter wait or fail, never store twice.
 * That maintains the primary key only: if someone gave the table another
 * index (on expires_at, say, for idem_purge) or a trigger, the row goes in
 * through an ordinary INSERT instead.  No policy applies to the owner.
 */
void
keystore_insert_result(KeyStore *ks, const char *scope, const char *key,
					   bytea *fingerprint, Interval *ttl, Jsonb *result)
{
	Relation	rel;
	Relation	index;
	IndexInfo  *index_info;
	TupleTableSlot *slot;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Datum		index_values[INDEX_MAX_KEYS];
	bool		index_nulls[INDEX_MAX_KEYS] = {false};

	rel = table_open(ks->relid, RowExclusiveLock);
	if (rel->trigdesc != NULL || !only_primary_key(rel))
	{
		table_close(rel, NoLock);
		run_result_statement(ks, KS_INSERT_RESULT, scope, key, fingerprint,
							 ttl, result, SPI_OK_INSERT);
		return;
	}
	index = index_open(RelationGetPrimaryKeyIndex(rel), RowExclusiveLock);
	index_info = BuildIndexInfo(index);

	slot = table_slot_create(rel, NULL);
	ExecClearTuple(slot);
	memset(slot->tts_isnull, false, sizeof(bool) * slot->tts_tupleDescriptor->natts);
	slot->tts_values[Anum_keys_scope - 1] = CStringGetTextDatum(scope);
	slot->tts_values[Anum_keys_key - 1] = CStringGetTextDatum(key);
	slot->tts_values[Anum_keys_fingerprint - 1] = PointerGetDatum(fingerprint);
	slot->tts_values[Anum_keys_result - 1] = JsonbPGetDatum(result);
	slot->tts_values[Anum_keys_created_at - 1] = TimestampTzGetDatum(now);
	slot->tts_values[Anum_keys_expires_at - 1] =
		DirectFunctionCall2(timestamptz_pl_interval, TimestampTzGetDatum(now),
							IntervalPGetDatum(ttl));
	ExecStoreVirtualTuple(slot);

	table_tuple_insert(rel, slot, GetCurrentCommandId(true), 0, NULL);

	index_values[0] = slot->tts_values[Anum_keys_scope - 1];
	index_values[1] = slot->tts_values[Anum_keys_key - 1];
	index_insert(index, index_values, index_nulls, &slot->tts_tid, rel,
				 UNIQUE_CHECK_YES, false, index_info);

	ExecDropSingleTupleTableSlot(slot);
	index_close(index, NoLock);
	table_close(rel, NoLock);
}

/*
 * Replace an expired key row with a new request's result; false if the
 * row is gone (purged or forgotten meanwhile), and the caller inserts.
 */
bool
keystore_renew_result(KeyStore *ks, const char *scope, const char *key,
					  bytea *fingerprint, Interval *ttl, Jsonb *result)
{
	run_result_statement(ks, KS_RENEW_RESULT, scope, key, fingerprint, ttl,
						 result, SPI_OK_UPDATE);
	return SPI_processed == 1;
}

/*
 * The stored result of a live key, or NULL.  The copy lives in the memory
 * context that was current at SPI_connect, so it outlives SPI_finish.
 */
Jsonb *
keystore_lookup(KeyStore *ks, const char *scope, const char *key)
{
	Datum		values[2];
	Datum		d;
	bool		isnull;

	values[0] = CStringGetTextDatum(scope);
	values[1] = CStringGetTextDatum(key);
	run_as_owner(ks, KS_LOOKUP, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return NULL;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return NULL;
	return (Jsonb *) SPI_datumTransfer(d, false, -1);
}

/* Delete a key; true if it was live. */
bool
keystore_forget(KeyStore *ks, const char *scope, const char *key)
{
	Datum		values[2];
	bool		isnull;

	values[0] = CStringGetTextDatum(scope);
	values[1] = CStringGetTextDatum(key);
	run_as_owner(ks, KS_FORGET, values, NULL, SPI_OK_DELETE_RETURNING);
	if (SPI_processed == 0)
		return false;
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 1, &isnull));
}

/* Delete at most max_rows expired keys (all of them if max_rows < 0). */
int64
keystore_purge(KeyStore *ks, int64 max_rows)
{
	Datum		values[1];
	char		nulls[1] = {' '};

	values[0] = Int64GetDatum(max_rows);
	if (max_rows < 0)
		nulls[0] = 'n';			/* LIMIT NULL: no limit */
	run_as_owner(ks, KS_PURGE, values, nulls, SPI_OK_DELETE);
	return (int64) SPI_processed;
}

/* Delete every key of a scope, live or not; returns how many. */
int64
keystore_forget_scope(KeyStore *ks, const char *scope)
{
	Datum		values[1];

	values[0] = CStringGetTextDatum(scope);
	run_as_owner(ks, KS_FORGET_SCOPE, values, NULL, SPI_OK_DELETE);
	return (int64) SPI_processed;
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
