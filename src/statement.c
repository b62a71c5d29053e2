/*-------------------------------------------------------------------------
 *
 * statement.c
 *	  Checking the user's statement, running it through SPI with its
 *	  arguments bound to $1..$n, and capturing its result as jsonb.
 *
 * The statement runs with the caller's privileges: nothing here changes
 * the user id.
 *
 * The captured result is
 *	  {"command": "INSERT", "row_count": 1, "rows": [{"id": 42}]}
 * (stored in the keys table as "INSERT 1" and the rows array: result_split
 * and result_join)
 * where command is the statement's command tag word (as written, whatever
 * rules rewrote it into), and rows are its output rows (RETURNING or
 * SELECT), in order, each turned into a JSON object as to_jsonb(record)
 * does it, while the executor produces them (see RowCollector).  An output
 * with two columns (or row fields) of one name is refused, not collapsed.
 *
 * src/statement.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/params.h"
#include "nodes/parsenodes.h"
#include "tcop/cmdtag.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/typcache.h"

#include "compat.h"
#include "idempotency.h"

/*
 * Is this SELECT a SELECT INTO, in itself or in a branch of its UNION,
 * INTERSECT or EXCEPT?  The parser makes (SELECT ... INTO t) UNION ... a
 * CREATE TABLE AS, as it does a plain SELECT INTO.
 */
static bool
select_into(SelectStmt *stmt)
{
	check_stack_depth();
	if (stmt == NULL)
		return false;
	if (stmt->intoClause != NULL)
		return true;
	return stmt->op != SETOP_NONE &&
		(select_into(stmt->larg) || select_into(stmt->rarg));
}

/* What to do instead of a statement statement_check refuses. */
static const char *
refused_statement_hint(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_TransactionStmt:
			return "Transaction control belongs to the caller: call idem_execute inside the caller's transaction.";
		case T_CallStmt:
		case T_DoStmt:
			return "Put the work in a function and run it with SELECT under the key, or make the writes one statement with data-modifying WITH queries.";
		case T_SelectStmt:
			return "Create the table first, then run INSERT INTO ... SELECT under the key.";
		default:
			return "Run the command outside idem_execute; only statements whose effect a replay can give back run under a key.";
	}
}

/*
 * Reject, before any key is claimed, what idem_execute does not run: no
 * statement, several statements, and anything but a plain DML statement.
 * Transaction control, utility commands and SELECT INTO would either fail
 * inside SPI or change things a replay cannot give back.
 */
void
statement_check(const char *sql)
{
	List	   *raw = pg_parse_query(sql);
	RawStmt    *stmt;
	bool		allowed;

	if (raw == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sql must contain a statement"),
				 errdetail("The statement text is empty or holds only comments.")));
	if (list_length(raw) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("sql must contain exactly one statement"),
				 errdetail("The statement text holds %d statements.",
						   list_length(raw)),
				 errhint("Make one call per statement, or combine the statements with WITH.")));

	stmt = linitial_node(RawStmt, raw);
	switch (nodeTag(stmt->stmt))
	{
		case T_SelectStmt:
			allowed = !select_into((SelectStmt *) stmt->stmt);
			break;
		case T_InsertStmt:
		case T_UpdateStmt:
		case T_DeleteStmt:
#ifdef IDEM_HAVE_MERGE
		case T_MergeStmt:
#endif
			allowed = true;
			break;
		default:
			allowed = false;
			break;
	}
	if (!allowed)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("idem_execute cannot run %s",
						IsA(stmt->stmt, SelectStmt) ? "SELECT INTO" :
						GetCommandTagName(CreateCommandTag(stmt->stmt))),
				 errdetail("Only SELECT, INSERT, UPDATE, DELETE and MERGE statements can run under an idempotency key."),
				 errhint("%s", refused_statement_hint(stmt->stmt))));
}

/*
 * The command word of the plan's statement, as PostgreSQL's command tag
 * gives it: the statement the caller wrote, whatever rules rewrote it into.
 */
static const char *
command_word(SPIPlanPtr plan)
{
	List	   *sources = SPI_plan_get_plan_sources(plan);

	Assert(list_length(sources) == 1);
	return GetCommandTagName(((CachedPlanSource *) linitial(sources))->commandTag);
}

