--
-- begin_finish_same_transaction: within one transaction, idem_begin again
-- before idem_finish returns NULL (the key is still this transaction's);
-- after idem_finish it returns the response.  idem_finish of a key this
-- transaction did not begin, or a second idem_finish, is an error (55000)
-- that records nothing.
--
\set VERBOSITY terse
\pset null '(sql null)'

CREATE TABLE bfs_t (v text);

-- 1. begin twice before finish: NULL both times; after finish: the response;
-- after COMMIT the key replays
BEGIN;
SELECT idem_begin('bfs-1', '{"n": 1}') AS first_begin;
INSERT INTO bfs_t VALUES ('bfs-1');
SELECT idem_begin('bfs-1', '{"n": 1}') AS second_begin;
SELECT idem_begin('bfs-1') AS without_request;
SELECT idem_finish('bfs-1', '{"status": 201}');
SELECT idem_begin('bfs-1', '{"n": 1}') AS after_finish;
SELECT idem_begin('bfs-1') AS after_finish_no_request;
COMMIT;
SELECT idem_begin('bfs-1', '{"n": 1}') AS after_commit;
SELECT count(*) AS rows FROM bfs_t;

-- 2. several keys in one transaction, each begun and finished
BEGIN;
SELECT idem_begin('bfs-a') AS a, idem_begin('bfs-b') AS b;
SELECT idem_finish('bfs-b', '"b"');
SELECT idem_begin('bfs-a') AS a_pending, idem_begin('bfs-b') AS b_finished;
SELECT idem_finish('bfs-a', '"a"');
COMMIT;
SELECT idem_begin('bfs-a') AS a, idem_begin('bfs-b') AS b;

-- 3. idem_finish of a key never begun: 55000, nothing recorded
SELECT idem_finish('bfs-never', '{"status": 201}');
\echo :LAST_ERROR_SQLSTATE
DO $$
BEGIN
	PERFORM idem_finish('bfs-never', '{"status": 201}');
EXCEPTION WHEN SQLSTATE '55000' THEN
	RAISE NOTICE 'SQLSTATE %', SQLSTATE;
END $$;
SELECT count(*) AS stored FROM idempotency_keys WHERE key = 'bfs-never';
-- the key is still free: a transaction can claim it
BEGIN;
SELECT idem_begin('bfs-never') AS still_free;
ROLLBACK;

-- 4. idem_finish of a key begun (and finished) by an earlier transaction:
-- 55000, and the stored response is unchanged
SELECT idem_finish('bfs-1', '{"status": 500}');
\echo :LAST_ERROR_SQLSTATE
SELECT result FROM idempotency_keys WHERE key = 'bfs-1';

-- 5. idem_finish after an idem_begin that replayed: the replay claimed
-- nothing, so 55000, and the stored response is unchanged
BEGIN;
SELECT idem_begin('bfs-1', '{"n": 1}') AS replayed;
SELECT idem_finish('bfs-1', '{"status": 500}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT result FROM idempotency_keys WHERE key = 'bfs-1';

-- 6. idem_finish of another key than the one begun: 55000
BEGIN;
SELECT idem_begin('bfs-mine');
SELECT idem_finish('bfs-other', '{}');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT count(*) AS stored FROM idempotency_keys WHERE key IN ('bfs-mine', 'bfs-other');

-- 7. a second idem_finish: 55000.  Caught in a savepoint, it records
-- nothing: the first response is the one that commits
BEGIN;
SELECT idem_begin('bfs-twice');
SELECT idem_finish('bfs-twice', '"first"');
SAVEPOINT before_second;
SELECT idem_finish('bfs-twice', '"second"');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO before_second;
SELECT idem_lookup('bfs-twice') AS in_xact;
COMMIT;
SELECT idem_begin('bfs-twice') AS after_commit;
-- and with the same response a second time: 55000 as well
BEGIN;
SELECT idem_begin('bfs-twice-same');
SELECT idem_finish('bfs-twice-same', '"same"');
SELECT idem_finish('bfs-twice-same', '"same"');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- uncaught, the error aborts the transaction: nothing is stored at all
BEGIN;
SELECT idem_begin('bfs-twice-abort');
INSERT INTO bfs_t VALUES ('bfs-twice-abort');
SELECT idem_finish('bfs-twice-abort', '"first"');
SELECT idem_finish('bfs-twice-abort', '"second"');
\echo :LAST_ERROR_SQLSTATE
COMMIT;
SELECT count(*) AS stored FROM idempotency_keys WHERE key LIKE 'bfs-twice-%';
SELECT count(*) AS rows FROM bfs_t WHERE v = 'bfs-twice-abort';

-- 8. a key begun by this transaction stays claimed across its statements
-- until the end: finish works after errors caught in savepoints taken
-- after the begin
BEGIN;
SELECT idem_begin('bfs-after-error');
SAVEPOINT s;
SELECT 1 / 0;
ROLLBACK TO s;
SELECT idem_begin('bfs-after-error') AS still_mine;
SELECT idem_finish('bfs-after-error', '"ok"');
COMMIT;
SELECT idem_begin('bfs-after-error') AS after_commit;

SELECT key, result FROM idempotency_keys ORDER BY key;

DROP TABLE bfs_t;
DELETE FROM idempotency_keys;
