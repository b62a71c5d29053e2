/*-------------------------------------------------------------------------
 *
 * execute.h
 *	  idem_execute.
 *
 * Owned by execute.c: every function declared here.
 *
 * src/execute.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDEMPOTENCY_EXECUTE_H
#define IDEMPOTENCY_EXECUTE_H

extern void execute_init(void);

#endif							/* IDEMPOTENCY_EXECUTE_H */