/*
 * to_jsonb(value) for values of one column, called directly: to_jsonb finds
 * its argument's type through fn_expr, so give it an expression whose
 * argument has the column's type.
 */
static void
column_to_jsonb_fn(FmgrInfo *f, Form_pg_attribute att)
{
	fmgr_info(F_TO_JSONB, f);
	f->fn_expr = (Node *) makeFuncExpr(F_TO_JSONB, JSONBOID,
									   list_make1(makeNullConst(att->atttypid,
																att->atttypmod,
																att->attcollation)),
									   InvalidOid, InvalidOid,
									   COERCE_EXPLICIT_CALL);
}

static void
push_key(JsonbParseState **state, const char *name)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) name;
	k.val.string.len = strlen(name);
	pushJsonbValue(state, WJB_KEY, &k);
}

static void
result_too_large(const char *key, Size size)
{
	idem_stats_count(IDEM_STAT_TOO_LARGE, 1);
	ereport(ERROR,
			(errcode(ERRCODE_IDEM_RESULT_TOO_LARGE),
			 errmsg("result of the statement under idempotency key \"%s\" is too large to store",
					key),
			 errdetail("The result takes more than %zu bytes; idempotency.max_result_size is %d bytes.",
					   size, idem_max_result_size),
			 errhint("Narrow the RETURNING or SELECT list, or raise idempotency.max_result_size.")));
}

/*
 * Where the statement's output rows go, as the executor produces them: each
 * becomes a jsonb object at once, and the statement fails with IK003 as
 * soon as their sizes add up to more than idempotency.max_result_size.  So
 * a statement with a huge output is stopped early and never held in memory
 * whole, as SPI's own tuple table would hold it before any size check.
 */
typedef struct RowCollector
{
	DestReceiver pub;
	const char *key;
	MemoryContext cxt;			/* where the rows are kept */
	MemoryContext rowcxt;		/* scratch, reset after each row */
	TupleDesc	desc;			/* the rows' descriptor */
	FmgrInfo   *to_jsonb;		/* per column: to_jsonb of its type */
	List	   *rows;			/* Jsonb *, in order */
	Size		size;			/* their total size */
	List	   *record_columns; /* columns of record types: see check_value */
	List	   *checked_typmods;	/* record typmods whose names were checked */
} RowCollector;

static void check_type_names(Oid type, int32 typmod, const char *key,
							 const char *column);

static void
raise_duplicate_name(const char *key, const char *column, const char *name)
{
	if (column == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_ALIAS),
				 errmsg("statement under idempotency key \"%s\" returns more than one column named \"%s\"",
						key, name),
				 errdetail("Each row is stored as a JSON object, which holds one value per column name."),
				 errhint("Give the output columns distinct names, e.g. RETURNING o.id AS order_id, l.id AS line_id.")));
	ereport(ERROR,
			(errcode(ERRCODE_DUPLICATE_ALIAS),
			 errmsg("statement under idempotency key \"%s\" returns more than one field named \"%s\" in column \"%s\"",
					key, name, column),
			 errdetail("Each row value is stored as a JSON object, which holds one value per field name."),
			 errhint("Give the fields of column \"%s\" distinct names with aliases.",
					 column)));
}

/*
 * A stored row is a JSON object, which keeps one value per name: refuse an
 * output with two columns of one name (RETURNING o.id, l.id), or a column
 * whose row values have two fields of one name, rather than lose one.
 * column is NULL for the statement's own columns, else the output column
 * whose row type desc is.
 */
static void
check_names(TupleDesc desc, const char *key, const char *column)
{
	int			i;
	int			j;

	check_stack_depth();
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attisdropped)
			continue;
		for (j = 0; j < i; j++)
		{
			Form_pg_attribute b = TupleDescAttr(desc, j);

			if (!b->attisdropped &&
				strcmp(NameStr(a->attname), NameStr(b->attname)) == 0)
				raise_duplicate_name(key, column, NameStr(a->attname));
		}
		check_type_names(a->atttypid, a->atttypmod, key,
						 column ? column : NameStr(a->attname));
	}
}

