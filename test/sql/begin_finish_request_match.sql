--
-- begin_finish_request_match: a retry with the same key and a different
-- request is IK001, naming the key, and changes nothing.  Two requests that
-- are equal as jsonb are the same request: key order, whitespace and the
-- spelling of equal numbers (1.0 and 1) do not matter.  A NULL request on
-- either side skips the check.  A key used by idem_execute and then by
-- idem_begin, or the other way round, is a different request (IK001).
--
\set VERBOSITY terse
\pset null '(sql null)'

-- store one finished request key with the given request and response
CREATE FUNCTION bfm_store(k text, req jsonb, resp jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	IF idem_begin(k, req) IS NOT NULL THEN
		RAISE EXCEPTION 'key % was already finished', k;
	END IF;
	RETURN idem_finish(k, resp);
END $$;
CREATE TABLE bfm_t (v text);

-- 1. key order and whitespace do not matter
SELECT bfm_store('bfm-order', '{"a": 1, "b": {"x": [1, 2], "y": "s"}}', '{"status": 201}');
SELECT idem_begin('bfm-order', '{"b":{"y":"s","x":[1,2]},"a":1}') AS reordered;
SELECT idem_begin('bfm-order', E'{\n  "b" : { "y" : "s" , "x" : [ 1 , 2 ] } ,\n\t"a" : 1\n}') AS whitespace;

-- 2. numbers equal as jsonb are the same request: 1.0 and 1, 1.50 and
-- 1.5, 1e2 and 100, -0 and 0
SELECT bfm_store('bfm-num', '{"amount": 1.0, "price": 1.50, "big": 1e2, "z": -0}', '"ok"');
SELECT idem_begin('bfm-num', '{"amount": 1, "price": 1.5, "big": 100, "z": 0}') AS equal_numbers;
SELECT '{"amount": 1.0, "price": 1.50, "big": 1e2, "z": -0}'::jsonb
	 = '{"amount": 1, "price": 1.5, "big": 100, "z": 0}'::jsonb AS jsonb_says_equal;
-- and the other way round: stored with 1, retried with 1.000
SELECT bfm_store('bfm-num-2', '[1, 2.5]', '"ok2"');
SELECT idem_begin('bfm-num-2', '[1.000, 2.50]') AS equal_numbers;

-- 3. a duplicate object key keeps its last value in jsonb: equal to the
-- object with that value only
SELECT bfm_store('bfm-dup', '{"a": 1, "a": 2}', '"dup"');
SELECT idem_begin('bfm-dup', '{"a": 2}') AS same_as_last_value;

-- 4. a different request is IK001, naming the key: another value, a
-- string instead of a number, another array order, an extra member, the
-- same values nested differently
SELECT idem_begin('bfm-order', '{"a": 2, "b": {"x": [1, 2], "y": "s"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_begin('bfm-order', '{"a": "1", "b": {"x": [1, 2], "y": "s"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_begin('bfm-order', '{"a": 1, "b": {"x": [2, 1], "y": "s"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_begin('bfm-order', '{"a": 1, "b": {"x": [1, 2], "y": "s"}, "c": null}');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_begin('bfm-order', '{"a": 1, "b": {"x": [1, 2]}, "y": "s"}');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_begin('bfm-num', '{"amount": 1.01, "price": 1.5, "big": 100, "z": 0}');
\echo :LAST_ERROR_SQLSTATE
-- JSON null is a request too, different from an object
SELECT idem_begin('bfm-order', 'null');
\echo :LAST_ERROR_SQLSTATE
-- the SQLSTATE, caught in PL/pgSQL
DO $$
BEGIN
	PERFORM idem_begin('bfm-order', '{"a": 2}');
EXCEPTION WHEN SQLSTATE 'IK001' THEN
	RAISE NOTICE 'SQLSTATE %', SQLSTATE;
END $$;
-- the mismatch changed nothing: the response is the first one's, and the
-- matching request still replays it
SELECT key, result FROM idempotency_keys WHERE key = 'bfm-order';
SELECT idem_begin('bfm-order', '{"a": 1, "b": {"x": [1, 2], "y": "s"}}') AS still_replays;

-- 5. NULL on either side skips the check.  Stored with a NULL request: a
-- retry with any request replays
SELECT bfm_store('bfm-null-stored', NULL, '{"status": 200}');
SELECT idem_begin('bfm-null-stored', '{"anything": true}') AS any_request;
SELECT idem_begin('bfm-null-stored', 'null') AS json_null_request;
SELECT idem_begin('bfm-null-stored') AS null_request;
-- stored with a request: a retry with a NULL request replays
SELECT bfm_store('bfm-req-stored', '{"body": "x"}', '{"status": 201}');
SELECT idem_begin('bfm-req-stored', NULL) AS null_request;
SELECT idem_begin('bfm-req-stored') AS default_request;
-- a SQL NULL request is not JSON null: stored with JSON null, a retry with
-- an object is IK001, with SQL NULL it replays
SELECT bfm_store('bfm-json-null-req', 'null', '"n"');
SELECT idem_begin('bfm-json-null-req', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_begin('bfm-json-null-req', NULL) AS sql_null_request;

-- 6. an idem_execute key, then idem_begin with the same key: IK001, with a
-- request or without one; the statement's stored result is untouched
SELECT idem_execute('bfm-exec-first', 'INSERT INTO bfm_t VALUES ($1) RETURNING v', 'x');
SELECT idem_begin('bfm-exec-first', '{"v": "x"}');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_begin('bfm-exec-first');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_execute('bfm-exec-first', 'INSERT INTO bfm_t VALUES ($1) RETURNING v', 'x') -> 'replayed' AS replayed;

-- 7. an idem_begin key, then idem_execute with the same key: IK001, whether
-- the request key was stored with a request or with NULL; nothing runs
SELECT bfm_store('bfm-begin-first', '{"v": "y"}', '{"status": 201}');
SELECT idem_execute('bfm-begin-first', 'INSERT INTO bfm_t VALUES ($1) RETURNING v', 'y');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_execute('bfm-null-stored', 'INSERT INTO bfm_t VALUES ($1) RETURNING v', 'y');
\echo :LAST_ERROR_SQLSTATE
SELECT v, count(*) FROM bfm_t GROUP BY v ORDER BY v;
SELECT idem_begin('bfm-begin-first', '{"v": "y"}') AS still_replays;

-- 8. the same in one transaction: a key this transaction claimed with
-- idem_begin is not idem_execute's, and the other way round
BEGIN;
SELECT idem_begin('bfm-xact-begin');
SELECT idem_execute('bfm-xact-begin', 'SELECT 1 AS one');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
SELECT idem_execute('bfm-xact-exec', 'SELECT 1 AS one') -> 'replayed' AS replayed;
SELECT idem_begin('bfm-xact-exec');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT count(*) AS stored FROM idempotency_keys WHERE key IN ('bfm-xact-begin', 'bfm-xact-exec');

-- 9. a different request for a key claimed but not yet finished in this
-- transaction is IK001 too
BEGIN;
SELECT idem_begin('bfm-pending', '{"n": 1}');
SELECT idem_begin('bfm-pending', '{"n": 2}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

SELECT key FROM idempotency_keys ORDER BY key;

DROP FUNCTION bfm_store(text, jsonb, jsonb);
DROP TABLE bfm_t;
DELETE FROM idempotency_keys;
