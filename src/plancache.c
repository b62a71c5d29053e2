/*-------------------------------------------------------------------------
 *
 * plancache.c
 *	  Prepared plans of users' statements, kept per backend.
 *
 * Applications send the same few statement texts over and over; parsing
 * and planning them on every call would cost more than running them.  Plans
 * are kept by (statement text, argument types) with SPI_keepplan.  They
 * stay correct on their own: PostgreSQL's plan cache re-plans a kept plan
 * when a table it uses changes, when search_path differs from the one it
 * was planned with, or when row-level security depends on the role.
 *
 * The cache holds at most STATEMENT_CACHE_SIZE plans, and at most
 * STATEMENT_CACHE_BYTES of statement texts and plans (as measured when each
 * plan is cached); when full it is emptied and starts over, which keeps a
 * workload of many one-off statement texts from growing the backend.  A
 * statement longer than STATEMENT_MAX_CACHED_TEXT, or whose plan takes more
 * than STATEMENT_MAX_CACHED_BYTES, is not cached at all: a text that large
 * is rarely sent twice, and planning it again costs little next to
 * sending it.  Plans are only ever freed when no cached plan is running
 * (idem_execute is not nested): a nested call that finds the cache full
 * uses a plan of its own once instead.
 *
 * src/plancache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "tcop/utility.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/plancache.h"

#include "idempotency.h"

#define STATEMENT_CACHE_SIZE	256
#define STATEMENT_CACHE_BYTES	(32 * 1024 * 1024)
#define STATEMENT_MAX_CACHED_TEXT	(64 * 1024)
#define STATEMENT_MAX_CACHED_BYTES	(1024 * 1024)

typedef struct StatementCacheEntry
{
	uint64		hash;			/* hash key: of the text and the types */
	char	   *sql;
	int			nargs;
	Oid		   *types;
	SPIPlanPtr	plan;
	Size		bytes;			/* of the text and the plan, when cached */
} StatementCacheEntry;

static HTAB *statement_cache = NULL;
static MemoryContext statement_cache_cxt = NULL;
static Size statement_cache_bytes = 0;	/* sum of the entries' bytes */

/* The memory a prepared plan of sql takes, and a cache entry's copy of sql. */
static Size
plan_bytes(SPIPlanPtr plan, const char *sql)
{
	Size		bytes = strlen(sql) + 1;
	ListCell   *lc;

	foreach(lc, SPI_plan_get_plan_sources(plan))
	{
		CachedPlanSource *source = (CachedPlanSource *) lfirst(lc);

		bytes += MemoryContextMemAllocated(source->context, true);
		if (source->gplan != NULL)
			bytes += MemoryContextMemAllocated(source->gplan->context, true);
	}
	return bytes;
}

static uint64
statement_hash(const char *sql, const RequestArgs *args)
{
	uint64		h = hash_bytes_extended((const unsigned char *) sql, strlen(sql), 0);

	if (args->nargs > 0)
		h = hash_bytes_extended((const unsigned char *) args->types,
								sizeof(Oid) * args->nargs, h);
	return h;
}

static void
statement_cache_reset(void)
{
	if (statement_cache != NULL)
	{
		HASH_SEQ_STATUS status;
		StatementCacheEntry *entry;

		hash_seq_init(&status, statement_cache);
		while ((entry = hash_seq_search(&status)) != NULL)
			SPI_freeplan(entry->plan);
		hash_destroy(statement_cache);
		statement_cache = NULL;
	}
	statement_cache_bytes = 0;
	if (statement_cache_cxt != NULL)
		MemoryContextReset(statement_cache_cxt);
}

static bool
entry_matches(StatementCacheEntry *entry, const char *sql,
			  const RequestArgs *args)
{
	return entry->plan != NULL &&
		entry->nargs == args->nargs &&
		strcmp(entry->sql, sql) == 0 &&
		(args->nargs == 0 ||
		 memcmp(entry->types, args->types, sizeof(Oid) * args->nargs) == 0);
}

