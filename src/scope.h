/*-------------------------------------------------------------------------
 *
 * scope.h
 *	  Whose key a key is: the owner and scope it is stored and looked up
 *	  under, and the object its key lock is taken on.
 *
 * Owned by scope.c: every type and function declared here.
 *
 * src/scope.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDEMPOTENCY_SCOPE_H
#define IDEMPOTENCY_SCOPE_H

#include "fmgr.h"

typedef struct KeyScope
{
	Oid			owner;			/* role keys: the role; guard keys: InvalidOid */
	const char *scope;			/* role keys: idempotency.tenant; guard keys:
								 * the guard id */
	Oid			lock_object;	/* the role, or the guarded table */
	bool		guard;			/* a key of a dedup guard */
} KeyScope;

extern void scope_of_role(KeyScope *scope);
extern void scope_of_tenant(KeyScope *scope, const char *tenant);
extern void scope_of_guard(KeyScope *scope, const char *guard_id,
						   Oid guarded_table);
extern bool scope_equal(const KeyScope *a, const KeyScope *b);
extern char *key_argument(FunctionCallInfo fcinfo, int argno);

#endif							/* IDEMPOTENCY_SCOPE_H */
