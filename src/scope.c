/*-------------------------------------------------------------------------
 *
 * scope.c
 *	  Whose key a key is: the scope of the calling role's keys.
 *
 * src/scope.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "idempotency.h"

/* The current role's scope, looked up once; a change to pg_authid drops it. */
static Oid	scope_role = InvalidOid;
static char *scope_of_role = NULL;

static void
role_scope_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	scope_role = InvalidOid;
}

void
scope_init(void)
{
	CacheRegisterSyscacheCallback(AUTHOID, role_scope_invalidate, (Datum) 0);
}

/*
 * The scope of the calling role's keys: 'role:' and the role's name.  A copy
 * in the current memory context: a nested call as another role may replace
 * the cached one.
 */
char *
keystore_role_scope(void)
{
	Oid			role = GetUserId();

	if (role != scope_role)
	{
		char	   *scope = MemoryContextStrdup(TopMemoryContext,
												psprintf("role:%s",
														 GetUserNameFromId(role, false)));

		if (scope_of_role != NULL)
			pfree(scope_of_role);
		scope_of_role = scope;
		scope_role = role;
	}
	return pstrdup(scope_of_role);
}

