/*-------------------------------------------------------------------------
 *
 * citus.c
 *	  Correct under Citus, or a clear refusal.
 *
 * On a Citus coordinator a key is stored in the coordinator's own
 * idempotency_keys table while the statement it protects may write a
 * shard on a worker.  Citus commits a transaction with remote writes in
 * one phase unless asked otherwise: it commits the workers first, then the
 * coordinator, and a crash in between leaves the write without its key (a
 * retry would run it again).  So whenever a key is about to be stored,
 * citus_claim_key() asks Citus for two-phase commit.  The flag only
 * matters for a transaction that writes on a worker: Citus then prepares
 * the remote transactions, commits the coordinator's (key row included)
 * and only then commits the prepared ones, and its recovery
 * (recover_prepared_transactions, or the maintenance daemon) settles the
 * prepared transactions of a crash by the coordinator's outcome.  A
 * transaction without remote writes pays nothing; a replay stores no key
 * and never asks.
 *
 * What cannot be made safe is refused, with SQLSTATE 0A000:
 *	- the keys table or the guard registry turned into a Citus table
 *	  (distributed, reference or Citus local): the extension reads them
 *	  directly through their indexes, which on a Citus table hold nothing;
 *	- storing a key on a worker node: the key would live only on that
 *	  worker, and a retry that reaches another node would run again;
 *	- idem_guard on a Citus table: its rows are inserted in shards.
 *
 * The extension has no link-time dependency on Citus.  Citus can only be
 * loaded through shared_preload_libraries, so when it is listed there its
 * library is already in this process and load_external_function() finds
 * it there; its functions are looked up once per backend.  When Citus is
 * loaded but the current database has no citus extension, nothing here
 * applies.
 *
 * src/citus.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/extension.h"
#include "fmgr.h"
#include "storage/lockdefs.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/varlena.h"

#include "idempotency.h"

/* Citus's group id of the coordinator (COORDINATOR_GROUP_ID) */
#define CITUS_COORDINATOR_GROUP 0

#define GUARDS_TABLE_NAME "idempotency_guards"

typedef enum CitusState
{
	CITUS_UNKNOWN,				/* not looked up yet in this backend */
	CITUS_ABSENT,				/* not in shared_preload_libraries */
	CITUS_PRESENT,				/* loaded, its functions found */
	CITUS_UNSUPPORTED			/* loaded, but a function is missing */
} CitusState;

static CitusState citus_state = CITUS_UNKNOWN;

/* Citus's own functions, exported by citus.so */
static bool (*CitusHasBeenLoaded_fn) (void);
static int32 (*GetLocalGroupId_fn) (void);
static bool (*IsCitusTable_fn) (Oid relid);
static void (*Use2PCForCoordinatedTransaction_fn) (void);
static void (*LockShardDistributionMetadata_fn) (int64 shardId, LOCKMODE lockMode);

/* the guard registry beside the keys table last checked */
static Oid	checked_keys_relid = InvalidOid;
static Oid	checked_guards_relid = InvalidOid;

/* Is citus one of shared_preload_libraries ("citus", "citus.so", a path)? */
static bool
citus_preloaded(void)
{
	const char *libs = GetConfigOption("shared_preload_libraries", true, false);
	char	   *copy;
	List	   *names;
	ListCell   *lc;
	bool		found = false;

	if (libs == NULL || libs[0] == '\0')
		return false;
	copy = pstrdup(libs);
	if (!SplitDirectoriesString(copy, ',', &names))
		return false;
	foreach(lc, names)
	{
		char	   *name = (char *) lfirst(lc);
		char	   *base = last_dir_separator(name);

		base = base ? base + 1 : name;
		if (strcmp(base, "citus") == 0 || strcmp(base, "citus.so") == 0)
			found = true;
	}
	list_free_deep(names);
	pfree(copy);
	return found;
}

static void
citus_lookup(void)
{
	if (!citus_preloaded())
	{
		citus_state = CITUS_ABSENT;
		return;
	}
	CitusHasBeenLoaded_fn = (bool (*) (void))
		load_external_function("citus", "CitusHasBeenLoaded", false, NULL);
	GetLocalGroupId_fn = (int32 (*) (void))
		load_external_function("citus", "GetLocalGroupId", false, NULL);
	IsCitusTable_fn = (bool (*) (Oid))
		load_external_function("citus", "IsCitusTable", false, NULL);
	Use2PCForCoordinatedTransaction_fn = (void (*) (void))
		load_external_function("citus", "Use2PCForCoordinatedTransaction",
							   false, NULL);
	LockShardDistributionMetadata_fn = (void (*) (int64, LOCKMODE))
		load_external_function("citus", "LockShardDistributionMetadata",
							   false, NULL);
	if (CitusHasBeenLoaded_fn && GetLocalGroupId_fn && IsCitusTable_fn &&
		Use2PCForCoordinatedTransaction_fn && LockShardDistributionMetadata_fn)
		citus_state = CITUS_PRESENT;
	else
		citus_state = CITUS_UNSUPPORTED;
}

