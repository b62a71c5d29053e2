/*-------------------------------------------------------------------------
 *
 * fingerprint.h
 *	  Fingerprints of requests, stored with each key.
 *
 * Owned by fingerprint.c: every function declared here.  The forms of a
 * stored fingerprint are described there.
 *
 * src/fingerprint.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDEMPOTENCY_FINGERPRINT_H
#define IDEMPOTENCY_FINGERPRINT_H

#include "utils/jsonb.h"

#include "statement.h"

#define IDEM_FINGERPRINT_LEN_1_0	32	/* SHA-256, no prefix */
#define IDEM_FINGERPRINT_STATEMENT	0x02	/* idem_execute since 1.1 */
#define IDEM_FINGERPRINT_REQUEST	0x03	/* idem_begin */
#define IDEM_FINGERPRINT_DIGEST_LEN	16	/* of SHA-256, after the 0x02/0x03 */

extern void fingerprint_init(void);
extern bytea *idem_fingerprint(const char *sql, const RequestArgs *args);
extern bool fingerprint_statement_matches(bytea *stored, bytea *current,
										  const char *sql,
										  const RequestArgs *args);
extern bytea *fingerprint_request(Jsonb *request);
extern bool fingerprint_request_matches(bytea *stored, bytea *current);

#endif							/* IDEMPOTENCY_FINGERPRINT_H */
