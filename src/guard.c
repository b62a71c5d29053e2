/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  The dedup guard: idem_guard, idem_unguard and the BEFORE INSERT row
 *	  trigger that claims each inserted row's key.
 *
 * A guard is a trigger named zz_idempotency_guard whose arguments are
 *	  (guard id, key column, ttl or '', on_duplicate)
 * The guard id is a random UUID chosen when the table is first guarded; its
 * keys are stored with owner 0 and scope <id> (scope.c), and claimed by the
 * one claim protocol (claim.c) with the key lock taken on the guarded
 * table.  Keeping the id in the trigger's arguments, not the table's OID or
 * name, lets the scope survive ALTER TABLE ... RENAME and
 * pg_dump/pg_restore, which keep both the trigger and the keys.  A trigger on a partitioned table is cloned to every
 * partition, present and future, with the same arguments, so one guard
 * covers them all.
 *
 * src/guard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "commands/trigger.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "compat.h"
#include "idempotency.h"

PG_FUNCTION_INFO_V1(idem_guard);
PG_FUNCTION_INFO_V1(idem_unguard);
PG_FUNCTION_INFO_V1(idem_guard_trigger);

/*
 * PostgreSQL fires BEFORE triggers in name order: the guard's name sorts
 * after the usual names so that it sees each row as the table's other
 * BEFORE triggers leave it, and a row another trigger drops never claims a
 * key.
 */
#define GUARD_TRIGGER_NAME	"zz_idempotency_guard"
#define GUARD_NARGS			4

/* The table's trigger named GUARD_TRIGGER_NAME, or NULL. */
static Trigger *
guard_trigger(Relation rel)
{
	TriggerDesc *trigdesc = rel->trigdesc;
	int			i;

	if (trigdesc == NULL)
		return NULL;
	for (i = 0; i < trigdesc->numtriggers; i++)
	{
		if (strcmp(trigdesc->triggers[i].tgname, GUARD_TRIGGER_NAME) == 0)
			return &trigdesc->triggers[i];
	}
	return NULL;
}

/*
 * Is the table's trigger of our name a guard we may replace or drop?  Not
 * if it is someone's own trigger of that name, nor if the partition got it
 * from its guarded partitioned table.
 */
static bool
is_own_guard(Relation rel, Trigger *trigger, Oid guard_fn)
{
	if (trigger == NULL)
		return false;
	if (trigger->tgfoid != guard_fn)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("trigger \"%s\" for relation \"%s\" already exists",
						GUARD_TRIGGER_NAME, RelationGetRelationName(rel)),
				 errdetail("It is not a dedup guard installed by idem_guard."),
				 errhint("Rename or drop that trigger first.")));
	if (trigger->tgisclone)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("partition \"%s\" is guarded through its partitioned table",
						RelationGetRelationName(rel)),
				 errhint("Call idem_guard or idem_unguard on the partitioned table.")));
	return true;
}

/* The OID of idem_guard_trigger(), in the schema of the function called. */
static Oid
guard_trigger_function(Oid fn_oid)
{
	char	   *schema = get_namespace_name(get_func_namespace(fn_oid));

	return LookupFuncName(list_make2(makeString(schema),
									 makeString("idem_guard_trigger")),
						  0, NULL, false);
}

/* A fresh random guard id, formatted as a UUID. */
static char *
new_guard_id(void)
{
	pg_uuid_t	uuid;

	if (!pg_strong_random(uuid.data, UUID_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random guard id")));
	uuid.data[6] = (uuid.data[6] & 0x0f) | 0x40;	/* version 4 */
	uuid.data[8] = (uuid.data[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	return DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&uuid)));
}

/*
 * Open the table to guard or unguard, check it is a table its caller owns,
 * and lock it as CREATE TRIGGER would.
 */
static Relation
open_guarded_table(Oid relid, const char *caller)
{
	Relation	rel = table_open(relid, ShareRowExclusiveLock);
	char		relkind = rel->rd_rel->relkind;

	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
				 errdetail("%s works on plain and partitioned tables only.",
						   caller)));
	if (!idem_table_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(relkind),
					   RelationGetRelationName(rel));
	return rel;
}

static char *
qualified_table_name(Relation rel)
{
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									  RelationGetRelationName(rel));
}

static void
run_ddl(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc != SPI_OK_UTILITY)
		elog(ERROR, "SPI_execute of \"%s\" returned %s",
			 sql, SPI_result_code_string(rc));
}

/*
 * idem_guard(tbl regclass, key_column name, ttl interval DEFAULT NULL,
 *			  on_duplicate text DEFAULT 'skip') RETURNS void
 */
