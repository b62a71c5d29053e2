/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  The idempotency.* configuration parameters.
 *
 * src/settings.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "datatype/timestamp.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/guc.h"

#include "compat.h"

#include "idempotency.h"

int			idem_ttl_seconds = 24 * 60 * 60;
int			idem_max_key_length = 255;
int			idem_max_result_size = 1024 * 1024;
bool		idem_wait = true;
char	   *idem_tenant = NULL;
int			idem_stats_max_databases = 1024;

/*
 * Longest key allowed.  The primary key's btree must fit scope and key in a
 * third of a page, so keys stay well below 2700 bytes.
 */
#define IDEM_KEY_LENGTH_LIMIT	2048

/* true while _PG_init defines the settings (see check_tenant) */
static bool defining_settings = false;

/*
 * A tenant longer than IDEM_TENANT_LENGTH_LIMIT is refused at once when a
 * session SETs it.  Any other way in is let through and refused where the
 * scope is built (scope_of_role): when a GUC check fails on a value set
 * before the library was loaded (a placeholder, re-applied as the setting
 * is defined), or on one from the configuration file or ALTER ROLE ... SET,
 * PostgreSQL only warns and keeps the default tenant '', whose keys every
 * such session shares; the value must rather reach the call and fail it.
 */
static bool
check_tenant(char **newval, void **extra, GucSource source)
{
	if (*newval != NULL && strlen(*newval) > IDEM_TENANT_LENGTH_LIMIT &&
		source >= PGC_S_INTERACTIVE && !defining_settings)
	{
		GUC_check_errdetail("idempotency.tenant is at most %d bytes long.",
							IDEM_TENANT_LENGTH_LIMIT);
		return false;
	}
	return true;
}

void
idem_settings_init(void)
{
	defining_settings = true;
	DefineCustomIntVariable("idempotency.ttl",
							"How long an idempotency key stays live.",
							"A key past its expiry counts as absent: the next call runs the statement again.",
							&idem_ttl_seconds,
							24 * 60 * 60,
							1,
							INT_MAX,
							PGC_USERSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("idempotency.max_key_length",
							"Longest idempotency key accepted, in bytes.",
							NULL,
							&idem_max_key_length,
							255,
							1,
							IDEM_KEY_LENGTH_LIMIT,
							PGC_USERSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("idempotency.max_result_size",
							"Largest result idem_execute stores, in bytes.",
							NULL,
							&idem_max_result_size,
							1024 * 1024,
							0,
							MaxAllocSize / 2,
							PGC_USERSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("idempotency.wait",
							 "Wait for a concurrent transaction holding the same key.",
							 "When off, a call whose key is held by another in-flight transaction fails at once with SQLSTATE IK002.",
							 &idem_wait,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("idempotency.tenant",
							   "Tenant whose keys this session uses, beside the role.",
							   "Part of every key's scope: applications that serve many users through one role set it per request (SET LOCAL) to keep their keys apart.",
							   &idem_tenant,
							   "",
							   PGC_USERSET,
							   0,
							   check_tenant, NULL, NULL);

	/*
	 * Read by stats.c to size its shared memory, hence PGC_POSTMASTER.  A
	 * PGC_POSTMASTER setting can only be defined by a preloaded library
	 * (later it is a FATAL error); loaded any other way there are no
	 * counters, and the setting is defined PGC_SIGHUP, so that a
	 * postgresql.conf naming it is no error there.
	 */
	DefineCustomIntVariable("idempotency.stats_max_databases",
							"Most databases idempotency_stats counts at a time.",
							"Each counted database holds an entry in shared memory, sized at server start; a dropped database gives its entry back.",
							&idem_stats_max_databases,
							1024,
							1,
							IDEM_STATS_MAX_DATABASES_LIMIT,
							process_shared_preload_libraries_in_progress ?
							PGC_POSTMASTER : PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	defining_settings = false;

	MarkGUCPrefixReserved("idempotency");
}

/* The TTL as an interval, for now() + ttl in the keys table. */
Interval *
idem_ttl_interval(int seconds)
{
	Interval   *ttl = palloc0(sizeof(Interval));

	ttl->time = (TimeOffset) seconds * USECS_PER_SEC;
	return ttl;
}
