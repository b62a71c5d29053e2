/*-------------------------------------------------------------------------
 *
 * execute.c
 *	  idem_execute(key, sql [, VARIADIC params "any"]): run a statement once
 *	  per key and replay its stored result on retries.
 *
 * Order of work, so that bad input records nothing and a replay runs
 * nothing: check the input, hash the request, claim the key, then either
 * replay (same fingerprint), fail with IK001 (another fingerprint), or
 * check the statement's shape (the first time this backend sees it),
 * run it and store its result under the key, all in the caller's
 * transaction.  A replay never parses the statement: its fingerprint
 * matches one that was checked when it ran.
 *
 * src/execute.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "idempotency.h"

PG_FUNCTION_INFO_V1(idem_execute);

/*
 * What hashing an argument of a type needs: its output function, its
 * schema-qualified name, whether its text form depends on settings.  Kept
 * per backend, for the first TYPE_CACHE_SIZE types seen: fn_extra would not
 * do, as a prepared "SELECT idem_execute(...)" gets a fresh FmgrInfo on every
 * execution.  A change to pg_type or pg_namespace (a type or schema renamed
 * or dropped) marks the cache stale; it is emptied at the start of the next
 * call, never while an argument is being hashed with one of its entries.
 */
typedef struct ParamTypeInfo
{
	Oid			type;
	FmgrInfo	outfunc;
	char	   *name;
	bool		canonical;		/* text form depends on settings */
	bool		qualify;		/* ... and on search_path */
	bool		per_call;		/* outfunc is copied for each call */
} ParamTypeInfo;

#define TYPE_CACHE_SIZE 32

static ParamTypeInfo type_cache[TYPE_CACHE_SIZE];
static int	type_cache_used = 0;
static bool type_cache_stale = false;
static MemoryContext type_cache_cxt = NULL;

static void
type_cache_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	type_cache_stale = true;
}

void
execute_init(void)
{
	CacheRegisterSyscacheCallback(TYPEOID, type_cache_invalidate, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, type_cache_invalidate, (Datum) 0);
}

static void
type_cache_refresh(void)
{
	if (type_cache_cxt == NULL)
		type_cache_cxt = AllocSetContextCreate(TopMemoryContext,
											   "idempotency argument types",
											   ALLOCSET_SMALL_SIZES);
	else if (type_cache_stale)
	{
		MemoryContextReset(type_cache_cxt);
		type_cache_used = 0;
	}
	type_cache_stale = false;
}

/* The cached entry of type, or a new one (uncached if the cache is full). */
static ParamTypeInfo *
param_type_info(Oid type)
{
	ParamTypeInfo *info;
	MemoryContext cxt;
	Oid			outfunc;
	bool		isvarlena;
	int			i;

	for (i = 0; i < type_cache_used; i++)
	{
		if (type_cache[i].type == type)
			return &type_cache[i];
	}
	if (type_cache_used < TYPE_CACHE_SIZE)
	{
		info = &type_cache[type_cache_used];
		cxt = type_cache_cxt;
	}
	else
	{
		info = palloc(sizeof(ParamTypeInfo));
		cxt = CurrentMemoryContext;
	}

	getTypeOutputInfo(type, &outfunc, &isvarlena);
	fmgr_info_cxt(outfunc, &info->outfunc, cxt);
	info->name = MemoryContextStrdup(cxt,
									 format_type_extended(type, -1,
														  FORMAT_TYPE_FORCE_QUALIFY));
	info->canonical = canonical_output_needed(type);
	info->qualify = info->canonical && canonical_output_needs_path(type);

	/*
	 * record_out keeps what it knows of a row type in fn_extra, allocated in
	 * fn_mcxt, and allocates anew (without freeing) whenever the row type
	 * changes: an anonymous record's changes with every ROW(...) of another
	 * arity, so a shared FmgrInfo would grow the type cache on each call.
	 * Arguments of such types get a copy of outfunc for the call.
	 */
	info->per_call = type == RECORDOID || type == RECORDARRAYOID;
	info->type = type;
	if (info == &type_cache[type_cache_used])
		type_cache_used++;		/* complete: only now can a lookup find it */
	return info;
}

/* The output function to hash an argument of this type with in this call. */
static FmgrInfo *
call_outfunc(ParamTypeInfo *info)
{
	FmgrInfo   *f;

	if (!info->per_call)
		return &info->outfunc;	/* shared: keeps its fn_extra cache */
	f = palloc(sizeof(FmgrInfo));
	fmgr_info_copy(f, &info->outfunc, CurrentMemoryContext);
	return f;
}

