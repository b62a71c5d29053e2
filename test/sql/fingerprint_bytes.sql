-- The stored fingerprint is 0x02 followed by SHA-256 of the request's
-- encoding: each part as its length (4 bytes, little-endian as on the
-- machines we build for) and its bytes; the parts are the statement text,
-- the argument count, then per argument its schema-qualified type name and
-- "v" plus its text form, or an empty part for NULL (the 1.0 encoding),
-- then the effective search_path: the count of its schemas and each name
-- (fingerprint.c).  Recomputed here with PostgreSQL's own sha256(), for
-- statement texts of every length modulo the 64-byte block, so fingerprints
-- stored by any version keep replaying.  A 1.0 fingerprint (SHA-256 of the
-- 1.0 encoding alone, 32 bytes) still replays.
SET client_min_messages = warning;
\set VERBOSITY terse
CREATE FUNCTION fp_le32(n int) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT set_byte(set_byte(set_byte(set_byte('\x00000000'::bytea,
           0, n & 255), 1, (n >> 8) & 255), 2, (n >> 16) & 255), 3, (n >> 24) & 255)
$$;
CREATE FUNCTION fp_part(b bytea) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT fp_le32(length(b)) || b
$$;
CREATE FUNCTION fp_text(t text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT fp_part(convert_to(t, 'UTF8'))
$$;
-- version 2: the 1.0 encoding, then the effective search_path
CREATE FUNCTION fp_v2(enc bytea) RETURNS bytea LANGUAGE sql STABLE AS $$
    SELECT '\x02'::bytea || sha256(enc || fp_part(fp_le32(cardinality(current_schemas(false))))
        || coalesce((SELECT string_agg(fp_text(n), ''::bytea ORDER BY i)
                       FROM unnest(current_schemas(false)) WITH ORDINALITY AS s(n, i)), ''::bytea))
$$;
SELECT current_schemas(false) AS effective_search_path;

-- one text argument, statement texts of 24 to 153 bytes
CREATE TEMP TABLE fp_calls AS
SELECT n, 'fp-' || n AS key, 'SELECT $1::text AS v --' || repeat('x', n) AS sql
  FROM generate_series(1, 130) AS n;
SELECT count(idem_execute(key, sql, 'é-' || n)) AS calls FROM fp_calls;
SELECT count(*) AS matching
  FROM fp_calls c JOIN idempotency_keys k ON k.key = c.key
 WHERE k.fingerprint = fp_v2(fp_text(c.sql) || fp_part(fp_le32(1))
                             || fp_text('pg_catalog.text') || fp_text('v') || fp_text('é-' || c.n));

-- no arguments; a NULL and a numeric; a long statement
SELECT idem_execute('fp-none', 'SELECT 1 AS one') ->> 'replayed' AS replayed;
SELECT fingerprint = fp_v2(fp_text('SELECT 1 AS one') || fp_part(fp_le32(0))) AS no_args
  FROM idempotency_keys WHERE key = 'fp-none';
SELECT idem_execute('fp-null', 'SELECT $1::text AS a, $2::numeric AS b', NULL::text, 100.00::numeric) ->> 'replayed' AS replayed;
SELECT fingerprint = fp_v2(fp_text('SELECT $1::text AS a, $2::numeric AS b') || fp_part(fp_le32(2))
                            || fp_text('pg_catalog.text') || fp_text('')
                            || fp_text('numeric') || fp_text('v') || fp_text('100.00')) AS null_and_numeric
  FROM idempotency_keys WHERE key = 'fp-null';
SELECT idem_execute('fp-long', 'SELECT length($1) AS l --' || repeat('y', 10000), repeat('z', 5000)) -> 'rows' AS rows;
SELECT fingerprint = fp_v2(fp_text('SELECT length($1) AS l --' || repeat('y', 10000)) || fp_part(fp_le32(1))
                            || fp_text('pg_catalog.text') || fp_text('v') || fp_text(repeat('z', 5000))) AS long
  FROM idempotency_keys WHERE key = 'fp-long';

-- every one of them replays
SELECT count(*) FILTER (WHERE idem_execute(key, sql, 'é-' || n) ->> 'replayed' = 'true') AS replayed
  FROM fp_calls;

-- a 1.0 fingerprint (32 bytes, no search_path) replays to the same request,
-- and is IK001 to another one
UPDATE idempotency_keys SET fingerprint = sha256(fp_text('SELECT 1 AS one') || fp_part(fp_le32(0)))
 WHERE key = 'fp-none';
SELECT idem_execute('fp-none', 'SELECT 1 AS one') ->> 'replayed' AS replayed_1_0;
SELECT idem_execute('fp-none', 'SELECT 2 AS one') ->> 'replayed' AS other_request;
\echo :LAST_ERROR_SQLSTATE
-- under another search_path, the same text and arguments are another request: IK001
SET search_path = pg_catalog, public;
SELECT idem_execute('fp-null', 'SELECT $1::text AS a, $2::numeric AS b', NULL::text, 100.00::numeric) ->> 'replayed' AS replayed;
\echo :LAST_ERROR_SQLSTATE
RESET search_path;

-- the backend's own temporary schema counts as "pg_temp", whatever its
-- number, so a retry from another connection matches
SET search_path = pg_temp, public;
SELECT idem_execute('fp-temp', 'SELECT 1 AS one') ->> 'replayed' AS replayed;
SELECT current_schemas(false) <> ARRAY['pg_temp', 'public']::name[] AS numbered_temp_schema,
       fingerprint = '\x02'::bytea || sha256(fp_text('SELECT 1 AS one') || fp_part(fp_le32(0))
                                   || fp_part(fp_le32(2)) || fp_text('pg_temp') || fp_text('public')) AS temp_as_pg_temp
  FROM idempotency_keys WHERE key = 'fp-temp';
RESET search_path;

SELECT count(*) FILTER (WHERE idem_forget(key)) AS forgotten
  FROM (SELECT key FROM fp_calls UNION ALL VALUES ('fp-none'), ('fp-null'), ('fp-long'), ('fp-temp')) AS k(key);
DROP FUNCTION fp_v2(bytea), fp_text(text), fp_part(bytea), fp_le32(int);
