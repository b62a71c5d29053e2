/*-------------------------------------------------------------------------
 *
 * canonical.c
 *	  Text forms of values that do not depend on the session's settings.
 *
 * Request fingerprints and guard keys are built from the text form of
 * values, and the text form of many types follows session settings:
 * DateStyle and TimeZone for dates and times, IntervalStyle, bytea_output,
 * extra_float_digits.  Left alone, two sessions would key the same value
 * differently (a retry from a pool connection with another TimeZone gets
 * IK001), and worse, two different values could print alike (0.3 and
 * 0.1 + 0.2 with extra_float_digits = 0) and be taken for the same key.
 *
 * So values of such types are printed under fixed settings, the ones
 * pg_dump and postgres_fdw use.  The settings last only until
 * canonical_output_end(); if an error is thrown in between, guc.c undoes
 * them at (sub)transaction abort.
 *
 * src/canonical.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/bytea.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "idempotency.h"

/*
 * Does the text form of this type depend on session settings?  True for
 * anything not known to be safe, so new and user-defined types are
 * printed under the fixed settings too.
 */
bool
canonical_output_needed(Oid type)
{
	Oid			base = getBaseType(type);
	Oid			elem = get_element_type(base);

	if (OidIsValid(elem))
		return canonical_output_needed(elem);

	switch (base)
	{
		case BOOLOID:
		case CHAROID:
		case NAMEOID:
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
		case NUMERICOID:
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case UUIDOID:
		case JSONOID:
		case JSONBOID:
			return false;
		default:
			return true;
	}
}

/*
 * Can the text form of this type depend on search_path?  True for the reg*
 * types, which print a name qualified only when it is not visible, and for
 * anything that may contain them: composites, records, ranges, and types
 * not built in (an extension's output function may print names).
 */
bool
canonical_output_needs_path(Oid type)
{
	Oid			base = getBaseType(type);
	Oid			elem = get_element_type(base);
	char		typtype;

	if (OidIsValid(elem))
		return canonical_output_needs_path(elem);
	switch (base)
	{
		case REGCLASSOID:
		case REGCOLLATIONOID:
		case REGCONFIGOID:
		case REGDICTIONARYOID:
		case REGNAMESPACEOID:
		case REGOPERATOROID:
		case REGOPEROID:
		case REGPROCEDUREOID:
		case REGPROCOID:
		case REGROLEOID:
		case REGTYPEOID:
		case RECORDOID:
			return true;
	}
	typtype = get_typtype(base);
	if (typtype == TYPTYPE_COMPOSITE || typtype == TYPTYPE_RANGE ||
		typtype == TYPTYPE_MULTIRANGE)
		return true;
	return base >= FirstNormalObjectId;
}

static void
set_option(const char *name, const char *value)
{
	(void) set_config_option(name, value, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * Fix the output settings; returns the nest level to pass to _end.
 * search_path is emptied too, so that values of reg* types (regclass,
 * regtype, regproc, ..., also inside arrays and composites) print
 * qualified: 's1.t'::regclass and 's2.t'::regclass never print alike.
 */
int
canonical_output_begin(void)
{
	int			nestlevel = canonical_output_begin_settings();

	if (namespace_search_path == NULL || namespace_search_path[0] != '\0')
		set_option("search_path", "");
	return nestlevel;
}

/*
 * The output settings without search_path: for values whose text form does
 * not depend on it (canonical_output_needs_path), which saves setting and
 * restoring search_path on every call, and for recomputing fingerprints
 * stored by 1.0, which left it alone (fingerprint.c).
 */
int
canonical_output_begin_settings(void)
{
	int			nestlevel = NewGUCNestLevel();

	if (DateStyle != USE_ISO_DATES)
		set_option("datestyle", "ISO");
	if (IntervalStyle != INTSTYLE_POSTGRES)
		set_option("intervalstyle", "postgres");
	if (extra_float_digits < 3)
		set_option("extra_float_digits", "3");
	if (bytea_output != BYTEA_OUTPUT_HEX)
		set_option("bytea_output", "hex");
	if (strcmp(pg_get_timezone_name(session_timezone), "UTC") != 0)
		set_option("timezone", "UTC");

	return nestlevel;
}

/* Restore the session's settings. */
void
canonical_output_end(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
}