Datum
idem_guard(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *column;
	char	   *on_duplicate;
	char	   *ttl = "";
	Relation	rel;
	AttrNumber	attnum;
	char	   *guard_id;
	char	   *table;
	KeyStore	ks;
	StringInfoData sql;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tbl, key_column and on_duplicate must not be null")));
	relid = PG_GETARG_OID(0);
	column = NameStr(*PG_GETARG_NAME(1));
	on_duplicate = text_to_cstring(PG_GETARG_TEXT_PP(3));

	if (strcmp(on_duplicate, "skip") != 0 && strcmp(on_duplicate, "error") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid on_duplicate value \"%s\"", on_duplicate),
				 errhint("Use 'skip' to drop duplicate rows silently or 'error' to fail the insert.")));
	if (!PG_ARGISNULL(2))
	{
		Interval   *interval = PG_GETARG_INTERVAL_P(2);
		Interval	zero = {0};
		int			nestlevel;

		if (DatumGetInt32(DirectFunctionCall2(interval_cmp,
											  IntervalPGetDatum(interval),
											  IntervalPGetDatum(&zero))) <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("ttl must be positive"),
					 errhint("Pass NULL to use idempotency.ttl.")));
		/* kept as text in the trigger: spell it the same in every session */
		nestlevel = canonical_output_begin();
		ttl = DatumGetCString(DirectFunctionCall1(interval_out,
												  IntervalPGetDatum(interval)));
		canonical_output_end(nestlevel);
	}

	rel = open_guarded_table(relid, "idem_guard");
	attnum = get_attnum(relid, column);
	if (attnum == InvalidAttrNumber || attnum < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						column, RelationGetRelationName(rel))));

	table = qualified_table_name(rel);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	keystore_open(&ks, fcinfo->flinfo->fn_oid);

	/*
	 * Guarding again replaces the settings but keeps the guard id, and so the
	 * keys.  The id comes from the registry, never from an existing trigger's
	 * arguments, which the table's owner could have copied from another
	 * table's guard.
	 */
	guard_id = keystore_guard_of_table(&ks, relid);
	if (guard_id == NULL)
	{
		guard_id = new_guard_id();
		keystore_register_guard(&ks, guard_id, relid);
	}
	if (is_own_guard(rel, guard_trigger(rel),
					 guard_trigger_function(fcinfo->flinfo->fn_oid)))
		run_ddl(psprintf("DROP TRIGGER %s ON %s", GUARD_TRIGGER_NAME, table));

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "CREATE TRIGGER %s BEFORE INSERT ON %s FOR EACH ROW"
					 " EXECUTE FUNCTION %s(%s, %s, %s, %s)",
					 GUARD_TRIGGER_NAME, table,
					 quote_qualified_identifier(get_namespace_name(get_func_namespace(fcinfo->flinfo->fn_oid)),
												"idem_guard_trigger"),
					 quote_literal_cstr(guard_id), quote_literal_cstr(column),
					 quote_literal_cstr(ttl), quote_literal_cstr(on_duplicate));
	run_ddl(sql.data);

	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	table_close(rel, NoLock);
	PG_RETURN_VOID();
}

/* idem_unguard(tbl regclass) RETURNS void: drop the guard and its keys */
Datum
idem_unguard(PG_FUNCTION_ARGS)
{
	Relation	rel;
	char	   *guard_id;
	bool		guarded;
	KeyStore	ks;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tbl must not be null")));
	rel = open_guarded_table(PG_GETARG_OID(0), "idem_unguard");

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	keystore_open(&ks, fcinfo->flinfo->fn_oid);
	guard_id = keystore_guard_of_table(&ks, RelationGetRelid(rel));
	guarded = is_own_guard(rel, guard_trigger(rel),
						   guard_trigger_function(fcinfo->flinfo->fn_oid));
	if (guard_id == NULL && !guarded)
		ereport(NOTICE,
				(errmsg("table \"%s\" is not guarded, skipping",
						RelationGetRelationName(rel))));
	if (guarded)
		run_ddl(psprintf("DROP TRIGGER %s ON %s", GUARD_TRIGGER_NAME,
						 qualified_table_name(rel)));
	if (guard_id != NULL)
	{
		KeyScope	scope;

		scope_of_guard(&scope, guard_id, RelationGetRelid(rel));
		keystore_forget_scope(&ks, &scope);
		keystore_unregister_guard(&ks, RelationGetRelid(rel));
	}
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");

	table_close(rel, NoLock);
	PG_RETURN_VOID();
}

/*
 * What a guard trigger needs on every row, parsed once per trigger: the
 * trigger manager keeps one FmgrInfo, and so one fn_extra, per trigger of
 * each result relation.
 */
typedef struct GuardState
{
	KeyScope	scope;			/* owner 0, the guard id, the guarded table */
	char	   *column;
	AttrNumber	attnum;
	Interval   *ttl;			/* NULL: idempotency.ttl at insert time */
	bool		skip;
	FmgrInfo	outfunc;		/* output function of the key's type */
	bool		canonical;		/* key's text form depends on settings */
	bool		qualify;		/* ... and on search_path */
} GuardState;

