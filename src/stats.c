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
 * Each database gets one entry of a fixed array, claimed on its first
 * counted event by a compare-and-swap of the entry's database OID, so no
 * lock is ever taken: a backend finds its database's entry once and keeps a
 * pointer to it (a backend never changes database), and from then on every
 * count is one atomic add.  Entries are never given back: at most
 * IDEM_STATS_MAX_DATABASES databases are counted per server run.
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

#define IDEM_STATS_MAX_DATABASES	1024

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
	IdemStatsEntry entries[IDEM_STATS_MAX_DATABASES];
} IdemStatsShared;

static IdemStatsShared *stats_shared = NULL;

/* this backend's entry, once looked up (or found missing: none was free) */
static IdemStatsEntry *my_entry = NULL;
static bool my_entry_missing = false;

#ifdef IDEM_HAVE_SHMEM_REQUEST_HOOK
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
stats_shmem_request(void)
{
#ifdef IDEM_HAVE_SHMEM_REQUEST_HOOK
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(MAXALIGN(sizeof(IdemStatsShared)));
}

static void
stats_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	stats_shared = ShmemInitStruct("idempotency stats", sizeof(IdemStatsShared),
								   &found);
	if (!found)
	{
		TimestampTz now = GetCurrentTimestamp();
		int			i;
		int			j;

		for (i = 0; i < IDEM_STATS_MAX_DATABASES; i++)
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

/* Set up the shared memory; only while shared_preload_libraries loads us. */
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
}

/*
 * The entry of database dbid, claimed if it has none yet; NULL without the
 * preload, or when every entry is taken.
 */
static IdemStatsEntry *
stats_entry_of(Oid dbid, bool claim)
{
	int			i;

	if (stats_shared == NULL || !OidIsValid(dbid))
		return NULL;
	for (i = 0; i < IDEM_STATS_MAX_DATABASES; i++)
	{
		IdemStatsEntry *e = &stats_shared->entries[i];
		uint32		owner = pg_atomic_read_u32(&e->dbid);

		if (owner == dbid)
			return e;
		if (owner != InvalidOid)
			continue;
		if (!claim)
			return NULL;		/* entries are claimed in order */
		if (pg_atomic_compare_exchange_u32(&e->dbid, &owner, dbid))
		{
			pg_atomic_write_u64(&e->reset_time, (uint64) GetCurrentTimestamp());
			return e;
		}
		if (owner == dbid)
			return e;			/* another backend of ours claimed it */
	}
	if (claim && !my_entry_missing)
	{
		my_entry_missing = true;
		ereport(LOG,
				(errmsg("idempotency statistics are full: database %u is not counted", dbid),
				 errdetail("At most %d databases are counted between server restarts.",
						   IDEM_STATS_MAX_DATABASES)));
	}
	return NULL;
}

/* Count n events of one kind in the current database; cheap. */
void
idem_stats_count(IdemStat which, uint64 n)
{
	if (unlikely(my_entry == NULL))
	{
		if (stats_shared == NULL || my_entry_missing)
			return;
		my_entry = stats_entry_of(MyDatabaseId, true);
		if (my_entry == NULL)
			return;
	}
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
 * The counters and stats_reset are NULL without the preload.
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
		IdemStatsEntry *e = stats_entry_of(MyDatabaseId, false);
		int64		live;
		int64		expired;
		int64		bytes;
		int			i;

		memset(nulls, false, sizeof(nulls));
		for (i = 0; i < IDEM_STAT_COUNT; i++)
		{
			int64		v;

			if (stats_shared == NULL)
			{
				nulls[i] = true;
				continue;
			}
			v = e == NULL ? 0 : (int64) pg_atomic_read_u64(&e->counters[i]);
			if (i == IDEM_STAT_WAIT_TIME_US)
				v /= 1000;		/* the wait_time_ms column */
			values[i] = Int64GetDatum(v);
		}
		stats_key_counts(fcinfo->flinfo->fn_oid, &live, &expired, &bytes);
		values[STATS_COL_LIVE_KEYS] = Int64GetDatum(live);
		values[STATS_COL_EXPIRED_KEYS] = Int64GetDatum(expired);
		values[STATS_COL_TABLE_BYTES] = Int64GetDatum(bytes);
		if (stats_shared == NULL)
			nulls[STATS_COL_RESET] = true;
		else if (e == NULL)
			values[STATS_COL_RESET] = TimestampTzGetDatum(PgStartTime);
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
	IdemStatsEntry *e = stats_entry_of(MyDatabaseId, true);
	int			i;

	if (e == NULL)
		PG_RETURN_VOID();
	for (i = 0; i < IDEM_STAT_COUNT; i++)
		pg_atomic_write_u64(&e->counters[i], 0);
	pg_atomic_write_u64(&e->reset_time, (uint64) GetCurrentTimestamp());
	PG_RETURN_VOID();
}
