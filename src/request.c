/*-------------------------------------------------------------------------
 *
 * request.c
 *	  idem_begin(key, request) and idem_finish(key, response): one key for
 *	  all the work of a transaction, whatever statements do it.
 *
 * idem_begin claims the key through the one claim protocol (claim.c), as
 * idem_execute does, and keeps the key lock until the transaction ends:
 * another transaction with the same key waits for it (or gets IK002 with
 * idempotency.wait off), then finds the stored response (READ COMMITTED),
 * 40001 (REPEATABLE READ, SERIALIZABLE), or the key free again if this one
 * rolled back.  The key row is written once, by idem_finish, with the
 * response; so a key is never stored without its response.  A commit, or
 * PREPARE TRANSACTION, with a key begun and not finished fails (the
 * transaction callback below), and the transaction rolls back.
 *
 * The keys this transaction began are kept in a list, with the nesting
 * level of the subtransaction that began (and finished) each: rolling back
 * to a savepoint taken before idem_begin forgets the claim (the key lock
 * goes with the subtransaction), one taken before idem_finish un-finishes
 * it (the row goes too).
 *
 * The stored fingerprint is 0x03, followed by SHA-256 of the request's
 * canonical encoding when a request is given (fingerprint.c).
 *
 * src/request.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "idempotency.h"

PG_FUNCTION_INFO_V1(idem_begin);
PG_FUNCTION_INFO_V1(idem_finish);

/* A key this transaction began, in TopTransactionContext. */
typedef struct BegunKey
{
	KeyScope	scope;
	char	   *key;
	bytea	   *fingerprint;
	ClaimDecision decision;		/* CLAIM_INSERT */
	int			begin_level;	/* nesting level of idem_begin */
	int			finish_level;	/* of idem_finish; 0 while unfinished */
	struct BegunKey *next;
} BegunKey;

static BegunKey *begun_keys = NULL;

static BegunKey *
find_begun(const KeyScope *scope, const char *key)
{
	BegunKey   *bk;

	for (bk = begun_keys; bk != NULL; bk = bk->next)
	{
		if (strcmp(bk->key, key) == 0 && scope_equal(&bk->scope, scope))
			return bk;
	}
	return NULL;
}

/* Has this transaction begun the key (finished or not)? */
bool
request_key_begun(const KeyScope *scope, const char *key)
{
	return find_begun(scope, key) != NULL;
}

static void
remember_begun(const KeyScope *scope, const char *key, bytea *fingerprint,
			   ClaimDecision decision)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(TopTransactionContext);
	BegunKey   *bk = palloc0(sizeof(BegunKey));

	bk->scope = *scope;
	bk->scope.scope = pstrdup(scope->scope);
	bk->key = pstrdup(key);
	bk->fingerprint = palloc(VARSIZE(fingerprint));
	memcpy(bk->fingerprint, fingerprint, VARSIZE(fingerprint));
	bk->decision = decision;
	bk->begin_level = GetCurrentTransactionNestLevel();
	bk->finish_level = 0;
	bk->next = begun_keys;
	begun_keys = bk;
	MemoryContextSwitchTo(oldcxt);
}

static void
request_xact_callback(XactEvent event, void *arg)
{
	BegunKey   *bk;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			for (bk = begun_keys; bk != NULL; bk = bk->next)
			{
				if (bk->finish_level == 0)
					ereport(ERROR,
							(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							 errmsg("idempotency key \"%s\" was begun but not finished",
									bk->key),
							 errdetail("A transaction that calls idem_begin must call idem_finish with the response before it commits; this transaction is rolled back."),
							 errhint("Call idem_finish(key, response) before %s.",
									 event == XACT_EVENT_PRE_COMMIT ?
									 "COMMIT" : "PREPARE TRANSACTION")));
			}
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* the list lived in TopTransactionContext */
			begun_keys = NULL;
			break;
		default:
			break;
	}
}

static void
request_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	BegunKey  **link = &begun_keys;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	while (*link != NULL)
	{
		BegunKey   *bk = *link;

		if (event == SUBXACT_EVENT_ABORT_SUB)
		{
			/* begun in it: forgotten, with its key lock; finished: undone */
			if (bk->begin_level >= level)
			{
				*link = bk->next;
				continue;
			}
			if (bk->finish_level >= level)
				bk->finish_level = 0;
		}
		else
		{
			/* committed into the parent */
			if (bk->begin_level >= level)
				bk->begin_level = level - 1;
			if (bk->finish_level >= level)
				bk->finish_level = level - 1;
		}
		link = &bk->next;
	}
}

