/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  Counters of what the extension did, one set per database, in shared
 *	  memory; idem_stats() and idem_stats_reset() behind the
 *	  idempotency_stats view.
 *
 * Modelled on pg_stat_statements: the shared memory is sized at server
 * start, so the counters exist only with shared_preload_libraries =
 * 'idempotency'; loaded any other way, counting is a no-op and the view
 * shows the counters as NULL.
 *
 * Each database gets one entry of a fixed array of
 * idempotency.stats_max_databases entries, claimed on its first counted
 * event (or its first reading of the view).  A backend finds its database's
 * entry once and keeps a pointer to it (a backend never changes database),
 * and from then on every count is one atomic add: the hot path takes no
 * lock.  Only claiming an entry takes the array's LWLock.
 *
 * A dropped database gives its entry back: the DROP DATABASE hook notes the
 * database, and the commit of that transaction frees its entry (an aborted
 * drop keeps it).  By then no backend is connected to the database (DROP
 * DATABASE refuses while one is, and its lock keeps new ones out until the
 * commit is over), so no pointer to the entry is left.  The next database
 * to claim the entry starts at zero with a fresh stats_reset, even one
 * that reuses the dropped database's OID after an OID wraparound: freeing at
 * the drop, rather than checking pg_database for dead OIDs when the array
 * is full, is what tells that database from the dropped one.
 *
 * When every entry is held by a live database, a database without one is
 * not counted (its counters read NULL) until an entry is given back: each
 * count of its backends reads the shared number of entries freed so far,
 * and tries to claim one again when that number has moved.
 *
 * The view's other columns are read from the keys table when it is
 * queried: an exact count of live and expired keys for a small table, an
 * estimate from a sample of its pages for a large one, and the size of the
 * table (every partition, if it is partitioned) with its indexes.
 *
 * src/stats.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "idempotency.h"

PG_FUNCTION_INFO_V1(idem_stats);
PG_FUNCTION_INFO_V1(idem_stats_reset);

/*
 * A keys table of at most this many pages is counted exactly; a larger one
 * from a sample of about this many pages.
 */
#define IDEM_STATS_EXACT_PAGES		1280	/* 10 MB */

typedef struct IdemStatsEntry
{
	pg_atomic_uint32 dbid;		/* InvalidOid: free */
	pg_atomic_uint64 reset_time;	/* TimestampTz of the last reset */
	pg_atomic_uint64 counters[IDEM_STAT_COUNT];
} IdemStatsEntry;

typedef struct IdemStatsShared
{
	LWLock	   *lock;			/* held to claim or free an entry */
	pg_atomic_uint32 frees;		/* entries freed since the server started */
	int			nentries;		/* idempotency.stats_max_databases */
	IdemStatsEntry entries[FLEXIBLE_ARRAY_MEMBER];
} IdemStatsShared;

#define STATS_LOCK_TRANCHE	"idempotency stats"

static IdemStatsShared *stats_shared = NULL;

/*
 * This backend's entry, once claimed; or, when none was free, how many
 * entries had been freed then (a count that moves means: try again).
 */
static IdemStatsEntry *my_entry = NULL;
static bool my_entry_missing = false;
static uint32 my_entry_missing_frees = 0;

/* the database this transaction drops, if it does */
static Oid	dropping_database = InvalidOid;

#ifdef IDEM_HAVE_SHMEM_REQUEST_HOOK
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static object_access_hook_type prev_object_access_hook = NULL;

static Size
stats_shmem_size(void)
{
	return add_size(offsetof(IdemStatsShared, entries),
					mul_size(idem_stats_max_databases, sizeof(IdemStatsEntry)));
}

static void
stats_shmem_request(void)
{
#ifdef IDEM_HAVE_SHMEM_REQUEST_HOOK
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(MAXALIGN(stats_shmem_size()));
	RequestNamedLWLockTranche(STATS_LOCK_TRANCHE, 1);
}

