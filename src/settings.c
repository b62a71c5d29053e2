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
#include "utils/memutils.h"
#include "utils/guc.h"

#include "compat.h"

#include "idempotency.h"

int			idem_ttl_seconds = 24 * 60 * 60;
int			idem_max_key_length = 255;
int			idem_max_result_size = 1024 * 1024;
bool		idem_wait = true;
char	   *idem_tenant = NULL;

/*
 * Longest key allowed.  The primary key's btree must fit scope and key in a
 * third of a page, so keys stay well below 2700 bytes.
 */
#define IDEM_KEY_LENGTH_LIMIT	2048

static bool
check_tenant(char **newval, void **extra, GucSource source)
{
	if (*newval != NULL && strlen(*newval) > IDEM_TENANT_LENGTH_LIMIT)
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
