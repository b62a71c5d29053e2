/*-------------------------------------------------------------------------
 *
 * colocated.c
 *	  Keys beside their shard: under Citus, a tenant's keys live in a
 *	  distributed table colocated with the tenant's data, and a call stores
 *	  its key in the local shard of the node that owns the tenant.
 *
 * idem_colocate_keys(colocate_with) creates, once per Citus colocation
 * group, the table idempotency_keys_colocated_<colocationid>: the columns
 * of idempotency_keys in their order (so keystore.c probes and inserts into
 * its shards as into idempotency_keys), then tenant, of the distribution
 * column's type, by which it is distributed with colocate_with.  Its
 * primary key is (owner, scope, key, expires_at, tenant): Citus needs the
 * distribution column in it; the probe reads the prefix (owner, scope,
 * key).  Like idempotency_keys it has an index on expires_at, so that the
 * purge of each shard reads only its expired keys.
 *
 * idem_execute_colocated(colocate_with, tenant, key, sql, params...) is
 * idem_execute (execute.c: one claim protocol, one statement runner) with
 * the key kept in that table's shard for tenant, which must be on this
 * node: Citus's metadata says which shard holds the tenant and where its
 * placement is.  The call takes Citus's metadata lock of the shard (shared,
 * as Citus's executor does before a write), then checks the placement: a
 * shard move or split blocks writes by taking that lock exclusively on
 * every node before it switches placements, so either this transaction
 * commits its key into the shard before the move copies its last changes,
 * or it sees the new placement and refuses.  Refusing (0A000) is the only
 * answer when the shard is elsewhere: a key stored anywhere else would not
 * be found by a retry routed to the shard.  The key and the statement's
 * local writes then commit in one local transaction: no two-phase commit.
 *
 * The way to get a call onto the right node is a distributed function,
 * colocated with the tenant's table and delegated by its tenant argument
 * (create_distributed_function(..., force_delegation => true)), or a client
 * that connects to that node.
 *
 * Colocated keys are the calling role's, by name (scope.c,
 * scope_of_tenant): role OIDs differ between nodes and shards move.
 * idem_lookup_colocated and idem_forget_colocated read and delete them
 * through the distributed table, from any node with Citus's metadata;
 * idem_purge on the coordinator purges their expired rows on every shard.
 *
 * src/colocated.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "compat.h"
#include "idempotency.h"

PG_FUNCTION_INFO_V1(idem_colocate_keys);
PG_FUNCTION_INFO_V1(idem_execute_colocated);
PG_FUNCTION_INFO_V1(idem_lookup_colocated);
PG_FUNCTION_INFO_V1(idem_forget_colocated);

#define COLOCATED_PREFIX "idempotency_keys_colocated_"

/* pg_dist_shard and pg_dist_placement, as Citus 11 to 13 define them */
#define Anum_dist_shard_logicalrelid 1
#define Anum_dist_shard_shardid 2
#define Anum_dist_shard_minvalue 5
#define Anum_dist_shard_maxvalue 6
#define Anum_dist_placement_shardid 2
#define Anum_dist_placement_shardstate 3
#define Anum_dist_placement_groupid 5
#define DIST_SHARD_STATE_ACTIVE 1

/* field4 of the lock that serializes idem_colocate_keys: "IC" */
#define IDEM_LOCKTAG_COLOCATE 0x4943

/* A colocated keys table, as the calls on colocate_with find it. */
typedef struct ColocatedKeys
{
	Oid			colocate_with;
	Oid			relid;			/* idempotency_keys_colocated_<id> */
	Oid			owner;			/* its owner: the extension's */
	Oid			nsp;			/* its schema, where its shards are too */
	char	   *name;
	Oid			tenant_type;	/* the distribution column's type */
	Oid			tenant_in;		/* its input function */
	Oid			tenant_ioparam;
	Oid			tenant_out;		/* its output function */
	int16		tenant_typlen;
	Oid			tenant_collation;
	FmgrInfo	tenant_hash;	/* its hash function, as Citus hashes it */
} ColocatedKeys;

#define COLOCATED_CACHE_SIZE 8

static ColocatedKeys colocated_cache[COLOCATED_CACHE_SIZE];
static int	colocated_cache_used = 0;
static bool colocated_callback_registered = false;