static void
stats_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	stats_shared = ShmemInitStruct("idempotency stats", stats_shmem_size(),
								   &found);
	if (!found)
	{
		TimestampTz now = GetCurrentTimestamp();
		int			i;
		int			j;

		stats_shared->lock = &(GetNamedLWLockTranche(STATS_LOCK_TRANCHE))->lock;
		pg_atomic_init_u32(&stats_shared->frees, 0);
		stats_shared->nentries = idem_stats_max_databases;
		for (i = 0; i < stats_shared->nentries; i++)
		{
			IdemStatsEntry *e = &stats_shared->entries[i];

			pg_atomic_init_u32(&e->dbid, InvalidOid);
			pg_atomic_init_u64(&e->reset_time, (uint64) now);
			for (j = 0; j < IDEM_STAT_COUNT; j++)
				pg_atomic_init_u64(&e->counters[j], 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Free the entry of a dropped database, if it has one. */
static void
stats_free(Oid dbid)
{
	int			i;

	if (stats_shared == NULL)
		return;
	LWLockAcquire(stats_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < stats_shared->nentries; i++)
	{
		IdemStatsEntry *e = &stats_shared->entries[i];

		if (pg_atomic_read_u32(&e->dbid) == dbid)
		{
			pg_atomic_write_u32(&e->dbid, InvalidOid);
			pg_atomic_fetch_add_u32(&stats_shared->frees, 1);
			break;
		}
	}
	LWLockRelease(stats_shared->lock);
}

/* DROP DATABASE: note the database, whose entry goes at commit. */
static void
stats_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (access == OAT_DROP && classId == DatabaseRelationId)
		dropping_database = objectId;
}

static void
stats_xact_callback(XactEvent event, void *arg)
{
	if (!OidIsValid(dropping_database))
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			stats_free(dropping_database);
			dropping_database = InvalidOid;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			dropping_database = InvalidOid;
			break;
		default:
			break;
	}
}

/*
 * Set up the shared memory and the hooks that free a dropped database's
 * entry; only while shared_preload_libraries loads us.
 */
void
idem_stats_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
#ifdef IDEM_HAVE_SHMEM_REQUEST_HOOK
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = stats_shmem_request;
#else
	stats_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = stats_shmem_startup;
	prev_object_access_hook = object_access_hook;
	object_access_hook = stats_object_access;
	RegisterXactCallback(stats_xact_callback, NULL);
}

/* The entry of database dbid, or NULL; takes no lock. */
static IdemStatsEntry *
stats_find(Oid dbid)
{
	int			i;

	for (i = 0; i < stats_shared->nentries; i++)
	{
		IdemStatsEntry *e = &stats_shared->entries[i];

		if (pg_atomic_read_u32(&e->dbid) == dbid)
		{
			pg_read_barrier();	/* see the counters its claim zeroed */
			return e;
		}
	}
	return NULL;
}

/*
 * The entry of database dbid, claimed if it has none yet: zeroed, with
 * stats_reset now.  NULL when every entry is taken.
 */
static IdemStatsEntry *
stats_claim(Oid dbid)
{
	IdemStatsEntry *e = stats_find(dbid);
	int			i;
	int			j;

	if (e != NULL)
		return e;
	LWLockAcquire(stats_shared->lock, LW_EXCLUSIVE);
	e = stats_find(dbid);		/* another backend of ours claimed it */
	for (i = 0; e == NULL && i < stats_shared->nentries; i++)
	{
		IdemStatsEntry *slot = &stats_shared->entries[i];

		if (pg_atomic_read_u32(&slot->dbid) != InvalidOid)
			continue;
		for (j = 0; j < IDEM_STAT_COUNT; j++)
			pg_atomic_write_u64(&slot->counters[j], 0);
		pg_atomic_write_u64(&slot->reset_time, (uint64) GetCurrentTimestamp());
		pg_write_barrier();		/* zeroed before anyone finds it */
		pg_atomic_write_u32(&slot->dbid, dbid);
		e = slot;
	}
	LWLockRelease(stats_shared->lock);
	return e;
}

