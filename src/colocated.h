/*-------------------------------------------------------------------------
 *
 * colocated.h
 *	  Keys beside their shard, under Citus (colocated.c).
 *
 * Owned by colocated.c: every function declared here, and the SQL
 * functions idem_colocate_keys, idem_execute_colocated,
 * idem_lookup_colocated and idem_forget_colocated.
 *
 * src/colocated.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDEMPOTENCY_COLOCATED_H
#define IDEMPOTENCY_COLOCATED_H

#include "keystore.h"

/*
 * idem_purge's part on the coordinator: delete the expired keys of every
 * colocated keys table beside ks's table; how many.  Needs SPI.
 */
extern int64 colocated_purge(KeyStore *ks);

#endif							/* IDEMPOTENCY_COLOCATED_H */