static void
colocated_cache_clear(void)
{
	int			i;

	for (i = 0; i < colocated_cache_used; i++)
	{
		if (colocated_cache[i].name != NULL)
			pfree(colocated_cache[i].name);
	}
	memset(colocated_cache, 0, sizeof(colocated_cache));
	colocated_cache_used = 0;
}

/*
 * Any change to a cached table (Citus invalidates a distributed table's
 * relcache entry when its metadata changes) empties the cache, at the next
 * lookup.
 */
static bool colocated_cache_stale = false;

static void
colocated_cache_invalidate(Datum arg, Oid relid)
{
	int			i;

	for (i = 0; i < colocated_cache_used; i++)
	{
		if (!OidIsValid(relid) || colocated_cache[i].relid == relid ||
			colocated_cache[i].colocate_with == relid)
			colocated_cache_stale = true;
	}
}

/* Run SPI work as role, restoring the caller's user id afterwards. */
static int
spi_as(Oid role, const char *sql, int nargs, Oid *types, Datum *values,
	   const char *nulls, bool read_only)
{
	Oid			save_userid;
	int			save_sec_context;
	int			rc;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(role, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	rc = SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, 0);
	if (rc < 0)
		elog(ERROR, "SPI_execute_with_args failed for \"%s\": %s",
			 sql, SPI_result_code_string(rc));
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return rc;
}

/*
 * How colocate_with is distributed: its colocation id and distribution
 * column.  Refuses (0A000) anything but a hash-distributed table.  Needs
 * SPI.
 */
static void
distribution_of(Oid colocate_with, uint32 *colocationid, AttrNumber *column)
{
	Oid			types[1] = {REGCLASSOID};
	Datum		values[1] = {ObjectIdGetDatum(colocate_with)};
	bool		isnull;
	char	   *method;
	char	   *colname;
	Oid			type;

	if (SPI_execute_with_args("SELECT p.partmethod::pg_catalog.text, p.colocationid,"
							  " pg_catalog.column_to_column_name(p.logicalrelid, p.partkey)"
							  " FROM pg_catalog.pg_dist_partition p"
							  " WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_dist_partition");
	method = SPI_processed > 0 ?
		SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : NULL;
	if (method == NULL || strcmp(method, "h") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table \"%s\" is not a hash-distributed Citus table",
						get_rel_name(colocate_with)),
				 errdetail("Keys beside their shard are distributed with a table that Citus distributes by a column."),
				 errhint("Distribute it with create_distributed_table first, or use idem_execute on the coordinator.")));
	*colocationid = DatumGetUInt32(SPI_getbinval(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 2, &isnull));
	colname = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	*column = get_attnum(colocate_with, colname);
	if (*column == InvalidAttrNumber)
		elog(ERROR, "distribution column \"%s\" of \"%s\" not found",
			 colname, get_rel_name(colocate_with));

	/*
	 * The keys table's owner reads and writes tenant values, and Citus
	 * converts them to and from text on the way: only base and enum types,
	 * whose functions a superuser made, never a domain's check or a row
	 * type's columns, which could run a function of the table's owner with
	 * the extension owner's rights.
	 */
	type = get_atttype(colocate_with, *column);
	if (get_typtype(type) != TYPTYPE_BASE && get_typtype(type) != TYPTYPE_ENUM)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("distribution column \"%s\" of \"%s\" has type %s, which keys beside their shard do not support",
						colname, get_rel_name(colocate_with), format_type_be(type)),
				 errdetail("The tenant must be of a base or enum type, not a domain, composite or range type."),
				 errhint("Distribute the table by a column of the domain's base type.")));
}

/* The name of the colocated keys table of a colocation group. */
static char *
colocated_name(uint32 colocationid)
{
	return psprintf(COLOCATED_PREFIX "%u", colocationid);
}

/*
 * idem_colocate_keys(colocate_with regclass) RETURNS regclass
 *
 * The colocated keys table of colocate_with's colocation group, created
 * if it is missing.  Only the owner of colocate_with may call it; the
 * table is created and distributed as the extension's owner, and no other
 * role gets any privilege on it.
 */
