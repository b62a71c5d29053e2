/*-------------------------------------------------------------------------
 *
 * stats.h
 *	  Counters of what the extension did, per database, in shared memory
 *	  (the idempotency_stats view), and the purge background worker.
 *
 * src/stats.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDEMPOTENCY_STATS_H
#define IDEMPOTENCY_STATS_H

#include "portability/instr_time.h"

/* One counter per outcome; the order of the view's columns. */
typedef enum IdemStat
{
	IDEM_STAT_EXECUTED,			/* statement run and key stored */
	IDEM_STAT_REPLAYED,			/* stored result returned */
	IDEM_STAT_MISMATCHED,		/* IK001 */
	IDEM_STAT_IN_FLIGHT,		/* IK002 */
	IDEM_STAT_TOO_LARGE,		/* IK003 */
	IDEM_STAT_WAITS,			/* waits for a concurrent holder */
	IDEM_STAT_WAIT_TIME_US,		/* ... and their total duration, in
								 * microseconds (the view shows ms) */
	IDEM_STAT_GUARD_INSERTED,	/* guarded rows let in */
	IDEM_STAT_GUARD_SKIPPED,	/* guarded rows dropped as duplicates */
	IDEM_STAT_PURGED,			/* expired keys deleted */
	IDEM_STAT_COUNT
} IdemStat;

/* stats.c */
extern void idem_stats_init(void);
extern void idem_stats_count(IdemStat which, uint64 n);
extern void idem_stats_count_wait(instr_time started);

/* worker.c */
extern int	idem_purge_interval_ms;
extern void idem_worker_init(void);

#endif							/* IDEMPOTENCY_STATS_H */