/*
 * Point my_entry at the current database's entry, claiming one if needed;
 * false without the preload, or while every entry is taken.
 */
static bool
stats_attach(void)
{
	uint32		frees;

	if (my_entry != NULL)
		return true;
	if (stats_shared == NULL || !OidIsValid(MyDatabaseId))
		return false;
	frees = pg_atomic_read_u32(&stats_shared->frees);
	if (my_entry_missing && frees == my_entry_missing_frees)
		return false;			/* still full */
	my_entry = stats_claim(MyDatabaseId);
	if (my_entry != NULL)
		return true;
	if (!my_entry_missing)
		ereport(LOG,
				(errmsg("idempotency statistics are full: database %u is not counted",
						MyDatabaseId),
				 errdetail("Every one of the %d entries (idempotency.stats_max_databases) is held by a database that exists.",
						   stats_shared->nentries),
				 errhint("Raise idempotency.stats_max_databases and restart the server, or drop unused databases.")));
	my_entry_missing = true;
	my_entry_missing_frees = frees;
	return false;
}

/* Count n events of one kind in the current database; cheap. */
void
idem_stats_count(IdemStat which, uint64 n)
{
	if (unlikely(my_entry == NULL) && !stats_attach())
		return;
	pg_atomic_fetch_add_u64(&my_entry->counters[which], n);
}

/* Count one wait for a concurrent holder, which began at started. */
void
idem_stats_count_wait(instr_time started)
{
	instr_time	elapsed;

	if (stats_shared == NULL)
		return;
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, started);
	idem_stats_count(IDEM_STAT_WAITS, 1);
	idem_stats_count(IDEM_STAT_WAIT_TIME_US,
					 (uint64) INSTR_TIME_GET_MICROSEC(elapsed));
}

/*
 * Live and expired keys of the keys table of the extension whose function
 * fn_oid is called, and the bytes of the table with its indexes.  Read as
 * the table's owner: the row-level security policy would show the caller
 * only its own keys.
 */
static void
stats_key_counts(Oid fn_oid, int64 *live, int64 *expired, int64 *bytes)
{
	KeyStore	ks;
	Oid			save_userid;
	int			save_sec_context;
	char	   *table;
	char	   *sql;
	Oid			argtypes[1] = {REGCLASSOID};
	Datum		values[1];
	bool		isnull;
	int64		pages;
	double		scale = 1.0;
	Datum		d;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	keystore_open(&ks, fn_oid);
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(ks.owner,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	values[0] = ObjectIdGetDatum(ks.relid);

	/* every partition, if the key store is partitioned (a plain table has none) */
	if (SPI_execute_with_args("SELECT pg_catalog.sum(pg_catalog.pg_total_relation_size(relid))::int8,"
							  " pg_catalog.sum(pg_catalog.pg_relation_size(relid))::int8"
							  " OPERATOR(pg_catalog./) pg_catalog.current_setting('block_size')::int8"
							  " FROM (SELECT relid FROM pg_catalog.pg_partition_tree($1)"
							  " UNION SELECT $1) t",
							  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_with_args failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	*bytes = isnull ? 0 : DatumGetInt64(d);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	pages = isnull ? 0 : DatumGetInt64(d);

	table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(ks.relid)),
									   get_rel_name(ks.relid));
	sql = psprintf("SELECT pg_catalog.count(*) FILTER (WHERE expires_at OPERATOR(pg_catalog.>) pg_catalog.now()),"
				   " pg_catalog.count(*) FILTER (WHERE expires_at OPERATOR(pg_catalog.<=) pg_catalog.now())"
				   " FROM %s", table);
	if (pages > IDEM_STATS_EXACT_PAGES)
	{
		double		percent = 100.0 * IDEM_STATS_EXACT_PAGES / pages;

		/* pages sampled at random, each with probability percent / 100 */
		scale = 100.0 / percent;
		sql = psprintf("%s TABLESAMPLE SYSTEM (%.6f)", sql, percent);
	}
	if (SPI_execute(sql, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed");
	*live = (int64) (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 1,
												 &isnull)) * scale);
	*expired = (int64) (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc, 2,
													&isnull)) * scale);

	SetUserIdAndSecContext(save_userid, save_sec_context);
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
}