Datum
idem_colocate_keys(PG_FUNCTION_ARGS)
{
	Oid			colocate_with = PG_GETARG_OID(0);
	HeapTuple	tuple;
	KeyStore	ks;
	uint32		colocationid;
	AttrNumber	column;
	Oid			nsp;
	char	   *name;
	Oid			relid;
	LOCKTAG		tag;

	citus_require("idem_colocate_keys");

	/* the caller's right first, before any lock (as guard.c does) */
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(colocate_with));
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", colocate_with)));
	if (!idem_table_ownercheck(colocate_with, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER,
					   get_relkind_objtype(((Form_pg_class) GETSTRUCT(tuple))->relkind),
					   NameStr(((Form_pg_class) GETSTRUCT(tuple))->relname));
	ReleaseSysCache(tuple);

	if (citus_local_group() != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("idem_colocate_keys must be called on the Citus coordinator"),
				 errdetail("It creates a distributed table, which only the coordinator can do.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	keystore_open(&ks, fcinfo->flinfo->fn_oid);	/* its schema and owner */
	nsp = get_rel_namespace(ks.relid);
	distribution_of(colocate_with, &colocationid, &column);
	name = colocated_name(colocationid);

	/* one creator at a time per colocation group; the others then find it */
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, colocationid, 0, IDEM_LOCKTAG_COLOCATE);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);

	relid = get_relname_relid(name, nsp);
	if (!OidIsValid(relid))
	{
		Oid			type;
		int32		typmod;
		Oid			collation;
		char	   *qname = quote_qualified_identifier(get_namespace_name(nsp), name);
		char	   *collate = "";
		StringInfoData sql;
		Oid			argtypes[2] = {TEXTOID, TEXTOID};
		Datum		args[2];

		get_atttypetypmodcoll(colocate_with, column, &type, &typmod, &collation);
		if (OidIsValid(collation))
		{
			HeapTuple	ctup = SearchSysCache1(COLLOID, ObjectIdGetDatum(collation));
			Form_pg_collation cform;

			if (!HeapTupleIsValid(ctup))
				elog(ERROR, "cache lookup failed for collation %u", collation);
			cform = (Form_pg_collation) GETSTRUCT(ctup);
			collate = psprintf(" COLLATE %s",
							   quote_qualified_identifier(get_namespace_name(cform->collnamespace),
														  NameStr(cform->collname)));
			ReleaseSysCache(ctup);
		}

		initStringInfo(&sql);
		appendStringInfo(&sql,
						 "CREATE TABLE %s ("
						 " created_at pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.now(),"
						 " expires_at pg_catalog.timestamptz NOT NULL,"
						 " owner pg_catalog.regrole NOT NULL,"
						 " scope pg_catalog.text COLLATE \"C\" NOT NULL,"
						 " key pg_catalog.text COLLATE \"C\" NOT NULL,"
						 " fingerprint pg_catalog.bytea,"
						 " command pg_catalog.text,"
						 " result pg_catalog.jsonb,"
						 " tenant %s%s NOT NULL,"
						 " PRIMARY KEY (owner, scope, key, expires_at, tenant));"
						 " CREATE INDEX ON %s (expires_at);"
						 " REVOKE ALL ON %s FROM PUBLIC;"
						 " COMMENT ON TABLE %s IS 'idempotency keys beside their shard, colocated with %s (idem_colocate_keys): owner 0, scope = quote_ident(role)/tenant';",
						 qname,
						 format_type_extended(type, typmod,
											  FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY),
						 collate,
						 qname, qname, qname,
						 get_rel_name(colocate_with));
		spi_as(ks.owner, sql.data, 0, NULL, NULL, NULL, false);

		args[0] = CStringGetTextDatum(qname);
		args[1] = CStringGetTextDatum(quote_qualified_identifier(get_namespace_name(get_rel_namespace(colocate_with)),
																 get_rel_name(colocate_with)));
		spi_as(ks.owner,
			   "SELECT pg_catalog.create_distributed_table($1::pg_catalog.regclass,"
			   " 'tenant', colocate_with => $2)",
			   2, argtypes, args, NULL, false);
		CommandCounterIncrement();
		relid = get_relname_relid(name, nsp);
	}
	else
	{
		uint32		existing;
		AttrNumber	tenant_column;

		distribution_of(relid, &existing, &tenant_column);
		if (existing != colocationid)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table \"%s\" is not colocated with \"%s\"",
							name, get_rel_name(colocate_with))));
	}
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	PG_RETURN_OID(relid);
}

/*
 * The colocated keys table of colocate_with, from the cache or Citus's
 * metadata.  Needs SPI.
 */
