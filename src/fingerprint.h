/*-------------------------------------------------------------------------
 *
 * fingerprint.h
 *	  Fingerprints of requests, stored with each key.
 *
 * Owned by fingerprint.c: every function declared here.
 *
 * src/fingerprint.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDEMPOTENCY_FINGERPRINT_H
#define IDEMPOTENCY_FINGERPRINT_H

#include "statement.h"

#define IDEM_FINGERPRINT_LEN	32	/* SHA-256 */

extern bytea *idem_fingerprint(const char *sql, const RequestArgs *args);

#endif							/* IDEMPOTENCY_FINGERPRINT_H */
