/*-------------------------------------------------------------------------
 *
 * idempotency.c
 *	  Module entry point: the magic block and _PG_init.
 *
 * Each concern lives in its own file, declared in its own header (see
 * idempotency.h): settings.c (GUCs), scope.c (whose key), fingerprint.c
 * (request hashing), keystore.c (the keys table), claim.c (claiming a
 * key), statement.c (running the user's statement and capturing its
 * result), plancache.c (its plans), execute.c (idem_execute), maintenance.c (idem_lookup, idem_forget, idem_purge), guard.c (the dedup
 * guard trigger, idem_guard and idem_unguard), stats.c (the counters of
 * the idempotency_stats view), worker.c (the purge background worker).
 *
 * src/idempotency.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "idempotency.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	/* settings of the worker first: idem_settings_init reserves the prefix */
	idem_worker_init();
	idem_settings_init();
	keystore_init();
	execute_init();
	fingerprint_init();
	request_init();
	idem_stats_init();
}