static ColocatedKeys *
colocated_keys(FunctionCallInfo fcinfo, Oid colocate_with)
{
	ColocatedKeys *entry;
	KeyStore	ks;
	uint32		colocationid;
	AttrNumber	column;
	Oid			type;
	int32		typmod;
	Oid			collation;
	bool		isvarlena;
	TypeCacheEntry *typentry;
	int			i;

	if (!colocated_callback_registered)
	{
		CacheRegisterRelcacheCallback(colocated_cache_invalidate, (Datum) 0);
		colocated_callback_registered = true;
	}
	if (colocated_cache_stale)
	{
		colocated_cache_clear();
		colocated_cache_stale = false;
	}
	for (i = 0; i < colocated_cache_used; i++)
	{
		if (colocated_cache[i].colocate_with == colocate_with)
			return &colocated_cache[i];
	}
	if (colocated_cache_used == COLOCATED_CACHE_SIZE)
		colocated_cache_clear();

	keystore_open(&ks, fcinfo->flinfo->fn_oid);	/* its schema and owner */
	distribution_of(colocate_with, &colocationid, &column);
	entry = &colocated_cache[colocated_cache_used];
	memset(entry, 0, sizeof(ColocatedKeys));
	entry->colocate_with = colocate_with;
	entry->nsp = get_rel_namespace(ks.relid);
	entry->owner = ks.owner;
	entry->name = MemoryContextStrdup(TopMemoryContext, colocated_name(colocationid));
	entry->relid = get_relname_relid(entry->name, entry->nsp);
	if (!OidIsValid(entry->relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" has no colocated keys table",
						get_rel_name(colocate_with)),
				 errhint("Create it on the coordinator with SELECT idem_colocate_keys('%s').",
						 get_rel_name(colocate_with))));
	get_atttypetypmodcoll(colocate_with, column, &type, &typmod, &collation);
	entry->tenant_type = type;
	entry->tenant_collation = collation;
	entry->tenant_typlen = get_typlen(type);
	getTypeInputInfo(type, &entry->tenant_in, &entry->tenant_ioparam);
	getTypeOutputInfo(type, &entry->tenant_out, &isvarlena);
	typentry = lookup_type_cache(type, TYPECACHE_HASH_PROC_FINFO);
	if (!OidIsValid(typentry->hash_proc_finfo.fn_oid))
		elog(ERROR, "type %s has no hash function", format_type_be(type));
	fmgr_info_copy(&entry->tenant_hash, &typentry->hash_proc_finfo, TopMemoryContext);
	colocated_cache_used++;		/* complete: only now can a lookup find it */
	return entry;
}

/*
 * The tenant argument argno as a value of the distribution column's type,
 * and its text form in that type (the key's scope).
 */
static Datum
tenant_argument(FunctionCallInfo fcinfo, int argno, ColocatedKeys *keys,
				char **text)
{
	Oid			argtype = get_fn_expr_argtype(fcinfo->flinfo, argno);
	Datum		value;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tenant must not be null")));
	if (argtype == keys->tenant_type)
		value = PG_GETARG_DATUM(argno);
	else
	{
		char	   *in;

		if (argtype == UNKNOWNOID)
			in = pstrdup(DatumGetCString(PG_GETARG_DATUM(argno)));
		else
		{
			Oid			out;
			bool		isvarlena;

			if (!OidIsValid(argtype))
				elog(ERROR, "could not determine the type of the tenant");
			getTypeOutputInfo(argtype, &out, &isvarlena);
			in = OidOutputFunctionCall(out, PG_GETARG_DATUM(argno));
		}
		value = OidInputFunctionCall(keys->tenant_in, in,
									 keys->tenant_ioparam, -1);
	}
	/* stored in the shard and its index as it is: no toast pointer */
	if (keys->tenant_typlen == -1)
		value = PointerGetDatum(PG_DETOAST_DATUM(value));
	*text = OidOutputFunctionCall(keys->tenant_out, value);
	return value;
}

/*
 * Open a Citus catalog table in pg_catalog and scan it by its index
 * index_name on its column attnum, with a fresh snapshot: Citus updates these
 * tables when a shard moves or splits, and a call must see the last state.
 */
typedef struct CatalogScan
{
	Relation	rel;
	SysScanDesc scan;
	Snapshot	snapshot;
} CatalogScan;

