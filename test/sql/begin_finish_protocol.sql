-- idem_begin / idem_finish in one session (the core's own proof; the broad
-- suite is begin_finish*): claim, work, finish; same-transaction begin
-- before and after finish; request equality as jsonb; NULL request skips
-- the check; execute and begin keys are different requests; finish errors;
-- unfinished commit; savepoints; JSON null response.
\set VERBOSITY terse
CREATE TABLE bfp_orders (id int GENERATED ALWAYS AS IDENTITY, sku int);

-- begin, work, begin again (NULL: still ours), a different request (IK001)
BEGIN;
SELECT idem_begin('bfp-1', '{"b": 1.0, "a": [1, 2]}') IS NULL AS claimed;
INSERT INTO bfp_orders(sku) VALUES (7);
SELECT idem_begin('bfp-1', '{"a": [1, 2], "b": 1}') IS NULL AS still_ours;
SELECT idem_lookup('bfp-1') IS NULL AS unfinished_lookup;
SELECT idem_begin('bfp-1', '{"a": 2}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- idem_execute of a key this transaction began: IK001
BEGIN;
SELECT idem_begin('bfp-1') IS NULL AS claimed;
SELECT idem_execute('bfp-1', 'SELECT 1 AS one');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- finish twice: 55000, recording nothing more
BEGIN;
SELECT idem_begin('bfp-1', '{"b": 1.0, "a": [1, 2]}') IS NULL AS claimed;
INSERT INTO bfp_orders(sku) VALUES (7);
SELECT idem_finish('bfp-1', '{"status": 201}');
SELECT idem_begin('bfp-1', '{"a": [1, 2], "b": 1}') AS after_finish;
SELECT idem_lookup('bfp-1') AS lookup_finished;
SELECT idem_finish('bfp-1', '{"status": 500}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
SELECT idem_begin('bfp-1', '{"b": 1.0, "a": [1, 2]}') IS NULL AS claimed;
INSERT INTO bfp_orders(sku) VALUES (7);
SELECT idem_finish('bfp-1', '{"status": 201}');
COMMIT;
-- retries: equal request, NULL request, another request, idem_execute
SELECT idem_begin('bfp-1', '{"a": [1, 2.00], "b": 1}') AS retry;
SELECT idem_begin('bfp-1') AS retry_null_request;
SELECT idem_begin('bfp-1', '{"a": [2, 1], "b": 1}');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_execute('bfp-1', 'SELECT 1 AS one');
\echo :LAST_ERROR_SQLSTATE
SELECT get_byte(fingerprint, 0) AS version, length(fingerprint) AS fp_len, result
  FROM idempotency_keys WHERE key = 'bfp-1';
SELECT count(*) AS orders FROM bfp_orders;
-- an execute key is another request to idem_begin
SELECT idem_execute('bfp-x', 'SELECT 1 AS one') ->> 'replayed' AS replayed;
SELECT idem_begin('bfp-x');
\echo :LAST_ERROR_SQLSTATE

-- a 1.0 idem_execute fingerprint (32 bytes) that happens to start with 0x03
-- is not a request key, not even to a NULL request
INSERT INTO idempotency_keys (owner, scope, key, fingerprint, result, expires_at)
VALUES (current_user::regrole, '', 'bfp-1.0', '\x03'::bytea || substr(sha256('x'), 2),
		'{"rows": []}', now() + interval '1 day');
SELECT idem_begin('bfp-1.0');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_forget('bfp-1.0') AS forgotten;

-- bad input
SELECT idem_finish('bfp-1', '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_finish('bfp-2', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT idem_finish(NULL, '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_begin(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT idem_begin('');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_begin(repeat('k', 256));
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SET LOCAL idempotency.max_result_size = 10;
SELECT idem_begin('bfp-big') IS NULL AS claimed;
SELECT idem_finish('bfp-big', '{"body": "far too long to store"}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- a commit with a begun, unfinished key fails and rolls back the work
BEGIN;
SELECT idem_begin('bfp-3') IS NULL AS claimed;
INSERT INTO bfp_orders(sku) VALUES (3);
COMMIT;
\echo :LAST_ERROR_SQLSTATE
SELECT idem_lookup('bfp-3') IS NULL AS nothing_stored,
	   (SELECT count(*) FROM bfp_orders WHERE sku = 3) AS no_work;

-- so does PREPARE TRANSACTION (before it looks at max_prepared_transactions)
BEGIN;
SELECT idem_begin('bfp-3') IS NULL AS claimed;
PREPARE TRANSACTION 'bfp_unfinished';
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS prepared FROM pg_prepared_xacts WHERE gid = 'bfp_unfinished';

-- ROLLBACK TO SAVEPOINT before idem_begin forgets the claim
BEGIN;
SAVEPOINT s;
SELECT idem_begin('bfp-4') IS NULL AS claimed;
ROLLBACK TO SAVEPOINT s;
SELECT idem_finish('bfp-4', '{}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- ... before idem_finish un-finishes it: the commit then fails
BEGIN;
SELECT idem_begin('bfp-4') IS NULL AS claimed;
SAVEPOINT s;
SELECT idem_finish('bfp-4', 'null');
ROLLBACK TO SAVEPOINT s;
COMMIT;
\echo :LAST_ERROR_SQLSTATE
-- a finish inside a released savepoint counts; JSON null is a response
BEGIN;
SELECT idem_begin('bfp-4') IS NULL AS claimed;
SAVEPOINT s;
SELECT idem_finish('bfp-4', 'null');
RELEASE SAVEPOINT s;
COMMIT;
SELECT idem_begin('bfp-4') IS NULL AS sql_null, idem_begin('bfp-4') = 'null'::jsonb AS json_null;

-- a read-only transaction cannot begin a new key, but replays a finished one
BEGIN READ ONLY;
SELECT idem_begin('bfp-ro');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN READ ONLY;
SELECT idem_begin('bfp-1') AS read_only_replay;
COMMIT;

-- forget works on request keys as on any key: bfp-4 is claimable again
-- (alone in autocommit, the implicit commit then fails: no idem_finish)
SELECT idem_forget('bfp-4') AS forgotten;
SELECT idem_begin('bfp-4') IS NULL AS claimable_again;
\echo :LAST_ERROR_SQLSTATE

-- idem_begin of a key idem_execute is running (its statement calls
-- idem_begin): the key is idem_execute's, another request: IK001 at once,
-- nothing stored, where it used to claim the key and fail later at finish
BEGIN;
SELECT idem_execute('bfp-nested', 'SELECT idem_begin(''bfp-nested'') AS b');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT count(*) AS nested_rows FROM idempotency_keys WHERE key = 'bfp-nested';

SELECT count(*) FILTER (WHERE idem_forget(k)) AS forgotten
  FROM (VALUES ('bfp-1'), ('bfp-x')) AS v(k);
DROP TABLE bfp_orders;
