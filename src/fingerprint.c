/*-------------------------------------------------------------------------
 *
 * fingerprint.c
 *	  SHA-256 fingerprint of a request: the statement text and its typed
 *	  arguments.
 *
 * A retry must send the same statement with equal arguments of the same
 * types.  Each argument contributes its schema-qualified type name (not its
 * OID, which pg_dump/pg_restore does not keep for user-defined types) and its
 * text form under fixed output settings (canonical.c); every part is
 * length-prefixed so no two requests can hash the same bytes.
 *
 * src/fingerprint.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/cryptohash.h"
#include "common/sha2.h"

#include "compat.h"
#include "idempotency.h"

static void
hash_part(pg_cryptohash_ctx *ctx, const void *data, uint32 len)
{
	if (pg_cryptohash_update(ctx, (const uint8 *) &len, sizeof(len)) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0)
		elog(ERROR, "could not update SHA-256 context: %s",
			 idem_cryptohash_error(ctx));
}

bytea *
idem_fingerprint(const char *sql, const RequestArgs *args)
{
	pg_cryptohash_ctx *ctx;
	bytea	   *result;
	uint32		nargs = args->nargs;
	int			nestlevel = 0;
	int			i;

	ctx = pg_cryptohash_create(PG_SHA256);
	if (pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not initialize SHA-256 context: %s",
			 idem_cryptohash_error(ctx));

	hash_part(ctx, sql, strlen(sql));
	hash_part(ctx, &nargs, sizeof(nargs));
	if (args->canonical)
		nestlevel = canonical_output_begin();
	for (i = 0; i < args->nargs; i++)
	{
		const char *typname = args->typenames[i];

		hash_part(ctx, typname, strlen(typname));
		if (args->nulls[i] == 'n')
			hash_part(ctx, "", 0);	/* a NULL: no value part follows */
		else
		{
			char	   *text = OutputFunctionCall(args->outfuncs[i],
												  args->values[i]);

			hash_part(ctx, "v", 1);
			hash_part(ctx, text, strlen(text));
			pfree(text);
		}
	}
	if (args->canonical)
		canonical_output_end(nestlevel);

	result = palloc(VARHDRSZ + IDEM_FINGERPRINT_LEN);
	SET_VARSIZE(result, VARHDRSZ + IDEM_FINGERPRINT_LEN);
	if (idem_cryptohash_final(ctx, (uint8 *) VARDATA(result),
							  IDEM_FINGERPRINT_LEN) < 0)
		elog(ERROR, "could not finalize SHA-256 context: %s",
			 idem_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	return result;
}
