/*-------------------------------------------------------------------------
 *
 * scope.c
 *	  Whose key a key is, decided in one place.
 *
 * A key row is identified by (owner, scope, key):
 *
 *	role keys (idem_execute, idem_begin/idem_finish, idem_lookup,
 *	idem_forget): owner = the current role (GetUserId(), the role whose
 *	privileges the statement runs with), scope = idempotency.tenant;
 *
 *	guard keys (the dedup guard trigger): owner = 0, scope = the guard id.
 *
 * Keys follow role OIDs, not names: a renamed role keeps its keys, and a
 * role dropped and created again under the same name starts with none.
 * idem_purge deletes the keys of roles that no longer exist, so that a
 * later role given the same OID (after the OID counter wraps around, 2^32
 * OIDs later) cannot inherit them.  The window left is a role dropped and
 * an unrelated role created with its very OID before the next purge: the
 * OID counter must wrap around in between, which takes billions of new
 * objects, and VACUUM must have removed the dead pg_authid row, since new
 * OIDs never collide with a row still in the catalog, dead or alive
 * (test/t/role_oid_reuse.pl simulates the reuse with pg_resetwal -o).
 *
 * src/scope.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/builtins.h"

#include "idempotency.h"

/* Refuse (22023) a tenant longer than IDEM_TENANT_LENGTH_LIMIT bytes. */
static void
check_tenant_length(const char *tenant, const char *what)
{
	size_t		len = strlen(tenant);

	if (len > IDEM_TENANT_LENGTH_LIMIT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is too long", what),
				 errdetail("The tenant is %zu bytes; %s is at most %d bytes long.",
						   len, what, IDEM_TENANT_LENGTH_LIMIT),
				 errhint("Use a shorter tenant, such as a user id or a hash of it.")));
}

/* The scope of the calling role's keys: the role and idempotency.tenant. */
void
scope_of_role(KeyScope *scope)
{
	const char *tenant = idem_tenant != NULL ? idem_tenant : "";

	/*
	 * Checked here as well as by the setting (settings.c): a tenant set
	 * before the library was loaded reaches us unchecked, and must fail the
	 * call rather than fall back to the default tenant.
	 */
	check_tenant_length(tenant, "idempotency.tenant");
	scope->owner = GetUserId();
	scope->scope = pstrdup(tenant);
	scope->lock_object = scope->owner;
	scope->guard = false;
}

/*
 * The scope of the calling role's keys beside a tenant's shard
 * (colocated.c): tenant is the text form of the distribution value.
 *
 * These keys move between nodes with their shard, and Citus copies shards
 * in binary, which would carry a role OID over as it is: role OIDs differ
 * from node to node (Citus creates roles on each node by name).  So the
 * role goes into the scope by name, as quote_ident(role) || '/' || tenant
 * (quote_ident's output never leaves a '/' unquoted, so no two pairs give
 * one scope), and the owner column is 0.  The key lock is still taken on
 * the role's OID here: locks never leave this node.
 */
void
scope_of_tenant(KeyScope *scope, const char *tenant)
{
	Oid			role = GetUserId();

	check_tenant_length(tenant, "tenant");
	scope->owner = InvalidOid;
	scope->scope = psprintf("%s/%s",
							quote_identifier(GetUserNameFromId(role, false)),
							tenant);
	scope->lock_object = role;
	scope->guard = false;
}

/*
 * The scope of a dedup guard's keys.  Its key locks are taken on the
 * guarded table (the partitioned table for a partition's rows).
 */
void
scope_of_guard(KeyScope *scope, const char *guard_id, Oid guarded_table)
{
	scope->owner = InvalidOid;
	scope->scope = guard_id;
	scope->lock_object = guarded_table;
	scope->guard = true;
}

bool
scope_equal(const KeyScope *a, const KeyScope *b)
{
	return a->owner == b->owner && a->guard == b->guard &&
		strcmp(a->scope, b->scope) == 0;
}

/*
 * The key argument argno of an SQL-callable function, checked as every
 * function that takes a key checks it: not NULL (22004), not empty, not
 * longer than idempotency.max_key_length (22023).
 */
char *
key_argument(FunctionCallInfo fcinfo, int argno)
{
	text	   *key;
	int			len;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("idempotency key must not be null")));
	key = PG_GETARG_TEXT_PP(argno);
	len = VARSIZE_ANY_EXHDR(key);
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("idempotency key must not be empty")));
	if (len > idem_max_key_length)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("idempotency key is too long"),
				 errdetail("The key is %d bytes; idempotency.max_key_length is %d bytes.",
						   len, idem_max_key_length),
				 errhint("Use a shorter key, such as a UUID or a hash of the request's identity.")));
	return text_to_cstring(key);
}