static GuardState *
guard_state(FunctionCallInfo fcinfo, TriggerData *trigdata, KeyStore *ks)
{
	GuardState *state = (GuardState *) fcinfo->flinfo->fn_extra;
	Trigger    *trigger = trigdata->tg_trigger;
	Relation	rel = trigdata->tg_relation;
	Oid			guarded;
	MemoryContext oldcxt;

	if (state != NULL)
		return state;

	if (trigger->tgnargs != GUARD_NARGS)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("idem_guard_trigger expects %d arguments, got %d",
						GUARD_NARGS, trigger->tgnargs),
				 errhint("Install the guard with idem_guard().")));

	/*
	 * Trust the guard id only if the registry gives it to this table, or to
	 * the partitioned table this partition belongs to.
	 */
	guarded = keystore_table_of_guard(ks, trigger->tgargs[0]);
	if (!OidIsValid(guarded) ||
		(guarded != RelationGetRelid(rel) &&
		 !(rel->rd_rel->relispartition &&
		   list_member_oid(get_partition_ancestors(RelationGetRelid(rel)),
						   guarded))))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" on relation \"%s\" is not a guard installed by idem_guard",
						trigger->tgname, RelationGetRelationName(rel)),
				 errdetail("Its guard id is not registered for this table."),
				 errhint("Install guards with idem_guard().")));

	oldcxt = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	state = palloc0(sizeof(GuardState));
	scope_of_guard(&state->scope, pstrdup(trigger->tgargs[0]), guarded);
	state->column = pstrdup(trigger->tgargs[1]);
	if (trigger->tgargs[2][0] != '\0')
		state->ttl = DatumGetIntervalP(DirectFunctionCall3(interval_in,
														   CStringGetDatum(trigger->tgargs[2]),
														   ObjectIdGetDatum(InvalidOid),
														   Int32GetDatum(-1)));
	state->skip = strcmp(trigger->tgargs[3], "skip") == 0;
	MemoryContextSwitchTo(oldcxt);

	/* by name: a partition's column numbers may differ from its parent's */
	state->attnum = SPI_fnumber(RelationGetDescr(rel), state->column);
	if (state->attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("guarded column \"%s\" of relation \"%s\" does not exist",
						state->column, RelationGetRelationName(rel)),
				 errhint("If the column was renamed, run idem_guard again with its new name.")));

	{
		Oid			type = TupleDescAttr(RelationGetDescr(rel),
										 state->attnum - 1)->atttypid;
		Oid			outfunc;
		bool		isvarlena;

		getTypeOutputInfo(type, &outfunc, &isvarlena);
		fmgr_info_cxt(outfunc, &state->outfunc, fcinfo->flinfo->fn_mcxt);
		state->canonical = canonical_output_needed(type);
		state->qualify = state->canonical && canonical_output_needs_path(type);
	}

	fcinfo->flinfo->fn_extra = state;
	return state;
}

/* BEFORE INSERT FOR EACH ROW trigger installed by idem_guard */
Datum
idem_guard_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	GuardState *state;
	HeapTuple	tuple;
	char	   *key;
	KeyStore	ks;
	KeyProbe	probe;
	ClaimDecision decision;
	Datum		value;
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("idem_guard_trigger: not called by trigger manager")));
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("idem_guard_trigger must be fired BEFORE INSERT FOR EACH ROW")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	keystore_open(&ks, fcinfo->flinfo->fn_oid);
	state = guard_state(fcinfo, trigdata, &ks);
	tuple = trigdata->tg_trigtuple;

	/* NULL keys are not deduplicated, as with a unique constraint */
	value = heap_getattr(tuple, state->attnum,
						 RelationGetDescr(trigdata->tg_relation), &isnull);
	if (isnull)
	{
		if (SPI_finish() != SPI_OK_FINISH)
			elog(ERROR, "SPI_finish failed");
		return PointerGetDatum(tuple);
	}
	if (state->canonical)
	{
		int			nestlevel = state->qualify ? canonical_output_begin() :
			canonical_output_begin_settings();

		key = OutputFunctionCall(&state->outfunc, value);
		canonical_output_end(nestlevel);
	}
	else
		key = OutputFunctionCall(&state->outfunc, value);
	if (strlen(key) > (size_t) idem_max_key_length)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("idempotency key in column \"%s\" is too long",
						state->column),
				 errdetail("The key is %zu bytes; idempotency.max_key_length is %d bytes.",
						   strlen(key), idem_max_key_length)));

	/*
	 * A live key, committed or this transaction's own (earlier in the same
	 * statement, say), is a duplicate; anything else lets the row in and
	 * stores the key.
	 */
	decision = claim_key(&ks, &state->scope, key, &probe);
	if (decision != CLAIM_REPLAY)
	{
		claim_store(&ks, &state->scope, key, decision, NULL,
					state->ttl ? state->ttl : idem_ttl_interval(idem_ttl_seconds),
					NULL);
		claim_release(&state->scope, key);
	}
	else if (!state->skip)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("duplicate key value violates idempotency guard on \"%s\"",
						RelationGetRelationName(trigdata->tg_relation)),
				 errdetail("Key (%s)=(%s) was already inserted.",
						   quote_identifier(state->column), key),
				 errtableconstraint(trigdata->tg_relation, GUARD_TRIGGER_NAME)));
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");

	/* a duplicate is skipped: returning NULL drops the row */
	return decision != CLAIM_REPLAY ? PointerGetDatum(tuple) : PointerGetDatum(NULL);
}
