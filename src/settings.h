/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  The idempotency.* configuration parameters.
 *
 * Owned by settings.c: every variable and function declared here.
 *
 * src/settings.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDEMPOTENCY_SETTINGS_H
#define IDEMPOTENCY_SETTINGS_H

#include "utils/timestamp.h"

extern int	idem_ttl_seconds;
extern int	idem_max_key_length;
extern int	idem_max_result_size;
extern bool idem_wait;
extern char *idem_tenant;
extern int	idem_stats_max_databases;

/* largest idempotency.stats_max_databases: about 100 MB of shared memory */
#define IDEM_STATS_MAX_DATABASES_LIMIT 1000000

/* longest idempotency.tenant, in bytes: it shares the primary key with the key */
#define IDEM_TENANT_LENGTH_LIMIT 255

extern void idem_settings_init(void);
extern Interval *idem_ttl_interval(int seconds);

#endif							/* IDEMPOTENCY_SETTINGS_H */
