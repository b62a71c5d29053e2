/*-------------------------------------------------------------------------
 *
 * claim.h
 *	  Claiming a key: replay, wait for another transaction, or run.
 *
 * Owned by claim.c: every type and function declared here.
 *
 * src/claim.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDEMPOTENCY_CLAIM_H
#define IDEMPOTENCY_CLAIM_H

#include "keystore.h"

typedef enum ClaimDecision
{
	CLAIM_REPLAY,				/* the key is live: replay or IK001 */
	CLAIM_INSERT,				/* absent: run, then insert its row */
	CLAIM_RENEW					/* expired: run, then replace its row */
} ClaimDecision;

extern ClaimDecision claim_key(KeyStore *ks, const KeyScope *scope,
							   const char *key, KeyProbe *probe);
extern void claim_store(KeyStore *ks, const KeyScope *scope, const char *key,
						ClaimDecision decision, bytea *fingerprint,
						Interval *ttl, Jsonb *result);
extern void claim_release(const KeyScope *scope, const char *key);
extern void raise_key_in_flight(const char *key, TransactionId holder);
extern void raise_key_reused(const char *key, const char *detail);

#endif							/* IDEMPOTENCY_CLAIM_H */
