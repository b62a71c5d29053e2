/*-------------------------------------------------------------------------
 *
 * statement.h
 *	  A user's statement: its arguments, its check, running it and its
 *	  result object.
 *
 * RequestArgs is filled by execute.c (collect_args) and read by
 * fingerprint.c, plancache.c and statement.c.  The functions are owned by
 * statement.c.
 *
 * src/statement.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDEMPOTENCY_STATEMENT_H
#define IDEMPOTENCY_STATEMENT_H

#include "fmgr.h"
#include "executor/spi.h"
#include "utils/jsonb.h"

/* The arguments bound to $1..$n of a statement, in their own types. */
typedef struct RequestArgs
{
	int			nargs;
	Oid		   *types;
	Datum	   *values;
	char	   *nulls;			/* SPI convention: ' ' not null, 'n' null */
	FmgrInfo  **outfuncs;		/* output function of each argument's type */
	char	  **typenames;		/* schema-qualified type names, for hashing */
	bool		canonical;		/* some argument's text form needs fixed
								 * output settings (canonical.c) */
	bool		qualify;		/* ... and an empty search_path */
} RequestArgs;

extern void statement_check(const char *sql);
extern Jsonb *statement_run(SPIPlanPtr plan, const RequestArgs *args,
							const char *key);
extern Jsonb *result_with_replayed(Jsonb *stored, bool replayed);

#endif							/* IDEMPOTENCY_STATEMENT_H */
