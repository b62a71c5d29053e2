--
-- begin_finish_savepoint: a rollback, an error, or ROLLBACK TO SAVEPOINT
-- taken before idem_begin forgets the claim, with the work and the
-- response; the transaction can then commit (it holds no unfinished key)
-- and the key is free.  A savepoint taken after idem_begin leaves the claim
-- in place.
--
\set VERBOSITY terse
\pset null '(sql null)'
SET lock_timeout = '10s';

CREATE TABLE bsp_t (v text);

-- 1. ROLLBACK TO a savepoint taken before idem_begin, with the key
-- unfinished: the claim is forgotten, COMMIT succeeds, nothing is stored
BEGIN;
INSERT INTO bsp_t VALUES ('kept-1');
SAVEPOINT s;
SELECT idem_begin('bsp-1', '{"n": 1}');
INSERT INTO bsp_t VALUES ('bsp-1');
ROLLBACK TO s;
-- the claim is gone: finishing it now is 55000 (caught, to go on)
SAVEPOINT t;
SELECT idem_finish('bsp-1', '"late"');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO t;
COMMIT;
SELECT v FROM bsp_t ORDER BY v;
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'bsp-1';

-- 2. the same with the key finished: the response goes with the work
BEGIN;
SAVEPOINT s;
SELECT idem_begin('bsp-2');
INSERT INTO bsp_t VALUES ('bsp-2');
SELECT idem_finish('bsp-2', '"two"');
ROLLBACK TO s;
SELECT idem_lookup('bsp-2') AS lookup_after_rollback_to;
COMMIT;
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'bsp-2';
SELECT count(*) AS rows FROM bsp_t WHERE v = 'bsp-2';

-- 3. after ROLLBACK TO, the same transaction can claim the key again and
-- finish it: that response is the one stored
BEGIN;
SAVEPOINT s;
SELECT idem_begin('bsp-3');
SELECT idem_finish('bsp-3', '"discarded"');
ROLLBACK TO s;
SELECT idem_begin('bsp-3') AS claimed_again;
INSERT INTO bsp_t VALUES ('bsp-3');
SELECT idem_finish('bsp-3', '"kept"');
COMMIT;
SELECT idem_begin('bsp-3') AS replayed;

-- 4. a savepoint taken after idem_begin: rolling back to it keeps the
-- claim; the key is finished and stored with the work that remained
BEGIN;
SELECT idem_begin('bsp-4');
INSERT INTO bsp_t VALUES ('bsp-4 kept');
SAVEPOINT s;
INSERT INTO bsp_t VALUES ('bsp-4 undone');
ROLLBACK TO s;
SELECT idem_begin('bsp-4') AS still_mine;
SELECT idem_finish('bsp-4', '"four"');
COMMIT;
SELECT idem_begin('bsp-4') AS replayed;
SELECT v FROM bsp_t WHERE v LIKE 'bsp-4%' ORDER BY v;
-- and with the key left unfinished after such a rollback, COMMIT fails
BEGIN;
SELECT idem_begin('bsp-4b');
SAVEPOINT s;
ROLLBACK TO s;
COMMIT;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'bsp-4b';

-- and a savepoint taken after idem_begin but before idem_finish: rolling
-- back to it undoes the finish, not the claim; the key can be finished
-- again, and is unfinished at COMMIT if it is not
BEGIN;
SELECT idem_begin('bsp-4c') IS NULL AS claimed;
SAVEPOINT s;
SELECT idem_finish('bsp-4c', '"undone"');
ROLLBACK TO s;
SELECT idem_lookup('bsp-4c') AS lookup_after_rollback_to;
SELECT idem_begin('bsp-4c') AS still_mine;
SELECT idem_finish('bsp-4c', '"again"');
COMMIT;
SELECT idem_begin('bsp-4c') AS replayed;
BEGIN;
SELECT idem_begin('bsp-4d') IS NULL AS claimed;
SAVEPOINT s;
SELECT idem_finish('bsp-4d', '"undone"');
ROLLBACK TO s;
COMMIT;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'bsp-4d';

-- 5. a savepoint taken before idem_begin and released: the claim stays,
-- and the finished key commits
BEGIN;
SAVEPOINT s;
SELECT idem_begin('bsp-5');
SELECT idem_finish('bsp-5', '"five"');
RELEASE s;
COMMIT;
SELECT idem_begin('bsp-5') AS replayed;

-- 6. an error rolls back the transaction: no key, no work; the retry
-- claims the key and runs
BEGIN;
SELECT idem_begin('bsp-6');
INSERT INTO bsp_t VALUES ('bsp-6');
SELECT 1 / 0;
SELECT idem_finish('bsp-6', '"six"');
COMMIT;
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'bsp-6';
SELECT count(*) AS rows FROM bsp_t WHERE v = 'bsp-6';
BEGIN;
SELECT idem_begin('bsp-6') AS retry_claims;
INSERT INTO bsp_t VALUES ('bsp-6');
SELECT idem_finish('bsp-6', '"six"');
COMMIT;
SELECT count(*) AS rows FROM bsp_t WHERE v = 'bsp-6';

-- 7. an error after idem_finish rolls the response back too
BEGIN;
SELECT idem_begin('bsp-7');
SELECT idem_finish('bsp-7', '"seven"');
SELECT 1 / 0;
COMMIT;
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'bsp-7';

-- 8. an error caught by a PL/pgSQL exception block (a subtransaction)
-- forgets a claim made inside the block: the outer transaction commits
BEGIN;
DO $$
BEGIN
	PERFORM idem_begin('bsp-8');
	INSERT INTO bsp_t VALUES ('bsp-8');
	RAISE EXCEPTION 'handler failed';
EXCEPTION WHEN raise_exception THEN
	RAISE NOTICE 'caught: %', SQLERRM;
END $$;
COMMIT;
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'bsp-8';
SELECT count(*) AS rows FROM bsp_t WHERE v = 'bsp-8';

SELECT key, result FROM idempotency_keys ORDER BY key;

DROP TABLE bsp_t;
DELETE FROM idempotency_keys;
