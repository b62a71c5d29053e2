/*-------------------------------------------------------------------------
 *
 * claim.c
 *	  The one claim protocol: deciding, for a key, whether to replay what
 *	  is stored under it, wait for another transaction, or run.
 *
 * Three callers claim keys this way: idem_execute (run the statement, store
 * its result), the dedup guard trigger (let the row in, store the key) and
 * idem_begin (hold the key until idem_finish stores the response; see
 * request.c).
 *
 * The key row is written once, with its result, after the work ran.
 * Until then a heavyweight lock on the key (an advisory-type lock tag of
 * our own, out of reach of pg_advisory_lock) keeps two transactions from
 * running the same key's work at once.  idem_execute and the guard release
 * it as soon as the row is inserted: from then on the row's uncommitted
 * xmin is what others wait for (XactLockTableWait), exactly as a unique
 * index makes a second inserter wait, so they hold at most one such lock at
 * a time, however many keys they write.  idem_begin keeps it until its
 * transaction ends: its row comes only with idem_finish.
 *
 * Probing reads the primary key index directly with a dirty snapshot, which
 * shows rows of transactions still in flight.  What the probe finds
 * decides:
 *
 *	in flight (another transaction inserted the row, or is deleting the
 *	live row):
 *		wait for it to end, or fail with IK002 if idempotency.wait is off,
 *		then probe again;
 *	committed and live:
 *		READ COMMITTED, or a row in our snapshot: replay it (or IK001);
 *		REPEATABLE READ / SERIALIZABLE and not in our snapshot: 40001;
 *	absent, or only expired rows (whoever is deleting them: the purge
 *	may be, and a caller never waits for the purge):
 *		run the statement, under the key lock, and insert a new row.
 *
 * The key lock is tried (without waiting) before the first probe: if it is
 * free, as it is unless another transaction is deciding on or running the
 * same key, one probe under it decides.  Probing first and locking only for
 * an absent key would need a second probe under the lock, since someone may
 * have stored the key in between.  If the lock is busy the call probes
 * without it, so a replay never waits behind another replay, and takes it
 * (waiting, or IK002) only for an absent or expired key, then probes again.
 * A read-only transaction cannot run a new key, so it only probes.
 *
 * src/claim.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/snapmgr.h"

#include "idempotency.h"

/*
 * field4 of our lock tags, one for role keys and one for guard keys: user
 * advisory locks use 1 and 2, so keys never collide with pg_advisory_lock()
 * callers.
 */
#define IDEM_LOCKTAG_ROLE_KEY	0x4944	/* "ID" */
#define IDEM_LOCKTAG_GUARD_KEY	0x4947	/* "IG" */

/*
 * The key lock's tag: the database, the role owning the key (or the guarded
 * table), a 32-bit hash of (scope, key), and the kind of key.  Different
 * roles, and different guards, never share a tag whatever keys they choose:
 * a hash collision can only make one role's (or one guard's) own keys wait
 * for each other, as a lock on the key itself would.  In-flight tags are
 * visible in pg_locks; they show which role is busy, never with which key.
 */
static void
key_locktag(LOCKTAG *tag, const KeyScope *scope, const char *key)
{
	uint64		h;

	h = hash_bytes_extended((const unsigned char *) scope->scope,
							strlen(scope->scope), 0);
	h = hash_bytes_extended((const unsigned char *) key, strlen(key), h);
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, scope->lock_object,
						 (uint32) (h ^ (h >> 32)),
						 scope->guard ? IDEM_LOCKTAG_GUARD_KEY : IDEM_LOCKTAG_ROLE_KEY);
}

/* IK002: the key is held by a transaction in flight (the holder if known). */
void
raise_key_in_flight(const char *key, TransactionId holder)
{
	idem_stats_count(IDEM_STAT_IN_FLIGHT, 1);
	ereport(ERROR,
			(errcode(ERRCODE_IDEM_KEY_IN_FLIGHT),
			 errmsg("idempotency key \"%s\" is held by another transaction in flight",
					key),
			 TransactionIdIsValid(holder) ?
			 errdetail("Transaction %u is running a request with this key.",
					   holder) :
			 errdetail("Another transaction is running a request with this key."),
			 errhint("Retry after that transaction ends, or set idempotency.wait to on to wait for it.")));
}

