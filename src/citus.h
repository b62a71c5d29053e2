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
 * A key is about to be stored: refuse (0A000) on a Citus worker node, and
 * on the coordinator make this transaction commit its remote writes with
 * two-phase commit, so that they and the key commit or abort together.
 */
extern void citus_claim_key(void);

/*
 * idem_guard on relid, or its trigger firing there: refuse (0A000) a Citus
 * table, or on a worker.
 */
extern void citus_check_guard_table(Oid relid);

#endif							/* IDEMPOTENCY_CITUS_H */