/*
 * The same for the fields of a column's type: an anonymous row type (a
 * record of a known shape, such as a subquery's row), also inside arrays
 * and domains.  Named composite types cannot have two fields of one name.
 */
static void
check_type_names(Oid type, int32 typmod, const char *key, const char *column)
{
	Oid			elem;

	type = getBaseTypeAndTypmod(type, &typmod);
	elem = get_element_type(type);
	if (OidIsValid(elem))
		check_type_names(elem, typmod, key, column);
	else if (type == RECORDOID && typmod >= 0)
	{
		TupleDesc	desc = lookup_rowtype_tupdesc(type, typmod);

		check_names(desc, key, column);
		ReleaseTupleDesc(desc);
	}
}

/* Whether values of this type are, or are arrays of, anonymous records. */
static bool
is_record_type(Oid type)
{
	int32		typmod = -1;

	type = getBaseTypeAndTypmod(type, &typmod);
	return type == RECORDOID || type == RECORDARRAYOID;
}

static void
collector_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	RowCollector *c = (RowCollector *) self;
	MemoryContext oldcxt;
	int			i;

	/* before the executor produces the first row: nothing has run yet */
	check_names(typeinfo, c->key, NULL);
	oldcxt = MemoryContextSwitchTo(c->cxt);

	c->desc = CreateTupleDescCopy(typeinfo);
	c->to_jsonb = palloc0(sizeof(FmgrInfo) * Max(typeinfo->natts, 1));
	for (i = 0; i < typeinfo->natts; i++)
	{
		if (!TupleDescAttr(typeinfo, i)->attisdropped)
			column_to_jsonb_fn(&c->to_jsonb[i], TupleDescAttr(typeinfo, i));
	}
	c->rowcxt = AllocSetContextCreate(c->cxt, "idempotency result row",
									  ALLOCSET_SMALL_SIZES);

	/* columns whose values carry row types of their own: see check_value */
	for (i = 0; i < typeinfo->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(typeinfo, i);

		if (!a->attisdropped && is_record_type(a->atttypid))
			c->record_columns = lappend_int(c->record_columns, i);
	}
	MemoryContextSwitchTo(oldcxt);
}

/*
 * check_names for the row types that only the values tell: a record from a
 * function returning record, a record nested in another, an array of
 * records.  Each record typmod is checked once per statement.
 */
static void
check_value(RowCollector *c, Datum value, Oid type, const char *column)
{
	int32		typmod = -1;

	check_stack_depth();
	type = getBaseTypeAndTypmod(type, &typmod);
	if (type == RECORDARRAYOID)
	{
		ArrayIterator it = array_create_iterator(DatumGetArrayTypeP(value), 0, NULL);
		Datum		elem;
		bool		isnull;

		while (array_iterate(it, &elem, &isnull))
		{
			if (!isnull)
				check_value(c, elem, RECORDOID, column);
		}
		array_free_iterator(it);
	}
	else if (type == RECORDOID)
	{
		HeapTupleHeader rec = DatumGetHeapTupleHeader(value);
		TupleDesc	desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(rec),
												  HeapTupleHeaderGetTypMod(rec));
		HeapTupleData tuple;
		int			i;

		if (!list_member_int(c->checked_typmods, desc->tdtypmod))
		{
			MemoryContext oldcxt;

			check_names(desc, c->key, column);
			oldcxt = MemoryContextSwitchTo(c->cxt);
			c->checked_typmods = lappend_int(c->checked_typmods, desc->tdtypmod);
			MemoryContextSwitchTo(oldcxt);
		}
		tuple.t_len = HeapTupleHeaderGetDatumLength(rec);
		ItemPointerSetInvalid(&tuple.t_self);
		tuple.t_tableOid = InvalidOid;
		tuple.t_data = rec;
		for (i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute a = TupleDescAttr(desc, i);
			Datum		field;
			bool		isnull;

			if (a->attisdropped || !is_record_type(a->atttypid))
				continue;
			field = heap_getattr(&tuple, i + 1, desc, &isnull);
			if (!isnull)
				check_value(c, field, a->atttypid, column);
		}
		ReleaseTupleDesc(desc);
	}
}