/* IK001: the key is live with another request's fingerprint. */
void
raise_key_reused(const char *key, const char *detail)
{
	idem_stats_count(IDEM_STAT_MISMATCHED, 1);
	ereport(ERROR,
			(errcode(ERRCODE_IDEM_KEY_REUSED),
			 errmsg("idempotency key \"%s\" was used with a different request",
					key),
			 errdetail_internal("%s", detail),
			 errhint("Use a new key for a new request.")));
}

/* Wait for the transaction holding a key's row to end; counted. */
static void
claim_wait_for_holder(TransactionId holder)
{
	instr_time	started;

	INSTR_TIME_SET_CURRENT(started);
	XactLockTableWait(holder, NULL, NULL, XLTW_None);
	idem_stats_count_wait(started);
}

/* Take the key lock, waiting (and counting the wait) if it is busy. */
static void
claim_wait_for_lock(const LOCKTAG *tag)
{
	instr_time	started;

	if (LockAcquire(tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL)
		return;
	INSTR_TIME_SET_CURRENT(started);
	(void) LockAcquire(tag, ExclusiveLock, false, false);
	idem_stats_count_wait(started);
}

/*
 * Decide what this call does with (scope, key).  Returns CLAIM_REPLAY with
 * probe->fingerprint and probe->result of the live key, or CLAIM_INSERT
 * with the key lock held: the caller runs the statement, stores its result
 * in a new row and calls claim_release().
 */
ClaimDecision
claim_key(KeyStore *ks, const KeyScope *scope, const char *key,
		  KeyProbe *probe)
{
	LOCKTAG		tag;
	bool		locked = false;
	int			attempt;

	key_locktag(&tag, scope, key);

	if (!XactReadOnly &&
		LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL)
		locked = true;

	for (attempt = 0;; attempt++)
	{
		CHECK_FOR_INTERRUPTS();
		if (attempt >= 1000)
			elog(ERROR, "could not claim idempotency key \"%s\" after %d attempts",
				 key, attempt);

		keystore_probe(ks, scope, key, probe);

		if (probe->state == PROBE_IN_FLIGHT)
		{
			if (locked)
			{
				LockRelease(&tag, ExclusiveLock, false);
				locked = false;
			}
			if (!idem_wait)
				raise_key_in_flight(key, probe->holder);
			claim_wait_for_holder(probe->holder);
			continue;
		}

		if (probe->state == PROBE_FOUND && !probe->visible)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent update"),
					 errdetail("Idempotency key \"%s\" was stored by a transaction that committed after this transaction's snapshot.",
							   key),
					 errhint("Retry the transaction: the retry replays the stored result.")));

		if (probe->state == PROBE_FOUND)
		{
			if (locked)
				LockRelease(&tag, ExclusiveLock, false);
			return CLAIM_REPLAY;
		}

		/*
		 * Absent or expired: run the statement, under the key lock.  A
		 * read-only transaction goes without it: the caller refuses the
		 * write before anything runs.
		 */
		if (locked || XactReadOnly)
		{
			citus_claim_key(ks->beside_shard);
			return CLAIM_INSERT;
		}

		if (idem_wait)
			claim_wait_for_lock(&tag);
		else if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
			raise_key_in_flight(key, InvalidTransactionId);
		locked = true;
		/* probe again: someone may have stored the key before we got here */
	}
}

/*
 * Store the row of a key claimed with CLAIM_INSERT: always a new row, an
 * expired row of the key staying as it is, for the purge (keystore.c).
 * Guard keys have no fingerprint and no result; command and result are
 * idem_execute's result as result_split() gives them, or NULL and
 * idem_finish's response.
 */
void
claim_store(KeyStore *ks, const KeyScope *scope, const char *key,
			ClaimDecision decision, bytea *fingerprint, Interval *ttl,
			const char *command, Jsonb *result)
{
	Assert(decision == CLAIM_INSERT);
	keystore_insert_result(ks, scope, key, fingerprint, ttl, command, result);
}

/*
 * Release the key lock once the key row is inserted: from here on waiters
 * wait for this transaction through the row's xmin.  An error before this
 * point releases the lock with the (sub)transaction.
 */
void
claim_release(const KeyScope *scope, const char *key)
{
	LOCKTAG		tag;

	key_locktag(&tag, scope, key);
	LockRelease(&tag, ExclusiveLock, false);
}