static void
set_arg(RequestArgs *args, int i, ParamTypeInfo *info, FmgrInfo *outfunc,
		Datum value, bool isnull)
{
	args->types[i] = info->type;
	args->values[i] = value;
	args->nulls[i] = isnull ? 'n' : ' ';
	args->outfuncs[i] = outfunc;
	args->typenames[i] = info->name;
	args->canonical |= info->canonical;
	args->qualify |= info->qualify;
}

static void
alloc_args(RequestArgs *args, int nargs)
{
	int			n = Max(nargs, 1);

	args->nargs = nargs;
	args->canonical = false;
	args->qualify = false;
	args->types = palloc(sizeof(Oid) * n);
	args->values = palloc(sizeof(Datum) * n);
	args->nulls = palloc(sizeof(char) * n);
	args->outfuncs = palloc(sizeof(FmgrInfo *) * n);
	args->typenames = palloc(sizeof(char *) * n);
}

/*
 * Collect the arguments after sql.  Untyped literals arrive as "unknown"
 * and bind as text; VARIADIC ARRAY[...] spreads its elements over $1..$n.
 */
static void
collect_args(FunctionCallInfo fcinfo, int first_param, RequestArgs *args)
{
	FmgrInfo   *flinfo = fcinfo->flinfo;
	int			nparams = PG_NARGS() - first_param;
	int			i;

	type_cache_refresh();
	if (nparams > 0 && get_fn_expr_variadic(flinfo))
	{
		Oid			arraytype = get_fn_expr_argtype(flinfo, first_param);
		Oid			elemtype = get_base_element_type(arraytype);
		ArrayType  *array;
		Datum	   *elems;
		bool	   *elemnulls;
		int			nelems;
		int16		typlen;
		bool		typbyval;
		char		typalign;
		ParamTypeInfo *info;
		FmgrInfo   *outfunc;

		if (!OidIsValid(elemtype))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("VARIADIC argument must be an array")));
		if (PG_ARGISNULL(first_param))
		{
			alloc_args(args, 0);	/* as format(): a NULL array binds nothing */
			return;
		}
		array = PG_GETARG_ARRAYTYPE_P(first_param);
		get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
		deconstruct_array(array, elemtype, typlen, typbyval, typalign,
						  &elems, &elemnulls, &nelems);
		if (nelems > PG_UINT16_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many arguments"),
					 errdetail("The VARIADIC array has %d elements; at most %d can be bound.",
							   nelems, PG_UINT16_MAX)));
		info = param_type_info(elemtype);
		outfunc = call_outfunc(info);
		alloc_args(args, nelems);
		for (i = 0; i < nelems; i++)
			set_arg(args, i, info, outfunc, elems[i], elemnulls[i]);
		return;
	}

	alloc_args(args, Max(nparams, 0));
	for (i = 0; i < nparams; i++)
	{
		int			argno = first_param + i;
		Oid			type = get_fn_expr_argtype(flinfo, argno);
		bool		isnull = PG_ARGISNULL(argno);
		Datum		value = isnull ? (Datum) 0 : PG_GETARG_DATUM(argno);
		ParamTypeInfo *info;

		if (!OidIsValid(type))
			elog(ERROR, "could not determine the type of argument %d", argno + 1);
		if (type == UNKNOWNOID)
		{
			type = TEXTOID;
			if (!isnull)
				value = CStringGetTextDatum(DatumGetCString(value));
		}
		info = param_type_info(type);
		set_arg(args, i, info, call_outfunc(info), value, isnull);
	}
}

/*
 * Keys whose statements are running in this backend, innermost first: a
 * statement that calls idem_execute again with its own key would otherwise
 * wait for itself.  Entries live on the C stack of the calls that own them.
 */
typedef struct RunningKey
{
	const KeyScope *scope;
	const char *key;
	bytea	   *fingerprint;
	struct RunningKey *outer;
} RunningKey;

static RunningKey *running_keys = NULL;

static const char *const other_request =
"The statement text, its arguments or the search_path differ from those first run under this key.";

static RunningKey *
find_running(const KeyScope *scope, const char *key)
{
	RunningKey *running;

	for (running = running_keys; running != NULL; running = running->outer)
	{
		if (strcmp(running->key, key) == 0 && scope_equal(running->scope, scope))
			return running;
	}
	return NULL;
}

