/*-------------------------------------------------------------------------
 *
 * scope.h
 *	  Whose key a key is: the scope a key is stored and looked up under.
 *
 * Owned by scope.c: every function declared here.
 *
 * src/scope.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDEMPOTENCY_SCOPE_H
#define IDEMPOTENCY_SCOPE_H

extern void scope_init(void);
extern char *keystore_role_scope(void);

#endif							/* IDEMPOTENCY_SCOPE_H */
