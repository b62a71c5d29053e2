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

CREATE TABLE bfp_t (v text);

-- 1. ROLLBACK TO a savepoint taken before idem_begin, with the key
-- unfinished: the claim is forgotten, COMMIT succeeds, nothing is stored
BEGIN;
INSERT INTO bfp_t VALUES ('kept-1');
SAVEPOINT s;
SELECT idem_begin('bfp-1', '{"n": 1}');
INSERT INTO bfp_t VALUES ('bfp-1');
ROLLBACK TO s;
-- the claim is gone: finishing it now is 55000 (caught, to go on)
SAVEPOINT t;
SELECT idem_finish('bfp-1', '"late"');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO t;
COMMIT;
SELECT v FROM bfp_t ORDER BY v;
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'bfp-1';

-- 2. the same with the key finished: the response goes with the work
BEGIN;
SAVEPOINT s;
SELECT idem_begin('bfp-2');
INSERT INTO bfp_t VALUES ('bfp-2');
SELECT idem_finish('bfp-2', '"two"');
ROLLBACK TO s;
SELECT idem_lookup('bfp-2') AS lookup_after_rollback_to;
COMMIT;
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'bfp-2';
SELECT count(*) AS rows FROM bfp_t WHERE v = 'bfp-2';

-- 3. after ROLLBACK TO, the same transaction can claim the key again and
-- finish it: that response is the one stored
BEGIN;
SAVEPOINT s;
SELECT idem_begin('bfp-3');
SELECT idem_finish('bfp-3', '"discarded"');
ROLLBACK TO s;
SELECT idem_begin('bfp-3') AS claimed_again;
INSERT INTO bfp_t VALUES ('bfp-3');
SELECT idem_finish('bfp-3', '"kept"');
COMMIT;
SELECT idem_begin('bfp-3') AS replayed;

-- 4. a savepoint taken after idem_begin: rolling back to it keeps the
-- claim; the key is finished and stored with the work that remained
BEGIN;
SELECT idem_begin('bfp-4');
INSERT INTO bfp_t VALUES ('bfp-4 kept');
SAVEPOINT s;
INSERT INTO bfp_t VALUES ('bfp-4 undone');
ROLLBACK TO s;
SELECT idem_begin('bfp-4') AS still_mine;
SELECT idem_finish('bfp-4', '"four"');
COMMIT;
SELECT idem_begin('bfp-4') AS replayed;
SELECT v FROM bfp_t WHERE v LIKE 'bfp-4%' ORDER BY v;
-- and with the key left unfinished after such a rollback, COMMIT fails
BEGIN;
SELECT idem_begin('bfp-4b');
SAVEPOINT s;
ROLLBACK TO s;
COMMIT;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'bfp-4b';

-- 5. a savepoint taken before idem_begin and released: the claim stays,
-- and the finished key commits
BEGIN;
SAVEPOINT s;
SELECT idem_begin('bfp-5');
SELECT idem_finish('bfp-5', '"five"');
RELEASE s;
COMMIT;
SELECT idem_begin('bfp-5') AS replayed;

-- 6. an error rolls back the transaction: no key, no work; the retry
-- claims the key and runs
BEGIN;
SELECT idem_begin('bfp-6');
INSERT INTO bfp_t VALUES ('bfp-6');
SELECT 1 / 0;
SELECT idem_finish('bfp-6', '"six"');
COMMIT;
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'bfp-6';
SELECT count(*) AS rows FROM bfp_t WHERE v = 'bfp-6';
BEGIN;
SELECT idem_begin('bfp-6') AS retry_claims;
INSERT INTO bfp_t VALUES ('bfp-6');
SELECT idem_finish('bfp-6', '"six"');
COMMIT;
SELECT count(*) AS rows FROM bfp_t WHERE v = 'bfp-6';

-- 7. an error after idem_finish rolls the response back too
BEGIN;
SELECT idem_begin('bfp-7');
SELECT idem_finish('bfp-7', '"seven"');
SELECT 1 / 0;
COMMIT;
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'bfp-7';

-- 8. an error caught by a PL/pgSQL exception block (a subtransaction)
-- forgets a claim made inside the block: the outer transaction commits
BEGIN;
DO $$
BEGIN
	PERFORM idem_begin('bfp-8');
	INSERT INTO bfp_t VALUES ('bfp-8');
	RAISE EXCEPTION 'handler failed';
EXCEPTION WHEN raise_exception THEN
	RAISE NOTICE 'caught: %', SQLERRM;
END $$;
COMMIT;
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'bfp-8';
SELECT count(*) AS rows FROM bfp_t WHERE v = 'bfp-8';

SELECT key, result FROM idempotency_keys ORDER BY key;

DROP TABLE bfp_t;
DELETE FROM idempotency_keys;