/*
 * Is Citus active in this database?  A Citus whose functions we could not
 * find is refused, rather than run without its safety.
 */
static bool
citus_active(void)
{
	if (citus_state == CITUS_UNKNOWN)
		citus_lookup();
	switch (citus_state)
	{
		case CITUS_PRESENT:
			return CitusHasBeenLoaded_fn();
		case CITUS_UNSUPPORTED:
			if (OidIsValid(get_extension_oid("citus", true)))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("idempotency does not support this version of Citus"),
						 errdetail("The functions CitusHasBeenLoaded, GetLocalGroupId, IsCitusTable, Use2PCForCoordinatedTransaction and LockShardDistributionMetadata were not all found in the citus library."),
						 errhint("Use Citus 11 or later, or drop the citus extension from this database.")));
			return false;
		default:
			return false;
	}
}

static void
refuse_citus_table(Oid relid)
{
	char	   *name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												  get_rel_name(relid));

	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("table %s of extension idempotency is a Citus table", name),
			 errdetail("The extension reads and writes it directly on the node where it is called. A distributed, reference or Citus local table keeps its rows in shards, where stored keys would not be found and retries would run again."),
			 errhint("Citus cannot undistribute a table that belongs to an extension: copy out the keys to keep, then recreate the extension on the coordinator (DROP EXTENSION idempotency CASCADE; CREATE EXTENSION idempotency).")));
}

static void
refuse_on_worker(void)
{
	int32		group = GetLocalGroupId_fn();

	if (group != CITUS_COORDINATOR_GROUP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("idempotency keys cannot be stored on a Citus worker node"),
				 errdetail("This node is a worker (group %d) of a Citus cluster. A key stored in its own idempotency_keys table would not be found by a retry that reaches the coordinator or another worker, and the retry would run again.",
						   group),
				 errhint("Call the function on the coordinator: it keeps the keys in one place and commits them together with the distributed writes.")));
}

void
citus_check_keys_table(Oid keys_relid)
{
	if (!citus_active())
		return;
	if (keys_relid != checked_keys_relid)
	{
		checked_guards_relid = get_relname_relid(GUARDS_TABLE_NAME,
												 get_rel_namespace(keys_relid));
		checked_keys_relid = keys_relid;
	}
	if (IsCitusTable_fn(keys_relid))
		refuse_citus_table(keys_relid);
	if (OidIsValid(checked_guards_relid) && IsCitusTable_fn(checked_guards_relid))
		refuse_citus_table(checked_guards_relid);
}

void
citus_claim_key(bool beside_shard)
{
	if (!citus_active())
		return;

	/*
	 * A key beside its shard (colocated.c) is stored on the node that owns
	 * the shard, whichever node that is, and commits with the local write.
	 * The flag below still matters if the statement also wrote another
	 * node: without remote writes Citus ignores it.
	 */
	if (!beside_shard)
		refuse_on_worker();

	/*
	 * Only a flag for this transaction: Citus uses two-phase commit for the
	 * remote transactions that wrote, whether they wrote before or after
	 * this point, and ignores it when there are none.
	 */
	Use2PCForCoordinatedTransaction_fn();
}

void
citus_check_guard_table(Oid relid)
{
	if (!citus_active())
		return;
	refuse_on_worker();
	if (IsCitusTable_fn(relid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot guard table \"%s\": it is a Citus table",
						get_rel_name(relid)),
				 errdetail("The guard works on the rows of a local table. Rows of a distributed, reference or Citus local table are inserted into its shards, where the guard's trigger cannot find its registry and keys."),
				 errhint("Deduplicate writes to it with idem_execute or idem_begin on the coordinator.")));
}

/*
 * For the functions of keys beside their shard: refuse (0A000) unless
 * Citus is active in this database.
 */
void
citus_require(const char *function)
{
	if (!citus_active())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s requires Citus", function),
				 errdetail("Keys beside their shard live in a table distributed by Citus, which is not active in this database."),
				 errhint("Add citus to shared_preload_libraries and CREATE EXTENSION citus, or use idem_execute.")));
}

/* Is Citus active in this database? */
bool
citus_present(void)
{
	return citus_active();
}

/* Citus's group id of this node (0 on the coordinator); Citus is active. */
int32
citus_local_group(void)
{
	return GetLocalGroupId_fn();
}

/*
 * Take Citus's metadata lock of a shard and of its colocated shards in
 * ShareLock, as its executor does before it writes one: a shard move or
 * split blocks writes by taking it in ExclusiveLock on every node, so it
 * waits for this transaction, and this transaction for it.
 */
void
citus_lock_shard(int64 shardid)
{
	LockShardDistributionMetadata_fn(shardid, ShareLock);
}
