/*-------------------------------------------------------------------------
 *
 * fingerprint.c
 *	  Fingerprints of requests: what a retry must match to replay.
 *
 * Stored fingerprints come in four forms (the keys table's fingerprint
 * column):
 *
 *	32 bytes			idem_execute in 1.0: SHA-256 of the request encoding
 *						below.  Still recognised: a 1.0 key replays after the
 *						update to a retry that matches its 1.0 computation.
 *	0x02 || SHA-256/128	idem_execute since 1.1: the 1.0 encoding, with
 *						arguments of reg* types printed fully qualified,
 *						followed by the effective search_path.
 *	0x03 [|| SHA-256/128]	idem_begin: the request jsonb's canonical
 *						encoding; just 0x03 when the request is NULL.
 *	NULL				a guard key.
 *
 * SHA-256/128 is the first 16 bytes of the SHA-256 digest: 17 bytes stored
 * per key instead of 33.  A fingerprint is only ever compared with the one
 * stored under the same key (same role, tenant and key), so what 128 bits
 * must resist is one request passing for another under one key: by chance,
 * odds of 2^-128 per retry; on purpose, a second preimage, 2^128 work.  A
 * pair of colliding requests (2^64 work) only helps a client who chooses
 * both requests under its own key, and could as well send the same one
 * twice: nobody else's key is reachable that way.
 *
 * The request encoding: the statement text, the argument count, then per
 * argument its schema-qualified type name (not its OID, which
 * pg_dump/pg_restore does not keep for user-defined types) and "v" plus its
 * text form under fixed output settings (canonical.c), or an empty part for
 * a NULL.  Every part is its length (4 bytes, in the machine's order) and
 * its bytes, so no two requests can hash the same bytes.
 *
 * Version 2 adds the effective search_path (the schemas of search_path that
 * exist and that the role may use, without the implicit ones; pg_temp as
 * "pg_temp" wherever it is written: hash_search_path): the same statement
 * text resolved against another schema is another request, so a
 * schema-per-tenant application gets its own execution or IK001, never
 * another schema's stored result.  And reg* values are printed with
 * search_path empty, so 's1.t'::regclass and 's2.t'::regclass never print
 * alike.
 *
 * src/fingerprint.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "compat.h"
#include "idempotency.h"

static pg_cryptohash_ctx *
hash_begin(void)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not initialize SHA-256 context: %s",
			 idem_cryptohash_error(ctx));
	return ctx;
}

static void
hash_part(pg_cryptohash_ctx *ctx, const void *data, uint32 len)
{
	if (pg_cryptohash_update(ctx, (const uint8 *) &len, sizeof(len)) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0)
		elog(ERROR, "could not update SHA-256 context: %s",
			 idem_cryptohash_error(ctx));
}

/*
 * Finish the hash into a bytea: the whole digest without a prefix (1.0),
 * or the prefix and the digest's first IDEM_FINGERPRINT_DIGEST_LEN bytes.
 */