/*
 * What the parser made of the statement, checked once more: the statement
 * itself (not a rule's extra action) must not have become a utility command,
 * as SELECT INTO in a position statement_check does not look at would.
 * Never run it to find out afterwards.
 */
static void
plan_check(SPIPlanPtr plan)
{
	ListCell   *lc;

	foreach(lc, SPI_plan_get_plan_sources(plan))
	{
		CachedPlanSource *source = (CachedPlanSource *) lfirst(lc);
		ListCell   *lq;

		foreach(lq, source->query_list)
		{
			Query	   *query = lfirst_node(Query, lq);

			if (query->canSetTag && query->commandType == CMD_UTILITY)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("idem_execute cannot run %s",
								GetCommandTagName(CreateCommandTag(query->utilityStmt))),
						 errdetail("Only SELECT, INSERT, UPDATE, DELETE and MERGE statements can run under an idempotency key.")));
		}
	}
}

/*
 * The plan of this statement with these argument types; the statement is
 * checked (statement_check) and prepared the first time.  The caller is
 * connected to SPI, and says whether a cached plan may be running (nested);
 * if *transient is set on return, the plan is not cached and the caller
 * frees it after use.
 */
SPIPlanPtr
statement_plan(const char *sql, const RequestArgs *args, bool nested,
			   bool *transient)
{
	uint64		hash = statement_hash(sql, args);
	StatementCacheEntry *entry;
	bool		found;
	bool		full;
	SPIPlanPtr	plan;
	Size		bytes;

	*transient = false;
	if (statement_cache != NULL)
	{
		entry = hash_search(statement_cache, &hash, HASH_FIND, NULL);
		if (entry != NULL && entry_matches(entry, sql, args))
			return entry->plan;
	}

	statement_check(sql);
	plan = SPI_prepare(sql, args->nargs, args->types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	plan_check(plan);

	/* too large to be worth keeping: use this one once */
	if (strlen(sql) > STATEMENT_MAX_CACHED_TEXT ||
		(bytes = plan_bytes(plan, sql)) > STATEMENT_MAX_CACHED_BYTES)
	{
		*transient = true;
		return plan;
	}

	/* never free a plan that may be running: use this one once */
	full = statement_cache != NULL &&
		(hash_get_num_entries(statement_cache) >= STATEMENT_CACHE_SIZE ||
		 statement_cache_bytes + bytes > STATEMENT_CACHE_BYTES);
	if (nested && statement_cache != NULL &&
		(full || hash_search(statement_cache, &hash, HASH_FIND, NULL) != NULL))
	{
		*transient = true;
		return plan;
	}

	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	if (full)
		statement_cache_reset();
	if (statement_cache == NULL)
	{
		HASHCTL		ctl;

		if (statement_cache_cxt == NULL)
			statement_cache_cxt = AllocSetContextCreate(TopMemoryContext,
														"idempotency statement cache",
														ALLOCSET_DEFAULT_SIZES);
		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(StatementCacheEntry);
		ctl.hcxt = statement_cache_cxt;
		statement_cache = hash_create("idempotency statement cache",
									  STATEMENT_CACHE_SIZE, &ctl,
									  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}

	entry = hash_search(statement_cache, &hash, HASH_ENTER, &found);
	if (found && entry->plan != NULL)
	{
		/* a hash collision: the newer wins */
		SPI_freeplan(entry->plan);
		statement_cache_bytes -= entry->bytes;
	}
	entry->plan = NULL;
	entry->sql = MemoryContextStrdup(statement_cache_cxt, sql);
	entry->nargs = args->nargs;
	entry->types = MemoryContextAlloc(statement_cache_cxt,
									  sizeof(Oid) * Max(args->nargs, 1));
	if (args->nargs > 0)
		memcpy(entry->types, args->types, sizeof(Oid) * args->nargs);
	entry->plan = plan;
	entry->bytes = bytes;
	statement_cache_bytes += bytes;
	return plan;
}
