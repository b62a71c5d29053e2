--
-- result_size: a result larger than idempotency.max_result_size raises
-- IK003 naming the key (hint: narrow RETURNING or raise the setting),
-- and records nothing: neither the key nor the statement's writes.
--
\set VERBOSITY terse

CREATE TABLE rs_t (id int PRIMARY KEY, payload text);

-- rs_error(q) runs q and returns SQLSTATE | message | hint of its error
CREATE FUNCTION rs_error(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text; msg text; hnt text;
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		hnt = PG_EXCEPTION_HINT;
	RETURN concat_ws(' | ', st, msg, nullif(hnt, ''));
END $$;

-- a small limit: a RETURNING of 100 rows of 100 bytes does not fit
SET idempotency.max_result_size = '1kB';
SHOW idempotency.max_result_size;
SELECT rs_error($$SELECT idem_execute('rs-big',
	'INSERT INTO rs_t SELECT g, repeat(''x'', 100) FROM generate_series(1, 100) g RETURNING id, payload')$$);
\set VERBOSITY sqlstate
SELECT idem_execute('rs-big',
	'INSERT INTO rs_t SELECT g, repeat(''x'', 100) FROM generate_series(1, 100) g RETURNING id, payload');
\set VERBOSITY terse
SELECT idem_execute('rs-big',
	'INSERT INTO rs_t SELECT g, repeat(''x'', 100) FROM generate_series(1, 100) g RETURNING id, payload');
-- nothing recorded: no key, no rows
SELECT count(*) AS keys FROM idempotency_keys;
SELECT count(*) AS rs_t_rows FROM rs_t;

-- the same statement without a wide RETURNING fits (narrow the RETURNING)
SELECT idem_execute('rs-narrow',
	'INSERT INTO rs_t SELECT g, repeat(''x'', 100) FROM generate_series(1, 100) g');
DELETE FROM rs_t;

-- a larger setting lets the same call through: nothing was recorded, so
-- it runs now
SET idempotency.max_result_size = '64kB';
SELECT r -> 'replayed' AS replayed, r -> 'row_count' AS row_count,
	   jsonb_array_length(r -> 'rows') AS rows
FROM idem_execute('rs-big',
	'INSERT INTO rs_t SELECT g, repeat(''x'', 100) FROM generate_series(1, 100) g RETURNING id, payload') AS r;
SELECT count(*) AS rs_t_rows FROM rs_t;
-- a stored result replays whatever the current limit: the limit guards
-- what is stored, not what was stored
SET idempotency.max_result_size = '1kB';
SELECT r -> 'replayed' AS replayed, jsonb_array_length(r -> 'rows') AS rows
FROM idem_execute('rs-big',
	'INSERT INTO rs_t SELECT g, repeat(''x'', 100) FROM generate_series(1, 100) g RETURNING id, payload') AS r;

-- the limit is inclusive: a result of exactly max_result_size bytes is
-- stored, one byte more is too large.  Measure a result first.
RESET idempotency.max_result_size;
SELECT idem_execute('rs-measure', 'SELECT repeat(''y'', 500) AS v') -> 'replayed' AS replayed;
SELECT pg_column_size(idem_lookup('rs-measure')) AS result_bytes \gset
SELECT idem_forget('rs-measure');
SET idempotency.max_result_size = :result_bytes;
SELECT idem_execute('rs-measure', 'SELECT repeat(''y'', 500) AS v') -> 'replayed' AS replayed;
SELECT idem_forget('rs-measure');
SELECT :result_bytes - 1 AS one_less \gset
SET idempotency.max_result_size = :one_less;
SELECT idem_execute('rs-measure', 'SELECT repeat(''y'', 500) AS v') -> 'replayed' AS replayed;
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'rs-measure';

-- the default (1MB) takes a 100 kB value, and replays it intact
RESET idempotency.max_result_size;
SHOW idempotency.max_result_size;
SELECT r -> 'replayed' AS replayed, length(r -> 'rows' -> 0 ->> 'payload') AS payload_length
FROM idem_execute('rs-100kb',
	'INSERT INTO rs_t VALUES ($1, $2) RETURNING id, payload', 1000, repeat('z', 100000)) AS r;
SELECT r -> 'replayed' AS replayed,
	   r -> 'rows' -> 0 ->> 'payload' = repeat('z', 100000) AS payload_intact
FROM idem_execute('rs-100kb',
	'INSERT INTO rs_t VALUES ($1, $2) RETURNING id, payload', 1000, repeat('z', 100000)) AS r;
SELECT length(idem_lookup('rs-100kb') -> 'rows' -> 0 ->> 'payload') AS stored_length;

-- but not a 2 MB value, nor a SELECT of many rows; nothing is recorded
SELECT rs_error($$SELECT idem_execute('rs-2mb',
	'INSERT INTO rs_t VALUES ($1, $2) RETURNING id, payload', 2000, repeat('z', 2000000))$$);
SELECT rs_error($$SELECT idem_execute('rs-many-rows',
	'SELECT g AS n FROM generate_series(1, 100000) g')$$);
SELECT count(*) AS rs_t_2000 FROM rs_t WHERE id = 2000;
SELECT key FROM idempotency_keys ORDER BY key;

-- inside a transaction, IK003 aborts it, undoing the statement's writes
SET idempotency.max_result_size = '1kB';
BEGIN;
SELECT idem_execute('rs-xact-small', 'INSERT INTO rs_t VALUES (3000, ''small'') RETURNING id') -> 'replayed' AS replayed;
SELECT idem_execute('rs-xact-big', 'UPDATE rs_t SET payload = payload RETURNING *');
COMMIT;
SELECT count(*) AS rs_t_3000 FROM rs_t WHERE id = 3000;
SELECT count(*) AS keys FROM idempotency_keys WHERE key LIKE 'rs-xact-%';
RESET idempotency.max_result_size;

-- clean up
DROP FUNCTION rs_error(text);
DROP TABLE rs_t;
DELETE FROM idempotency_keys;