static void
check_record_values(RowCollector *c, TupleTableSlot *slot)
{
	ListCell   *lc;

	foreach(lc, c->record_columns)
	{
		int			i = lfirst_int(lc);
		bool		isnull;
		Datum		value = slot_getattr(slot, i + 1, &isnull);

		if (!isnull)
			check_value(c, value, TupleDescAttr(c->desc, i)->atttypid,
						NameStr(TupleDescAttr(c->desc, i)->attname));
	}
}

/*
 * A row as a JSON object, as to_jsonb(record) makes it, but built column by
 * column: to_jsonb(record) needs the row type registered (BlessTupleDesc),
 * and the registry keeps every row type for the backend's life, so a new
 * column alias in each call would grow the backend.
 */
static Jsonb *
row_to_jsonb(RowCollector *c, TupleTableSlot *slot)
{
	JsonbParseState *state = NULL;
	JsonbValue	v;
	int			i;

	slot_getallattrs(slot);
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < c->desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(c->desc, i);

		if (att->attisdropped)
			continue;
		push_key(&state, NameStr(att->attname));
		if (slot->tts_isnull[i])
			v.type = jbvNull;
		else
		{
			Jsonb	   *value = DatumGetJsonbP(FunctionCall1(&c->to_jsonb[i],
															 slot->tts_values[i]));

			if (JB_ROOT_IS_SCALAR(value))
				JsonbExtractScalar(&value->root, &v);
			else
			{
				v.type = jbvBinary;
				v.val.binary.data = &value->root;
				v.val.binary.len = VARSIZE(value) - VARHDRSZ;
			}
		}
		pushJsonbValue(&state, WJB_VALUE, &v);
	}
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

static bool
collector_receive(TupleTableSlot *slot, DestReceiver *self)
{
	RowCollector *c = (RowCollector *) self;
	MemoryContext oldcxt = MemoryContextSwitchTo(c->rowcxt);
	Jsonb	   *row;
	Size		len;

	check_record_values(c, slot);
	row = row_to_jsonb(c, slot);
	len = VARSIZE(row);

	/* give up early rather than build a huge value to throw away */
	c->size += len;
	if (c->size > (Size) idem_max_result_size)
		result_too_large(c->key, c->size);

	MemoryContextSwitchTo(c->cxt);
	c->rows = lappend(c->rows, memcpy(palloc(len), row, len));
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(c->rowcxt);
	return true;
}

static void
collector_shutdown(DestReceiver *self)
{
}

static void
collector_destroy(DestReceiver *self)
{
}

/* Run the plan, its output rows going to a RowCollector. */
static uint64
run_collecting(SPIPlanPtr plan, const RequestArgs *args, RowCollector *c)
{
	SPIExecuteOptions options;
	ParamListInfo params = NULL;
	int			rc;
	int			i;

	if (args->nargs > 0)
	{
		params = makeParamList(args->nargs);
		for (i = 0; i < args->nargs; i++)
		{
			ParamExternData *prm = &params->params[i];

			prm->value = args->values[i];
			prm->isnull = args->nulls[i] == 'n';
			prm->pflags = PARAM_FLAG_CONST;
			prm->ptype = args->types[i];
		}
	}

	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = false;
	options.dest = &c->pub;
	rc = SPI_execute_plan_extended(plan, &options);
	if (rc < 0)
		elog(ERROR, "SPI_execute_plan_extended failed: %s",
			 SPI_result_code_string(rc));
	return SPI_processed;
}

/*
 * Start a result object: {"command": command, "row_count": row_count,
 * "rows": and the caller pushes the rows array, then WJB_END_OBJECT.
 */
static void
result_begin(JsonbParseState **state, const char *command, int64 row_count)
{
	JsonbValue	v;

	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);

	push_key(state, "command");
	v.type = jbvString;
	v.val.string.val = (char *) command;
	v.val.string.len = strlen(command);
	pushJsonbValue(state, WJB_VALUE, &v);

	push_key(state, "row_count");
	v.type = jbvNumeric;
	v.val.numeric = DatumGetNumeric(DirectFunctionCall1(int8_numeric,
														Int64GetDatum(row_count)));
	pushJsonbValue(state, WJB_VALUE, &v);

	push_key(state, "rows");
}

