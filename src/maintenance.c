/*-------------------------------------------------------------------------
 *
 * maintenance.c
 *	  idem_lookup, idem_forget and idem_purge: reading, deleting and
 *	  expiring keys.
 *
 * idem_lookup and idem_forget only ever touch the calling role's keys in
 * the current idempotency.tenant (scope.c), whoever calls them; superusers
 * read other roles' keys from the table.
 *
 * src/maintenance.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "idempotency.h"

PG_FUNCTION_INFO_V1(idem_lookup);
PG_FUNCTION_INFO_V1(idem_forget);
PG_FUNCTION_INFO_V1(idem_purge);

/* idem_lookup(key text) RETURNS jsonb, STRICT */
Datum
idem_lookup(PG_FUNCTION_ARGS)
{
	char	   *key = text_to_cstring(PG_GETARG_TEXT_PP(0));
	KeyScope	scope;
	KeyStore	ks;
	Jsonb	   *result;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	keystore_open(&ks, fcinfo->flinfo->fn_oid);
	scope_of_role(&scope);
	result = keystore_lookup(&ks, &scope, key);
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");

	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(result);
}

/* idem_forget(key text) RETURNS boolean, STRICT */
Datum
idem_forget(PG_FUNCTION_ARGS)
{
	char	   *key = text_to_cstring(PG_GETARG_TEXT_PP(0));
	KeyScope	scope;
	KeyStore	ks;
	bool		existed;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	keystore_open(&ks, fcinfo->flinfo->fn_oid);
	scope_of_role(&scope);
	existed = keystore_forget(&ks, &scope, key);
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");

	PG_RETURN_BOOL(existed);
}

/* idem_purge(max_rows bigint DEFAULT NULL) RETURNS bigint; NULL: no limit */
Datum
idem_purge(PG_FUNCTION_ARGS)
{
	int64		max_rows = -1;
	KeyStore	ks;
	int64		purged;

	if (!PG_ARGISNULL(0))
	{
		max_rows = PG_GETARG_INT64(0);
		if (max_rows < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_rows must not be negative"),
					 errhint("Pass NULL to purge every expired key.")));
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	keystore_open(&ks, fcinfo->flinfo->fn_oid);
	purged = keystore_purge(&ks, max_rows);

	/*
	 * The colocated tables (Citus) once per pass, when this table's batches
	 * come back short, rather than a distributed DELETE on every shard with
	 * every batch of 500 the worker runs.
	 */
	if (max_rows < 0 || purged < max_rows)
		purged += colocated_purge(&ks);
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	idem_stats_count(IDEM_STAT_PURGED, (uint64) purged);

	PG_RETURN_INT64(purged);
}
