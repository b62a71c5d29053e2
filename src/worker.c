/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The purge background worker: expired keys go away by themselves.
 *
 * With shared_preload_libraries = 'idempotency' the postmaster starts a
 * launcher, connected to no database, which every
 * idempotency.purge_interval lists the databases that accept connections
 * and, one at a time, starts a short-lived worker in each.  That worker
 * looks for the extension in its database (and exits at once if it is not
 * there, still at version 1.0, whose tables this library cannot purge
 * until ALTER EXTENSION UPDATE, or read-only by default_transaction_read_only),
 * then deletes expired keys in batches of IDEM_PURGE_BATCH, each
 * batch in a transaction of its own, by calling the extension's own
 * idem_purge as the extension's owner, until a batch comes back short.
 *
 * So a purge never holds a lock for longer than one small batch, and no
 * caller ever waits for one: the table lock it takes (ROW EXCLUSIVE, and
 * never waiting for it: a database whose keys table someone else has locked
 * is left for the next pass) conflicts with no caller, and the rows it
 * deletes are expired ones, which callers never lock, update or wait for: a
 * new request under an expired key inserts a row of its own (keystore.c).
 * SKIP LOCKED only keeps two purges from queueing behind each other.
 *
 * Anything going wrong in a database (the extension dropped under it, the
 * database dropped) ends that database's worker with an ERROR or FATAL,
 * which the launcher notices and moves on from; the launcher itself, if it
 * exits for any reason other than a server shutdown, is restarted by the
 * postmaster after IDEM_LAUNCHER_RESTART seconds.  Neither is a crash: the
 * server goes on.  Templates are skipped (a connection to one would make
 * CREATE DATABASE fail), and a database worker stops between batches when
 * someone waits to drop or rename its database.
 *
 * src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "idempotency.h"

PGDLLEXPORT void idem_purge_launcher_main(Datum main_arg);
PGDLLEXPORT void idem_purge_worker_main(Datum main_arg);

/* keys deleted per transaction */
#define IDEM_PURGE_BATCH		500

/* the keys table, in the extension's schema */
#define KEYS_TABLE				"idempotency_keys"

/* seconds before the postmaster restarts a launcher that exited */
#define IDEM_LAUNCHER_RESTART	5

int			idem_purge_interval_ms = 60 * 1000;