/*
 * Run the statement's plan (see statement_plan) and return its result
 * object.  The caller is connected to SPI; the result lives in the current
 * memory context.
 */
Jsonb *
statement_run(SPIPlanPtr plan, const RequestArgs *args, const char *key)
{
	RowCollector c;
	uint64		processed;
	JsonbParseState *state = NULL;
	JsonbValue	v;
	JsonbValue *res;
	Jsonb	   *result;
	ListCell   *lc;

	memset(&c, 0, sizeof(c));
	c.pub.receiveSlot = collector_receive;
	c.pub.rStartup = collector_startup;
	c.pub.rShutdown = collector_shutdown;
	c.pub.rDestroy = collector_destroy;
	c.pub.mydest = DestNone;
	c.key = key;
	c.cxt = CurrentMemoryContext;
	processed = run_collecting(plan, args, &c);

	result_begin(&state, command_word(plan), (int64) processed);
	pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	foreach(lc, c.rows)
	{
		Jsonb	   *row = (Jsonb *) lfirst(lc);

		v.type = jbvBinary;
		v.val.binary.data = &row->root;
		v.val.binary.len = VARSIZE(row) - VARHDRSZ;
		pushJsonbValue(&state, WJB_ELEM, &v);
	}
	pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);

	result = JsonbValueToJsonb(res);
	if (VARSIZE(result) > (Size) idem_max_result_size)
		result_too_large(key, VARSIZE(result));
	return result;
}

/*
 * The stored object with "replayed" added, as idem_execute returns it.
 *
 * Built from the stored bytes rather than through jsonb_concat, which would
 * decode and re-encode the whole result on every replay.  An object's
 * on-disk form is a header, one JEntry per key then one per value, the key
 * strings, then the value data (see utils/jsonb.h).  Adding one key with a
 * boolean value (which has no data bytes) inserts two JEntries and the
 * eight bytes "replayed" among the key strings, in the keys' sort order
 * (shorter first, then bytewise); every value's bytes move by 16, which
 * keeps the int alignment numerics and containers were padded to.  The
 * JEntries are written again, with an end offset on every
 * JB_OFFSET_STRIDE'th as convertJsonbObject does.
 */
Jsonb *
result_with_replayed(Jsonb *stored, bool replayed)
{
	static const char name[] = "replayed";
	const uint32 namelen = sizeof(name) - 1;
	JsonbContainer *in = &stored->root;
	uint32		npairs = JsonContainerSize(in);
	uint32		nout = npairs + 1;
	uint32		pos;
	uint32		keys_len;
	uint32		values_len;
	uint32		split;
	uint32		total;
	uint32		i;
	const char *in_data;
	Jsonb	   *out;
	JEntry	   *out_entries;
	char	   *out_data;

	/* only a hand-edited keys table could hold anything else */
	if (!JsonContainerIsObject(in))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored idempotency result is not a JSON object")));

	/* where "replayed" goes among the keys: after every key that sorts first */
	in_data = (const char *) &in->children[npairs * 2];
	for (pos = 0; pos < npairs; pos++)
	{
		uint32		len = getJsonbLength(in, pos);
		int			cmp;

		if (len != namelen)
			cmp = len < namelen ? -1 : 1;
		else
			cmp = memcmp(in_data + getJsonbOffset(in, pos), name, namelen);
		if (cmp == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("stored idempotency result already has a \"%s\" key",
							name)));
		if (cmp > 0)
			break;
	}
	keys_len = npairs > 0 ? getJsonbOffset(in, npairs) : 0;
	values_len = npairs > 0 ?
		getJsonbOffset(in, 2 * npairs - 1) + getJsonbLength(in, 2 * npairs - 1) -
		keys_len : 0;
	split = pos < npairs ? getJsonbOffset(in, pos) : keys_len;

	total = VARHDRSZ + sizeof(uint32) + 2 * nout * sizeof(JEntry) +
		keys_len + namelen + values_len;
	out = palloc(total);
	SET_VARSIZE(out, total);
	out->root.header = nout | JB_FOBJECT;
	out_entries = out->root.children;
	out_data = (char *) &out_entries[2 * nout];

	/* the data: keys before, the new key, keys after, then every value */
	memcpy(out_data, in_data, split);
	memcpy(out_data + split, name, namelen);
	memcpy(out_data + split + namelen, in_data + split, keys_len - split);
	memcpy(out_data + keys_len + namelen, in_data + keys_len, values_len);

	/* the JEntries: type bits as stored, lengths or end offsets anew */
	{
		uint32		end = 0;

		for (i = 0; i < 2 * nout; i++)
		{
			uint32		type;
			uint32		len;

			if (i == pos)
			{
				type = JENTRY_ISSTRING;
				len = namelen;
			}
			else if (i == nout + pos)
			{
				type = replayed ? JENTRY_ISBOOL_TRUE : JENTRY_ISBOOL_FALSE;
				len = 0;
			}
			else
			{
				/* the same child of the stored object */
				uint32		from = i < nout ? (i < pos ? i : i - 1) :
					npairs + (i - nout < pos ? i - nout : i - nout - 1);

				type = in->children[from] & JENTRY_TYPEMASK;
				len = getJsonbLength(in, from);
			}
			end += len;
			if (i % JB_OFFSET_STRIDE == 0)
				out_entries[i] = type | JENTRY_HAS_OFF | end;
			else
				out_entries[i] = type | len;
		}
	}
	return out;
}