/*
 * Is idem_execute running a statement under this key in this backend?
 * idem_begin asks: the key is idem_execute's, so another request.
 */
bool
execute_key_running(const KeyScope *scope, const char *key)
{
	return find_running(scope, key) != NULL;
}

static void
check_not_running(const KeyScope *scope, const char *key, bytea *fingerprint)
{
	RunningKey *running = find_running(scope, key);

	if (running == NULL)
		return;
	if (VARSIZE(running->fingerprint) != VARSIZE(fingerprint) ||
		memcmp(running->fingerprint, fingerprint, VARSIZE(fingerprint)) != 0)
		raise_key_reused(key, other_request);
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("idempotency key \"%s\" is already running in this transaction",
					key),
			 errdetail("The statement run under this key called idem_execute with the same key.")));
}

Datum
idem_execute(PG_FUNCTION_ARGS)
{
	return execute_request(fcinfo, 0, NULL);
}

/*
 * idem_execute's work, for its arguments (key, sql [, params...]) from
 * argument key_arg on.  Without a target the key is the calling role's, in
 * the extension's keys table; with one (colocated.c), the target gives the
 * key's scope and, once the input is checked, opens the table to keep it in.
 */
Datum
execute_request(FunctionCallInfo fcinfo, int key_arg, ExecuteTarget *target)
{
	MemoryContext callercxt = CurrentMemoryContext;
	char	   *key;
	char	   *sql;
	KeyScope	scope;
	RequestArgs args;
	bytea	   *fingerprint;
	KeyStore	ks;
	KeyProbe	probe;
	ClaimDecision decision;
	RunningKey	running;
	Jsonb	   *stored;
	Jsonb	   *out;

	key = key_argument(fcinfo, key_arg);
	if (PG_ARGISNULL(key_arg + 1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("sql must not be null")));
	sql = text_to_cstring(PG_GETARG_TEXT_PP(key_arg + 1));
	if (sql[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sql must not be empty")));
	collect_args(fcinfo, key_arg + 2, &args);
	fingerprint = idem_fingerprint(sql, &args);
	if (target != NULL)
		scope = target->scope;
	else
		scope_of_role(&scope);
	check_not_running(&scope, key, fingerprint);
	if (request_key_begun(&scope, key))
		raise_key_reused(key, "This transaction began the key with idem_begin.");

	if (target != NULL)
		target->open_keys(target, &ks);
	else
		keystore_open(&ks, fcinfo->flinfo->fn_oid);
	decision = claim_key(&ks, &scope, key, &probe);

	if (decision == CLAIM_REPLAY)
	{
		if (!fingerprint_statement_matches(probe.fingerprint, fingerprint,
										   sql, &args))
			raise_key_reused(key, other_request);
		if (probe.result == NULL)	/* only a hand-edited keys table */
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("idempotency key \"%s\" has no stored result", key)));
		idem_stats_count(IDEM_STAT_REPLAYED, 1);
		PG_RETURN_JSONB_P(result_with_replayed(probe.result, true));
	}

	/*
	 * Run the statement; we hold the key lock (claim.c).  A new key is a
	 * write, which the executor would refuse in a read-only transaction or
	 * on a standby: the key row is written without it, so refuse here,
	 * before the statement runs.
	 */
	PreventCommandIfReadOnly("idem_execute with a new key");
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	running.scope = &scope;
	running.key = key;
	running.fingerprint = fingerprint;
	running.outer = running_keys;
	PG_TRY();
	{
		SPIPlanPtr	plan;
		bool		transient;

		running_keys = &running;
		plan = statement_plan(sql, &args, running.outer != NULL, &transient);
		stored = statement_run(plan, &args, key);
		if (transient)
			SPI_freeplan(plan);
	}
	PG_FINALLY();
	{
		running_keys = running.outer;
	}
	PG_END_TRY();

	{
		char	   *command;
		Jsonb	   *rows;

		result_split(stored, &command, &rows);
		claim_store(&ks, &scope, key, decision, fingerprint,
					idem_ttl_interval(idem_ttl_seconds), command, rows);
	}
	claim_release(&scope, key);
	idem_stats_count(IDEM_STAT_EXECUTED, 1);

	/* build the answer where it outlives SPI_finish */
	{
		MemoryContext spicxt = MemoryContextSwitchTo(callercxt);

		out = result_with_replayed(stored, false);
		MemoryContextSwitchTo(spicxt);
	}

	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	PG_RETURN_JSONB_P(out);
}
