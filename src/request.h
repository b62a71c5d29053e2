/*-------------------------------------------------------------------------
 *
 * request.h
 *	  Keys for a whole transaction: idem_begin and idem_finish.
 *
 * Owned by request.c: every function declared here.
 *
 * src/request.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDEMPOTENCY_REQUEST_H
#define IDEMPOTENCY_REQUEST_H

#include "scope.h"

extern void request_init(void);
extern bool request_key_begun(const KeyScope *scope, const char *key);

#endif							/* IDEMPOTENCY_REQUEST_H */