static void
catalog_scan_begin(CatalogScan *cs, const char *table, const char *index_name,
				   AttrNumber attnum, RegProcedure eq, Datum key)
{
	Oid			relid = get_relname_relid(table, PG_CATALOG_NAMESPACE);
	Oid			indexid = get_relname_relid(index_name, PG_CATALOG_NAMESPACE);
	ScanKeyData skey;

	if (!OidIsValid(relid) || !OidIsValid(indexid))
		elog(ERROR, "Citus catalog pg_catalog.%s or its index %s is missing",
			 table, index_name);
	cs->rel = table_open(relid, AccessShareLock);
	cs->snapshot = RegisterSnapshot(GetLatestSnapshot());
	ScanKeyInit(&skey, attnum, BTEqualStrategyNumber, eq, key);
	cs->scan = systable_beginscan(cs->rel, indexid, true, cs->snapshot, 1, &skey);
}

static void
catalog_scan_end(CatalogScan *cs)
{
	systable_endscan(cs->scan);
	UnregisterSnapshot(cs->snapshot);
	table_close(cs->rel, AccessShareLock);
}

/*
 * The shard of the colocated keys table that holds tenant, found as Citus
 * finds it (FindShardInterval): the tenant hashed with its type's hash
 * function, in the shard whose hash range holds it.  Nothing of the
 * tenant's type runs with the owner's rights: its input function ran as the
 * caller, and hash functions are built in or a superuser's.
 */
static int64
shard_of(ColocatedKeys *keys, Datum tenant)
{
	int32		hash = DatumGetInt32(FunctionCall1Coll(&keys->tenant_hash,
													   keys->tenant_collation,
													   tenant));
	CatalogScan cs;
	HeapTuple	tuple;
	int64		shardid = -1;

	catalog_scan_begin(&cs, "pg_dist_shard", "pg_dist_shard_logical_relid_index",
					   Anum_dist_shard_logicalrelid, F_OIDEQ, ObjectIdGetDatum(keys->relid));
	while (HeapTupleIsValid(tuple = systable_getnext(cs.scan)))
	{
		TupleDesc	desc = RelationGetDescr(cs.rel);
		bool		min_null;
		bool		max_null;
		bool		isnull;
		Datum		min = heap_getattr(tuple, Anum_dist_shard_minvalue, desc, &min_null);
		Datum		max = heap_getattr(tuple, Anum_dist_shard_maxvalue, desc, &max_null);

		if (min_null || max_null)
			continue;
		if (hash >= pg_strtoint32(TextDatumGetCString(min)) &&
			hash <= pg_strtoint32(TextDatumGetCString(max)))
		{
			shardid = DatumGetInt64(heap_getattr(tuple, Anum_dist_shard_shardid,
												 desc, &isnull));
			break;
		}
	}
	catalog_scan_end(&cs);
	if (shardid < 0)
		elog(ERROR, "no shard of %s holds hash value %d", keys->name, hash);
	return shardid;
}

/*
 * The group of the active placement of a shard, read with a fresh
 * snapshot, or -1 if it has none (a split or a move removed it).
 */
static int32
placement_group(int64 shardid)
{
	CatalogScan cs;
	HeapTuple	tuple;
	int32		group = -1;

	catalog_scan_begin(&cs, "pg_dist_placement", "pg_dist_placement_shardid_index",
					   Anum_dist_placement_shardid, F_INT8EQ, Int64GetDatum(shardid));
	while (HeapTupleIsValid(tuple = systable_getnext(cs.scan)))
	{
		TupleDesc	desc = RelationGetDescr(cs.rel);
		bool		isnull;
		Datum		state = heap_getattr(tuple, Anum_dist_placement_shardstate,
										 desc, &isnull);

		if (isnull || DatumGetInt32(state) != DIST_SHARD_STATE_ACTIVE)
			continue;
		group = DatumGetInt32(heap_getattr(tuple, Anum_dist_placement_groupid,
										   desc, &isnull));
		break;
	}
	catalog_scan_end(&cs);
	return group;
}