void
request_init(void)
{
	RegisterXactCallback(request_xact_callback, NULL);
	RegisterSubXactCallback(request_subxact_callback, NULL);
}

/* idem_begin(key text, request jsonb DEFAULT NULL) RETURNS jsonb */
Datum
idem_begin(PG_FUNCTION_ARGS)
{
	char	   *key = key_argument(fcinfo, 0);
	Jsonb	   *request = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	bytea	   *fingerprint = fingerprint_request(request);
	KeyScope	scope;
	KeyStore	ks;
	KeyProbe	probe;
	ClaimDecision decision;
	BegunKey   *bk;

	scope_of_role(&scope);

	/*
	 * idem_execute is running a statement under this key (the statement
	 * called idem_begin): the key is idem_execute's, another request.
	 */
	if (execute_key_running(&scope, key))
		raise_key_reused(key, "idem_execute is running a statement under this key.");

	/* begun and not finished here: still this transaction's */
	bk = find_begun(&scope, key);
	if (bk != NULL && bk->finish_level == 0)
	{
		if (!fingerprint_request_matches(bk->fingerprint, fingerprint))
			raise_key_reused(key, "The request differs from the one this transaction began under this key.");
		PG_RETURN_NULL();
	}

	/* finished here, or anyone else's: the claim protocol decides */
	keystore_open(&ks, fcinfo->flinfo->fn_oid);
	decision = claim_key(&ks, &scope, key, &probe);
	if (decision == CLAIM_REPLAY)
	{
		if (!fingerprint_request_matches(probe.fingerprint, fingerprint))
			raise_key_reused(key, "The key was stored by idem_execute, or by idem_begin with another request.");
		if (probe.result == NULL)	/* only a hand-edited keys table */
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("idempotency key \"%s\" has no stored response", key)));
		idem_stats_count(IDEM_STAT_REPLAYED, 1);
		PG_RETURN_JSONB_P(probe.result);
	}

	/*
	 * Ours, with the key lock, until the transaction ends.  A new key is a
	 * write, which a read-only transaction could never finish.
	 */
	PreventCommandIfReadOnly("idem_begin with a new key");
	remember_begun(&scope, key, fingerprint, decision);
	PG_RETURN_NULL();
}

/* idem_finish(key text, response jsonb) RETURNS jsonb */
Datum
idem_finish(PG_FUNCTION_ARGS)
{
	char	   *key = key_argument(fcinfo, 0);
	Jsonb	   *response;
	KeyScope	scope;
	KeyStore	ks;
	BegunKey   *bk;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("response must not be null"),
				 errhint("Pass 'null'::jsonb to store a JSON null.")));
	response = PG_GETARG_JSONB_P(1);

	scope_of_role(&scope);
	bk = find_begun(&scope, key);
	if (bk == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("idempotency key \"%s\" was not begun in this transaction",
						key),
				 errhint("Call idem_begin(key) first, in the same transaction, as the same role and idempotency.tenant.")));
	if (bk->finish_level != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("idempotency key \"%s\" is already finished in this transaction",
						key)));
	if (VARSIZE(response) > (Size) idem_max_result_size)
	{
		idem_stats_count(IDEM_STAT_TOO_LARGE, 1);
		ereport(ERROR,
				(errcode(ERRCODE_IDEM_RESULT_TOO_LARGE),
				 errmsg("response under idempotency key \"%s\" is too large to store",
						key),
				 errdetail("The response takes %zu bytes; idempotency.max_result_size is %d bytes.",
						   (Size) VARSIZE(response), idem_max_result_size),
				 errhint("Store a smaller response, or raise idempotency.max_result_size.")));
	}

	keystore_open(&ks, fcinfo->flinfo->fn_oid);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	claim_store(&ks, &bk->scope, bk->key, bk->decision, bk->fingerprint,
				idem_ttl_interval(idem_ttl_seconds), NULL, response);
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	bk->finish_level = GetCurrentTransactionNestLevel();
	idem_stats_count(IDEM_STAT_EXECUTED, 1);

	PG_RETURN_JSONB_P(response);
}
