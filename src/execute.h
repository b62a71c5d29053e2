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

#include "keystore.h"

/*
 * Where idem_execute_colocated (colocated.c) keeps a key: its scope, and
 * open_keys, which finds the table (routing the call) once the input has
 * been checked.
 */
typedef struct ExecuteTarget
{
	KeyScope	scope;
	void		(*open_keys) (struct ExecuteTarget *target, KeyStore *ks);
	void	   *arg;
} ExecuteTarget;

extern void execute_init(void);
extern Datum execute_request(FunctionCallInfo fcinfo, int key_arg,
							 ExecuteTarget *target);
extern bool execute_key_running(const KeyScope *scope, const char *key);

#endif							/* IDEMPOTENCY_EXECUTE_H */