/* 0A000: the tenant's shard is on another node. */
static void
refuse_not_local(ColocatedKeys *keys, const char *tenant, int64 shardid,
				 int32 group)
{
	char	   *where = psprintf("group %d", group);
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(group)};

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (group >= 0 &&
		SPI_execute_with_args("SELECT nodename OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) nodeport"
							  " FROM pg_catalog.pg_dist_node WHERE groupid OPERATOR(pg_catalog.=) $1"
							  " AND noderole OPERATOR(pg_catalog.=) 'primary'",
							  1, types, values, NULL, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
		where = psprintf("node %s (group %d)",
						 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
						 group);
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("the shard of tenant \"%s\" is not on this node", tenant),
			 group >= 0 ?
			 errdetail("Its keys are kept in shard %lld of %s, on %s; this node is group %d. A key stored anywhere else would not be found by a retry that reaches the shard.",
					   (long long) shardid, keys->name, where, citus_local_group()) :
			 errdetail("Shard %lld of %s, which held its keys, has no active placement any more (it was moved or split). Retry the call.",
					   (long long) shardid, keys->name),
			 errhint("Call it on the node that holds the shard: distribute the calling function with create_distributed_function('fn(...)', '<tenant argument>', colocate_with => '%s', force_delegation => true) and call that on the coordinator, or connect to that node.",
					 get_rel_name(keys->colocate_with))));
}

/* What open_shard needs to route a call. */
typedef struct ShardRoute
{
	ColocatedKeys *keys;
	Datum		tenant;
	char	   *tenant_text;
} ShardRoute;

/*
 * ExecuteTarget.open_keys of idem_execute_colocated: the local shard that
 * holds the tenant, or a refusal.
 */
static void
open_shard(ExecuteTarget *target, KeyStore *ks)
{
	ShardRoute *route = (ShardRoute *) target->arg;
	ColocatedKeys *keys = route->keys;
	int64		shardid;
	int32		group;
	char	   *shard_name;
	Oid			shard_relid;
	int			attempt;

	/*
	 * Lock, then check the placement: from then on a move or split of the
	 * shard waits for this transaction.  A split replaces the shard with new
	 * ones, a move can too before the lock is ours: look the tenant's shard
	 * up again once if its placement went away.
	 */
	shardid = shard_of(keys, route->tenant);
	for (attempt = 0;; attempt++)
	{
		int64		again;

		citus_lock_shard(shardid);
		group = placement_group(shardid);
		if (group == citus_local_group())
			break;
		again = shard_of(keys, route->tenant);
		if (again == shardid || attempt > 0)
			refuse_not_local(keys, route->tenant_text, shardid, group);
		shardid = again;
	}

	shard_name = psprintf("%s_" INT64_FORMAT, keys->name, shardid);
	shard_relid = get_relname_relid(shard_name, keys->nsp);
	if (!OidIsValid(shard_relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("shard \"%s\" of the colocated keys table is missing on this node",
						shard_name)));

	ks->relid = shard_relid;
	ks->owner = keys->owner;
	ks->beside_shard = true;
	ks->tenant = route->tenant;
}

/*
 * What every colocated function does first: Citus must be there, the
 * table named, and SPI connected (the caller finishes it).
 */
static void
colocated_call_begin(FunctionCallInfo fcinfo, const char *function)
{
	citus_require(function);
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("colocate_with must not be null")));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/*
 * idem_execute_colocated(colocate_with regclass, tenant "any", key text,
 *						  sql text [, VARIADIC params "any"]) RETURNS jsonb
 */
Datum
idem_execute_colocated(PG_FUNCTION_ARGS)
{
	ExecuteTarget target;
	ShardRoute	route;

	colocated_call_begin(fcinfo, "idem_execute_colocated");
	route.keys = colocated_keys(fcinfo, PG_GETARG_OID(0));
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	route.tenant = tenant_argument(fcinfo, 1, route.keys, &route.tenant_text);
	scope_of_tenant(&target.scope, route.tenant_text);
	target.open_keys = open_shard;
	target.arg = &route;
	return execute_request(fcinfo, 2, &target);
}

/*
 * Run a statement on the colocated keys table of colocate_with for the
 * calling role's key (colocate_with, tenant, key), as the table's owner,
 * through Citus (which routes it to the tenant's shard).  Needs SPI.
 */
static void
run_on_key(FunctionCallInfo fcinfo, const char *template, int expected_rc)
{
	ColocatedKeys *keys;
	Datum		tenant;
	char	   *tenant_text;
	char	   *key = key_argument(fcinfo, 2);
	KeyScope	scope;
	Oid			types[3];
	Datum		values[3];
	char	   *sql;

	keys = colocated_keys(fcinfo, PG_GETARG_OID(0));
	tenant = tenant_argument(fcinfo, 1, keys, &tenant_text);
	scope_of_tenant(&scope, tenant_text);
	types[0] = TEXTOID;
	types[1] = TEXTOID;
	types[2] = keys->tenant_type;
	values[0] = CStringGetTextDatum(scope.scope);
	values[1] = CStringGetTextDatum(key);
	values[2] = tenant;
	sql = psprintf(template,
				   quote_qualified_identifier(get_namespace_name(keys->nsp), keys->name));
	if (spi_as(keys->owner, sql, 3, types, values, NULL, false) != expected_rc)
		elog(ERROR, "unexpected result of \"%s\"", sql);
}

