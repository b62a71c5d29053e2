/*-------------------------------------------------------------------------
 *
 * idempotency.h
 *	  Umbrella header: the extension's SQLSTATEs and every module's header.
 *
 * Each module declares what it owns in its own header (settings.h for
 * settings.c, and so on); a source file may include just the headers it
 * needs, or this one.  A new module adds its header and one #include line
 * below.
 *
 * src/idempotency.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDEMPOTENCY_H
#define IDEMPOTENCY_H

/* SQLSTATEs of our own, in the implementation-defined class IK */
#define ERRCODE_IDEM_KEY_REUSED			MAKE_SQLSTATE('I','K','0','0','1')
#define ERRCODE_IDEM_KEY_IN_FLIGHT		MAKE_SQLSTATE('I','K','0','0','2')
#define ERRCODE_IDEM_RESULT_TOO_LARGE	MAKE_SQLSTATE('I','K','0','0','3')

#include "settings.h"
#include "canonical.h"
#include "statement.h"
#include "fingerprint.h"
#include "plancache.h"
#include "scope.h"
#include "keystore.h"
#include "claim.h"
#include "execute.h"
#include "request.h"
#include "stats.h"
#include "citus.h"
#include "colocated.h"

#endif							/* IDEMPOTENCY_H */