static bytea *
hash_end(pg_cryptohash_ctx *ctx, int prefix)
{
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	int			skip = prefix >= 0 ? 1 : 0;
	int			len = prefix >= 0 ? IDEM_FINGERPRINT_DIGEST_LEN :
		PG_SHA256_DIGEST_LENGTH;
	bytea	   *result = palloc(VARHDRSZ + skip + len);

	if (idem_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not finalize SHA-256 context: %s",
			 idem_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	SET_VARSIZE(result, VARHDRSZ + skip + len);
	if (prefix >= 0)
		*((uint8 *) VARDATA(result)) = (uint8) prefix;
	memcpy(VARDATA(result) + skip, digest, len);
	return result;
}

/* The 1.0 request encoding; version 2 qualifies reg* values. */
static void
hash_statement(pg_cryptohash_ctx *ctx, const char *sql,
			   const RequestArgs *args, bool qualify)
{
	uint32		nargs = args->nargs;
	int			nestlevel = 0;
	int			i;

	hash_part(ctx, sql, strlen(sql));
	hash_part(ctx, &nargs, sizeof(nargs));
	if (args->canonical)
		nestlevel = qualify && args->qualify ? canonical_output_begin() :
			canonical_output_begin_settings();
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
}

/*
 * The effective search_path: a count, then each schema's name.  The
 * schemas are those of search_path that name resolution uses, in order and
 * each once, as recomputeNamespacePath() finds them: "$user" and other
 * names that name an existing schema the role may use; pg_temp (or the
 * backend's own pg_temp_N) always, as "pg_temp", whether or not this
 * backend has created its temporary schema yet.
 *
 * Not fetch_search_path(): with pg_temp first it creates the temporary
 * schema (a catalog write on every new session's first call, 42501 for a
 * role without the TEMP privilege, an error on a hot standby, even for a
 * replay), and it leaves out a pg_temp written later in the path until a
 * temporary table exists, so the same request in the same session
 * fingerprinted differently before and after one.
 */
static List *
search_path_schemas(void)
{
	char	   *raw = pstrdup(namespace_search_path);
	List	   *entries;
	List	   *seen = NIL;
	List	   *names = NIL;
	bool		temp_seen = false;
	ListCell   *lc;

	if (!SplitIdentifierString(raw, ',', &entries))
		elog(ERROR, "invalid list syntax in search_path");	/* GUC checked it */
	foreach(lc, entries)
	{
		char	   *name = (char *) lfirst(lc);
		Oid			nsp = InvalidOid;
		bool		is_temp;

		if (strcmp(name, "$user") == 0)
			name = GetUserNameFromId(GetUserId(), true);
		if (name == NULL)
			continue;			/* the role is gone: resolves nothing */
		is_temp = strcmp(name, "pg_temp") == 0;
		if (!is_temp)
		{
			nsp = get_namespace_oid(name, true);
			is_temp = OidIsValid(nsp) && isTempNamespace(nsp);
		}
		if (is_temp)
		{
			/* pg_temp, or this backend's pg_temp_N: once, as "pg_temp" */
			if (!temp_seen)
				names = lappend(names, pstrdup("pg_temp"));
			temp_seen = true;
		}
		else if (OidIsValid(nsp) && !list_member_oid(seen, nsp) &&
				 idem_namespace_aclcheck(nsp, GetUserId(), ACL_USAGE) == ACLCHECK_OK)
		{
			seen = lappend_oid(seen, nsp);
			names = lappend(names, pstrdup(name));
		}
	}
	list_free(seen);
	list_free(entries);
	pfree(raw);
	return names;
}

/*
 * The schemas of search_path_schemas(), kept between calls: they depend
 * only on the search_path setting, the current role and the catalogs
 * (schemas and their privileges, role names for "$user", role memberships
 * for USAGE), so a replay need not look them up again every time.  Any
 * change to those catalogs empties the cache.
 */
static MemoryContext search_path_cxt = NULL;
static bool search_path_valid = false;
static char *search_path_setting = NULL;
static Oid	search_path_user = InvalidOid;
static List *search_path_names = NIL;

static void
search_path_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	search_path_valid = false;
}

void
fingerprint_init(void)
{
	CacheRegisterSyscacheCallback(NAMESPACEOID, search_path_invalidate, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, search_path_invalidate, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, search_path_invalidate, (Datum) 0);
}

static void
hash_search_path(pg_cryptohash_ctx *ctx)
{
	uint32		n;
	ListCell   *lc;

	if (!search_path_valid || search_path_user != GetUserId() ||
		strcmp(search_path_setting, namespace_search_path) != 0)
	{
		List	   *names;
		MemoryContext oldcxt;

		if (search_path_cxt == NULL)
			search_path_cxt = AllocSetContextCreate(TopMemoryContext,
													"idempotency search_path",
													ALLOCSET_SMALL_SIZES);
		/* valid from here: an invalidation during the lookups clears it */
		search_path_valid = true;
		names = search_path_schemas();
		MemoryContextReset(search_path_cxt);
		oldcxt = MemoryContextSwitchTo(search_path_cxt);
		search_path_names = NIL;
		foreach(lc, names)
			search_path_names = lappend(search_path_names, pstrdup(lfirst(lc)));
		search_path_setting = pstrdup(namespace_search_path);
		MemoryContextSwitchTo(oldcxt);
		search_path_user = GetUserId();
		list_free_deep(names);
	}

	n = list_length(search_path_names);
	hash_part(ctx, &n, sizeof(n));
	foreach(lc, search_path_names)
		hash_part(ctx, lfirst(lc), strlen(lfirst(lc)));
}

/* The fingerprint idem_execute stores (version 2). */
bytea *
idem_fingerprint(const char *sql, const RequestArgs *args)
{
	pg_cryptohash_ctx *ctx = hash_begin();

	hash_statement(ctx, sql, args, true);
	hash_search_path(ctx);
	return hash_end(ctx, IDEM_FINGERPRINT_STATEMENT);
}