#define COLOCATED_KEY_IS_SQL \
	" WHERE owner OPERATOR(pg_catalog.=) 0::pg_catalog.oid::pg_catalog.regrole" \
	" AND scope OPERATOR(pg_catalog.=) $1 AND key OPERATOR(pg_catalog.=) $2" \
	" AND tenant OPERATOR(pg_catalog.=) $3 AND NOT (" KEY_EXPIRED_SQL ")"

/* idem_lookup_colocated(colocate_with regclass, tenant "any", key text) RETURNS jsonb */
Datum
idem_lookup_colocated(PG_FUNCTION_ARGS)
{
	Datum		d;
	Datum		command;
	bool		isnull;
	bool		command_null;
	Jsonb	   *result = NULL;

	colocated_call_begin(fcinfo, "idem_lookup_colocated");
	run_on_key(fcinfo, "SELECT command, result FROM %s" COLOCATED_KEY_IS_SQL,
			   SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		command = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
								&command_null);
		if (!isnull && !command_null)
			d = JsonbPGetDatum(result_join(TextDatumGetCString(command),
										   DatumGetJsonbP(d)));
		if (!isnull)
			result = (Jsonb *) SPI_datumTransfer(d, false, -1);
	}
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(result);
}

/* idem_forget_colocated(colocate_with regclass, tenant "any", key text) RETURNS boolean */
Datum
idem_forget_colocated(PG_FUNCTION_ARGS)
{
	bool		existed;

	colocated_call_begin(fcinfo, "idem_forget_colocated");
	run_on_key(fcinfo, "DELETE FROM %s" COLOCATED_KEY_IS_SQL, SPI_OK_DELETE);
	existed = SPI_processed > 0;
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	PG_RETURN_BOOL(existed);
}

/* Delete the expired keys of every colocated keys table; how many. */
static int64
purge_colocated_tables(KeyStore *ks)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1];
	SPITupleTable *tables;
	uint64		ntables;
	uint64		i;
	int64		purged = 0;

	values[0] = ObjectIdGetDatum(get_rel_namespace(ks->relid));
	if (SPI_execute_with_args("SELECT pg_catalog.quote_ident(c.relname)"
							  " FROM pg_catalog.pg_class c"
							  " JOIN pg_catalog.pg_dist_partition p ON p.logicalrelid OPERATOR(pg_catalog.=) c.oid"
							  " WHERE c.relnamespace OPERATOR(pg_catalog.=) $1"
							  " AND pg_catalog.starts_with(c.relname, '" COLOCATED_PREFIX "')",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list the colocated keys tables");
	tables = SPI_tuptable;
	ntables = SPI_processed;
	for (i = 0; i < ntables; i++)
	{
		char	   *sql;

		sql = psprintf("DELETE FROM %s.%s WHERE " KEY_EXPIRED_SQL,
					   quote_identifier(get_namespace_name(get_rel_namespace(ks->relid))),
					   SPI_getvalue(tables->vals[i], tables->tupdesc, 1));
		spi_as(ks->owner, sql, 0, NULL, NULL, NULL, false);
		purged += (int64) SPI_processed;
	}
	return purged;
}

/*
 * idem_purge's part for colocated keys: on the coordinator, delete the
 * expired rows of every colocated keys table in the extension's schema
 * (keys_relid's), one distributed DELETE each, which Citus runs on every
 * shard where it is.  Elsewhere, and without Citus, nothing.  Needs SPI.
 *
 * It runs in a subtransaction: a worker that cannot be reached leaves the
 * colocated keys for the next purge, with a warning, rather than failing
 * the purge of the coordinator's own keys with it.
 */
int64
colocated_purge(KeyStore *ks)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	int64		purged = 0;

	if (!citus_present() || citus_local_group() != 0)
		return 0;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		purged = purge_colocated_tables(ks);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("could not purge the colocated idempotency keys: %s",
						edata->message),
				 errdetail("Their expired keys stay until a later purge.")));
		FreeErrorData(edata);
		purged = 0;
	}
	PG_END_TRY();
	return purged;
}
