/*-------------------------------------------------------------------------
 *
 * execute.h
 *	  idem_execute.
 *
 * Owned by execute.c: every function declared here (execute_key_running
 * tells request.c which keys idem_execute is running).
 *
 * src/execute.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDEMPOTENCY_EXECUTE_H
#define IDEMPOTENCY_EXECUTE_H

#include "scope.h"

extern void execute_init(void);
extern bool execute_key_running(const KeyScope *scope, const char *key);

#endif							/* IDEMPOTENCY_EXECUTE_H */