/* The fingerprint idem_execute stored in 1.0. */
static bytea *
idem_fingerprint_1_0(const char *sql, const RequestArgs *args)
{
	pg_cryptohash_ctx *ctx = hash_begin();

	hash_statement(ctx, sql, args, false);
	return hash_end(ctx, -1);
}

static bool
same_bytes(bytea *a, bytea *b)
{
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

/*
 * Does a stored fingerprint match this idem_execute request, whose
 * fingerprint (version 2) is current?  A 1.0 fingerprint is compared with
 * the 1.0 computation, done only then.
 */
bool
fingerprint_statement_matches(bytea *stored, bytea *current, const char *sql,
							  const RequestArgs *args)
{
	if (stored == NULL)
		return false;
	if (VARSIZE_ANY_EXHDR(stored) == IDEM_FINGERPRINT_LEN_1_0)
		return same_bytes(stored, idem_fingerprint_1_0(sql, args));
	return same_bytes(stored, current);
}

/*
 * The canonical encoding of a jsonb value: equal jsonb values encode alike.
 * jsonb already keeps object keys sorted and unique; numbers are written
 * by value (numeric_normalize: 1.0 and 1 are the same number), strings as
 * their bytes.  Every token is a tag byte, then a part where it has content.
 */
static void
hash_jsonb(pg_cryptohash_ctx *ctx, Jsonb *jb)
{
	JsonbIterator *it = JsonbIteratorInit(&jb->root);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		char		tag;

		switch (tok)
		{
			case WJB_BEGIN_ARRAY:
				tag = v.val.array.rawScalar ? 's' : '[';
				hash_part(ctx, &tag, 1);
				continue;
			case WJB_END_ARRAY:
				tag = ']';
				hash_part(ctx, &tag, 1);
				continue;
			case WJB_BEGIN_OBJECT:
				tag = '{';
				hash_part(ctx, &tag, 1);
				continue;
			case WJB_END_OBJECT:
				tag = '}';
				hash_part(ctx, &tag, 1);
				continue;
			case WJB_KEY:
				tag = 'k';
				break;
			case WJB_VALUE:
			case WJB_ELEM:
				tag = 'e';
				break;
			default:
				elog(ERROR, "unexpected jsonb token %d", (int) tok);
		}
		hash_part(ctx, &tag, 1);
		switch (v.type)
		{
			case jbvNull:
				hash_part(ctx, "n", 1);
				break;
			case jbvBool:
				hash_part(ctx, v.val.boolean ? "t" : "f", 1);
				break;
			case jbvString:
				hash_part(ctx, "s", 1);
				hash_part(ctx, v.val.string.val, v.val.string.len);
				break;
			case jbvNumeric:
				{
					char	   *num = numeric_normalize(v.val.numeric);

					hash_part(ctx, "d", 1);
					hash_part(ctx, num, strlen(num));
					pfree(num);
				}
				break;
			default:
				elog(ERROR, "unexpected jsonb value type %d", (int) v.type);
		}
	}
}

/* The fingerprint idem_begin stores: 0x03, and the request's hash if any. */
bytea *
fingerprint_request(Jsonb *request)
{
	bytea	   *result;
	pg_cryptohash_ctx *ctx;

	if (request == NULL)
	{
		result = palloc(VARHDRSZ + 1);
		SET_VARSIZE(result, VARHDRSZ + 1);
		*((uint8 *) VARDATA(result)) = IDEM_FINGERPRINT_REQUEST;
		return result;
	}
	ctx = hash_begin();
	hash_jsonb(ctx, request);
	return hash_end(ctx, IDEM_FINGERPRINT_REQUEST);
}

/*
 * Does a stored fingerprint match this idem_begin request?  Only a request
 * key's fingerprint can; a NULL request on either side skips the check.
 */
bool
fingerprint_request_matches(bytea *stored, bytea *current)
{
	Size		len = stored != NULL ? VARSIZE_ANY_EXHDR(stored) : 0;

	/* exactly 1 or 17 bytes: a 32-byte 1.0 fingerprint may start with 0x03 */
	if ((len != 1 && len != 1 + IDEM_FINGERPRINT_DIGEST_LEN) ||
		*((uint8 *) VARDATA_ANY(stored)) != IDEM_FINGERPRINT_REQUEST)
		return false;
	if (VARSIZE_ANY_EXHDR(stored) == 1 || VARSIZE_ANY_EXHDR(current) == 1)
		return true;
	return same_bytes(stored, current);
}