/* A worker of ours: connected to a database (or none), after recovery. */
static void
worker_init(BackgroundWorker *worker, const char *function, const char *type,
			int restart_time)
{
	memset(worker, 0, sizeof(BackgroundWorker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = restart_time;
	snprintf(worker->bgw_library_name, BGW_MAXLEN, "idempotency");
	snprintf(worker->bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(worker->bgw_name, BGW_MAXLEN, "%s", type);
	snprintf(worker->bgw_type, BGW_MAXLEN, "%s", type);
}

void
idem_worker_init(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("idempotency.purge_interval",
							"How often the background worker purges expired idempotency keys.",
							"0 turns the worker off. Needs shared_preload_libraries = 'idempotency'.",
							&idem_purge_interval_ms,
							60 * 1000,
							0,
							INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	worker_init(&worker, "idem_purge_launcher_main", "idempotency purge launcher",
				IDEM_LAUNCHER_RESTART);
	RegisterBackgroundWorker(&worker);
}

/* The databases a purge may visit: all but templates and invalid ones. */
static List *
purge_databases(void)
{
	List	   *dbs = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;
	MemoryContext cxt = CurrentMemoryContext;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);
		MemoryContext old;

		if (!db->datallowconn || db->datistemplate ||
			idem_database_is_invalid(db))
			continue;
		old = MemoryContextSwitchTo(cxt);
		dbs = lappend_oid(dbs, db->oid);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return dbs;
}

/*
 * Run one database's worker and wait for it to end.  False if it could not
 * be started (no free background worker slot).
 */
static bool
purge_database(Oid dbid)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	pid_t		pid;

	worker_init(&worker, "idem_purge_worker_main", "idempotency purge worker",
				BGW_NEVER_RESTART);
	snprintf(worker.bgw_name, BGW_MAXLEN, "idempotency purge worker for database %u", dbid);
	worker.bgw_main_arg = ObjectIdGetDatum(dbid);
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		return false;
	if (WaitForBackgroundWorkerStartup(handle, &pid) == BGWH_STARTED)
		(void) WaitForBackgroundWorkerShutdown(handle);
	pfree(handle);
	return true;
}

void
idem_purge_launcher_main(Datum main_arg)
{
	TimestampTz last_pass = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("idempotency purge launcher");

	ereport(DEBUG1, (errmsg("idempotency purge launcher started")));

	for (;;)
	{
		long		timeout = -1;
		int			events = WL_LATCH_SET | WL_EXIT_ON_PM_DEATH;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if (idem_purge_interval_ms > 0)
		{
			TimestampTz next = TimestampTzPlusMilliseconds(last_pass,
														   idem_purge_interval_ms);

			timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next);
			if (timeout <= 0)
			{
				List	   *dbs;
				ListCell   *lc;
				int			skipped = 0;

				last_pass = GetCurrentTimestamp();
				dbs = purge_databases();
				foreach(lc, dbs)
				{
					CHECK_FOR_INTERRUPTS();
					if (!purge_database(lfirst_oid(lc)))
						skipped++;
				}
				if (skipped > 0)
					ereport(LOG,
							(errmsg("idempotency purge skipped %d of %d databases: no background worker slot was free",
									skipped, list_length(dbs)),
							 errhint("Raise max_worker_processes.")));
				ereport(DEBUG1,
						(errmsg("idempotency purge pass visited %d databases",
								list_length(dbs) - skipped)));
				list_free(dbs);
				continue;		/* settings may have changed meanwhile */
			}
			events |= WL_TIMEOUT;
		}

		(void) WaitLatch(MyLatch, events, timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * Does someone wait to drop (or rename) this database?  DROP DATABASE holds
 * its lock on the database while it waits for other sessions to leave.
 */
static bool
database_wanted(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, MyDatabaseId, 0);
	if (LockAcquire(&tag, RowExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, RowExclusiveLock, false);
	return false;
}

/*
 * The owner, schema and version of the extension extoid; false if it is
 * gone.
 */
static bool
extension_owner_schema(Oid extoid, Oid *owner, Oid *schema, char **version)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		found = false;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extoid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		Datum		d;
		bool		isnull;

		*owner = ((Form_pg_extension) GETSTRUCT(tuple))->extowner;
		*schema = ((Form_pg_extension) GETSTRUCT(tuple))->extnamespace;
		d = heap_getattr(tuple, Anum_pg_extension_extversion,
						 RelationGetDescr(rel), &isnull);
		*version = isnull ? pstrdup("") : TextDatumGetCString(d);
		found = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * Can this library purge the tables of that version of the extension?  Not
 * those of 1.0: a database where ALTER EXTENSION idempotency UPDATE has not
 * run yet since the server got this library is left alone (its idem_purge
 * would fail every pass, as every call there does until the update).
 */
static bool
purgeable_version(const char *version)
{
	return strcmp(version, "1.0") != 0;
}

/*
 * Lock the keys table (in schema) for the purge without waiting.  A purge
 * must not queue behind CREATE INDEX, REINDEX, VACUUM FULL or LOCK TABLE
 * on it: the launcher visits the databases one at a time, so that wait
 * would hold up the purge of every other database too.  False if the lock
 * is busy (the next pass tries again); true if it is held, or if there is
 * no such table (idem_purge then says what is wrong).
 */
static bool
keys_table_lockable(Oid schema)
{
	Oid			relid = get_relname_relid(KEYS_TABLE, schema);

	return !OidIsValid(relid) ||
		ConditionalLockRelationOid(relid, RowExclusiveLock);
}

/* One call of the extension's idem_purge, as the extension's owner. */
static int64
purge_as_owner(Oid owner, Oid schema)
{
	char	   *sql;
	Oid			save_userid;
	int			save_sec_context;
	bool		isnull;
	int64		purged;

	sql = psprintf("SELECT %s.idem_purge(%d::pg_catalog.int8)",
				   quote_identifier(get_namespace_name(schema)),
				   IDEM_PURGE_BATCH);
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	pgstat_report_activity(STATE_RUNNING, sql);
	if (SPI_execute(sql, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "SPI_execute of \"%s\" failed", sql);
	purged = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 1, &isnull));
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return purged;
}

/*
 * One batch, in a transaction of its own: the number of keys deleted, or
 * -1 if the extension is not (or no longer) in this database, or this
 * database cannot be purged now: its extension is at a version this
 * library cannot purge, its transactions are read-only
 * (default_transaction_read_only set on it), which DELETE would fail in,
 * or its keys table is locked by someone else (keys_table_lockable).
 */
static int64
purge_batch(void)
{
	Oid			extoid;
	Oid			owner;
	Oid			schema;
	char	   *version;
	const char *skip = NULL;
	int64		purged = -1;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	extoid = get_extension_oid("idempotency", true);
	if (OidIsValid(extoid) &&
		extension_owner_schema(extoid, &owner, &schema, &version))
	{
		if (!purgeable_version(version))
			skip = psprintf("the extension is at version %s (run ALTER EXTENSION idempotency UPDATE)",
							version);
		else if (XactReadOnly)
			skip = "its transactions are read-only (default_transaction_read_only)";
		else if (!keys_table_lockable(schema))
			skip = "its keys table is locked by another session";
		else
			purged = purge_as_owner(owner, schema);
	}
	if (skip != NULL)
		ereport(DEBUG1,
				(errmsg("idempotency purge skips database \"%s\": %s",
						get_database_name(MyDatabaseId), skip)));
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return purged;
}

void
idem_purge_worker_main(Datum main_arg)
{
	Oid			dbid = DatumGetObjectId(main_arg);
	int64		total = 0;
	int			batches = 0;
	char	   *dbname;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);
	pgstat_report_appname("idempotency purge worker");
	StartTransactionCommand();
	dbname = MemoryContextStrdup(TopMemoryContext, get_database_name(dbid));
	CommitTransactionCommand();

	for (;;)
	{
		int64		purged;

		CHECK_FOR_INTERRUPTS();
		if (database_wanted())
		{
			ereport(DEBUG1,
					(errmsg("idempotency purge of database \"%s\" stopped: the database is being dropped or altered",
							dbname)));
			break;
		}
		purged = purge_batch();
		if (purged < 0)
			break;				/* no extension here */
		total += purged;
		batches++;
		if (purged < IDEM_PURGE_BATCH)
			break;
	}
	if (batches > 0)
		ereport(total > 0 ? DEBUG1 : DEBUG2,
				(errmsg("idempotency purged " INT64_FORMAT " expired keys in database \"%s\" in %d batches",
						total, dbname, batches)));
	proc_exit(0);
}