/* columns of idem_stats(): the counters, then these */
#define STATS_COL_LIVE_KEYS		(IDEM_STAT_COUNT)
#define STATS_COL_EXPIRED_KEYS	(IDEM_STAT_COUNT + 1)
#define STATS_COL_TABLE_BYTES	(IDEM_STAT_COUNT + 2)
#define STATS_COL_RESET			(IDEM_STAT_COUNT + 3)
#define STATS_NCOLS				(IDEM_STAT_COUNT + 4)

/*
 * idem_stats() RETURNS SETOF record: one row, for the current database.
 * The counters and stats_reset are NULL without the preload, and while the
 * database has no entry because every entry is taken.
 */
Datum
idem_stats(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext oldcxt;
		TupleDesc	tupdesc;

		funcctx = SRF_FIRSTCALL_INIT();
		oldcxt = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "return type must be a row type");
		if (tupdesc->natts != STATS_NCOLS)
			elog(ERROR, "idem_stats must return %d columns", STATS_NCOLS);
		funcctx->tuple_desc = BlessTupleDesc(tupdesc);
		funcctx->max_calls = 1;
		MemoryContextSwitchTo(oldcxt);
	}
	funcctx = SRF_PERCALL_SETUP();

	if (funcctx->call_cntr < funcctx->max_calls)
	{
		Datum		values[STATS_NCOLS];
		bool		nulls[STATS_NCOLS];
		IdemStatsEntry *e = stats_attach() ? my_entry : NULL;
		int64		live;
		int64		expired;
		int64		bytes;
		int			i;

		memset(nulls, false, sizeof(nulls));
		for (i = 0; i < IDEM_STAT_COUNT; i++)
		{
			int64		v;

			if (e == NULL)
			{
				nulls[i] = true;
				continue;
			}
			v = (int64) pg_atomic_read_u64(&e->counters[i]);
			if (i == IDEM_STAT_WAIT_TIME_US)
				v /= 1000;		/* the wait_time_ms column */
			values[i] = Int64GetDatum(v);
		}
		stats_key_counts(fcinfo->flinfo->fn_oid, &live, &expired, &bytes);
		values[STATS_COL_LIVE_KEYS] = Int64GetDatum(live);
		values[STATS_COL_EXPIRED_KEYS] = Int64GetDatum(expired);
		values[STATS_COL_TABLE_BYTES] = Int64GetDatum(bytes);
		if (e == NULL)
			nulls[STATS_COL_RESET] = true;
		else
			values[STATS_COL_RESET] =
				TimestampTzGetDatum((TimestampTz) pg_atomic_read_u64(&e->reset_time));

		SRF_RETURN_NEXT(funcctx,
						HeapTupleGetDatum(heap_form_tuple(funcctx->tuple_desc,
														  values, nulls)));
	}
	SRF_RETURN_DONE(funcctx);
}

/*
 * idem_stats_reset() RETURNS void: zero the current database's counters.
 * Counts that land while it runs may survive it, as with pg_stat_reset().
 */
Datum
idem_stats_reset(PG_FUNCTION_ARGS)
{
	IdemStatsEntry *e;
	int			i;

	if (!stats_attach())
		PG_RETURN_VOID();
	e = my_entry;
	for (i = 0; i < IDEM_STAT_COUNT; i++)
		pg_atomic_write_u64(&e->counters[i], 0);
	pg_atomic_write_u64(&e->reset_time, (uint64) GetCurrentTimestamp());
	PG_RETURN_VOID();
}