/*
 * The keys table stores a result object in two columns (keystore.c): its
 * command and row count as text, "INSERT 1", and its rows array as jsonb.
 * The object costs its three key strings and their JEntries on every key;
 * the split form does not.  result_join() builds the object again exactly
 * as statement_run() built it, byte for byte: the same values pushed in the
 * same order.
 */
void
result_split(Jsonb *result, char **command, Jsonb **rows)
{
	JsonbValue	v_command;
	JsonbValue	v_count;
	JsonbValue	v_rows;

	if (!JB_ROOT_IS_OBJECT(result) || JB_ROOT_COUNT(result) != 3 ||
		getKeyJsonValueFromContainer(&result->root, "command", 7, &v_command) == NULL ||
		v_command.type != jbvString ||
		getKeyJsonValueFromContainer(&result->root, "row_count", 9, &v_count) == NULL ||
		v_count.type != jbvNumeric ||
		getKeyJsonValueFromContainer(&result->root, "rows", 4, &v_rows) == NULL ||
		v_rows.type != jbvBinary || !JsonContainerIsArray(v_rows.val.binary.data))
		elog(ERROR, "result object of unexpected shape");

	*command = psprintf("%.*s %s", v_command.val.string.len,
						v_command.val.string.val,
						DatumGetCString(DirectFunctionCall1(numeric_out,
															NumericGetDatum(v_count.val.numeric))));
	*rows = JsonbValueToJsonb(&v_rows);
}

/* The result object stored as command ("INSERT 1") and rows; see above. */
Jsonb *
result_join(const char *command, Jsonb *rows)
{
	const char *space = strrchr(command, ' ');
	char	   *end;
	int64		row_count;
	char	   *word;
	JsonbParseState *state = NULL;
	JsonbValue	v;

	errno = 0;
	row_count = space != NULL ? strtoi64(space + 1, &end, 10) : -1;
	if (space == NULL || space == command || errno != 0 || *end != '\0' ||
		end == space + 1 || row_count < 0 || !JB_ROOT_IS_ARRAY(rows) ||
		JB_ROOT_IS_SCALAR(rows))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stored idempotency result is corrupted"),
				 errdetail("Its command is \"%s\"; a command word and a row count, with a rows array, were expected.",
						   command)));
	word = pnstrdup(command, space - command);

	result_begin(&state, word, row_count);
	v.type = jbvBinary;
	v.val.binary.data = &rows->root;
	v.val.binary.len = VARSIZE(rows) - VARHDRSZ;
	pushJsonbValue(&state, WJB_VALUE, &v);
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}
