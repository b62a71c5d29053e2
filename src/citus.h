/*-------------------------------------------------------------------------
 *
 * citus.h
 *	  Running safely under Citus, or refusing to (citus.c).
 *
 * Every function is a no-op unless Citus is in shared_preload_libraries
 * and the citus extension exists in the current database.  No Citus symbol
 * is linked: they are looked up at run time.
 *
 * src/citus.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDEMPOTENCY_CITUS_H
#define IDEMPOTENCY_CITUS_H

/*
 * Refuse (0A000) when the keys table keys_relid, or the guard registry
 * beside it, is a Citus table: the extension reads them directly, on this
 * node.  Called wherever the keys table is opened.
 */
extern void citus_check_keys_table(Oid keys_relid);

/*
 * A key is about to be stored: refuse (0A000) on a Citus worker node
 * (unless the key is beside its shard, colocated.c), and make this
 * transaction commit its remote writes, if any, with two-phase commit, so
 * that they and the key commit or abort together.
 */
extern void citus_claim_key(bool beside_shard);

/*
 * idem_guard on relid, or its trigger firing there: refuse (0A000) a Citus
 * table, or on a worker.
 */
extern void citus_check_guard_table(Oid relid);

/* Used by colocated.c, keys beside their shard. */
extern void citus_require(const char *function);
extern bool citus_present(void);
extern int32 citus_local_group(void);
extern void citus_lock_shard(int64 shardid);

#endif							/* IDEMPOTENCY_CITUS_H */
