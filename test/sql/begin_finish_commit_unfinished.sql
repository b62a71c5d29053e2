--
-- begin_finish_commit_unfinished: key, work and response commit or roll
-- back together.  A transaction that began a key and commits without
-- finishing it fails at COMMIT with a clear error and rolls back: a key is
-- never stored without its response.  PREPARE TRANSACTION likewise.  A
-- prepared transaction with a finished key keeps the claim until COMMIT
-- PREPARED or ROLLBACK PREPARED.  (The regression cluster runs with
-- max_prepared_transactions = 10.)
--
\set VERBOSITY terse
\pset null '(sql null)'
-- a claim that is wrongly kept must fail this file, not hang it
SET lock_timeout = '10s';

CREATE TABLE bfc_t (v text);

-- 1. COMMIT with a begun, unfinished key: an error, and the work is gone
BEGIN;
SELECT idem_begin('bfc-1', '{"n": 1}');
INSERT INTO bfc_t VALUES ('bfc-1');
COMMIT;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS rows FROM bfc_t;
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'bfc-1';
-- the key is free again: a retry claims it and can finish it
BEGIN;
SELECT idem_begin('bfc-1', '{"n": 1}') AS claimed_again;
INSERT INTO bfc_t VALUES ('bfc-1');
SELECT idem_finish('bfc-1', '"done"');
COMMIT;
SELECT idem_begin('bfc-1', '{"n": 1}') AS replayed;
SELECT count(*) AS rows FROM bfc_t;

-- 2. autocommit: a lone idem_begin claims and its implicit commit fails
SELECT idem_begin('bfc-autocommit');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'bfc-autocommit';

-- 3. one key finished and another not: the COMMIT fails and both go
BEGIN;
SELECT idem_begin('bfc-done');
SELECT idem_finish('bfc-done', '"done"');
SELECT idem_begin('bfc-pending');
INSERT INTO bfc_t VALUES ('bfc-3');
COMMIT;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS keys FROM idempotency_keys WHERE key IN ('bfc-done', 'bfc-pending');
SELECT count(*) AS rows FROM bfc_t WHERE v = 'bfc-3';

-- 4. a key begun in a savepoint that was released is still unfinished
BEGIN;
SAVEPOINT s;
SELECT idem_begin('bfc-released');
RELEASE s;
COMMIT;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'bfc-released';

-- 5. begun in a PL/pgSQL function that returns normally: still unfinished
CREATE FUNCTION bfc_only_begin(k text) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	RETURN idem_begin(k);
END $$;
BEGIN;
SELECT bfc_only_begin('bfc-in-function');
COMMIT;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'bfc-in-function';

-- a procedure that commits per request: each COMMIT checks its own keys;
-- the one that left key 4 unfinished fails and ends the CALL, the
-- requests committed before it stay
CREATE PROCEDURE bfc_requests(n int, unfinished int) LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..n LOOP
		IF idem_begin('bfc-proc-' || i) IS NULL AND i <> unfinished THEN
			INSERT INTO bfc_t VALUES ('bfc-proc-' || i);
			PERFORM idem_finish('bfc-proc-' || i, to_jsonb(i));
		END IF;
		COMMIT;
	END LOOP;
END $$;
CALL bfc_requests(5, 4);
\echo :LAST_ERROR_SQLSTATE
SELECT key, result FROM idempotency_keys WHERE key LIKE 'bfc-proc-%' ORDER BY key;
-- the retry of the whole batch does the missing requests only
CALL bfc_requests(5, 0);
SELECT v, count(*) FROM bfc_t WHERE v LIKE 'bfc-proc-%' GROUP BY v ORDER BY v;
DROP PROCEDURE bfc_requests(int, int);

-- 6. ROLLBACK with an unfinished key is fine, and so is COMMIT AND CHAIN
-- after idem_finish (the chained transaction holds no key)
BEGIN;
SELECT idem_begin('bfc-rollback');
ROLLBACK;
BEGIN;
SELECT idem_begin('bfc-chain');
SELECT idem_finish('bfc-chain', '"chained"');
COMMIT AND CHAIN;
SELECT idem_begin('bfc-chain') AS replayed_in_chained_xact;
COMMIT;

-- 7. PREPARE TRANSACTION with an unfinished key fails like COMMIT: the
-- transaction rolls back and nothing is prepared
BEGIN;
SELECT idem_begin('bfc-2pc-unfinished');
INSERT INTO bfc_t VALUES ('bfc-2pc-unfinished');
PREPARE TRANSACTION 'bfc-2pc-unfinished';
\echo :LAST_ERROR_SQLSTATE
SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'bfc-%';
-- (should one have been prepared, roll it back so that it cannot hold the
-- key for the rest of the run)
SELECT format('ROLLBACK PREPARED %L', gid) FROM pg_prepared_xacts
WHERE gid = 'bfc-2pc-unfinished' \gexec
SELECT count(*) AS rows FROM bfc_t WHERE v = 'bfc-2pc-unfinished';
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'bfc-2pc-unfinished';

-- 8. PREPARE TRANSACTION with a finished key, then COMMIT PREPARED: until
-- the COMMIT PREPARED the key is held (IK002 with idempotency.wait = off)
-- and has no visible response; afterwards it replays
BEGIN;
SELECT idem_begin('bfc-2pc-commit', '{"n": 8}');
INSERT INTO bfc_t VALUES ('bfc-2pc-commit');
SELECT idem_finish('bfc-2pc-commit', '{"status": 201}');
PREPARE TRANSACTION 'bfc-2pc-commit';
SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'bfc-%';
SET idempotency.wait = off;
SELECT idem_begin('bfc-2pc-commit', '{"n": 8}');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_execute('bfc-2pc-commit', 'SELECT 1 AS one');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_lookup('bfc-2pc-commit') AS lookup_before;
-- with waiting on, the wait is a lock wait: lock_timeout ends it (55P03)
SET idempotency.wait = on;
SET lock_timeout = '100ms';
SELECT idem_begin('bfc-2pc-commit', '{"n": 8}');
\echo :LAST_ERROR_SQLSTATE
SET lock_timeout = '10s';
SET idempotency.wait = off;
COMMIT PREPARED 'bfc-2pc-commit';
SELECT idem_begin('bfc-2pc-commit', '{"n": 8}') AS replayed;
SELECT idem_lookup('bfc-2pc-commit') AS lookup_after;
SELECT count(*) AS rows FROM bfc_t WHERE v = 'bfc-2pc-commit';

-- 9. the same, then ROLLBACK PREPARED: the key is held until then, and
-- afterwards free, with no effect left
BEGIN;
SELECT idem_begin('bfc-2pc-rollback');
INSERT INTO bfc_t VALUES ('bfc-2pc-rollback');
SELECT idem_finish('bfc-2pc-rollback', '{"status": 201}');
PREPARE TRANSACTION 'bfc-2pc-rollback';
SELECT idem_begin('bfc-2pc-rollback');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK PREPARED 'bfc-2pc-rollback';
SELECT count(*) AS rows FROM bfc_t WHERE v = 'bfc-2pc-rollback';
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'bfc-2pc-rollback';
BEGIN;
SELECT idem_begin('bfc-2pc-rollback') AS claimed_after_rollback_prepared;
ROLLBACK;
RESET idempotency.wait;

-- 10. a transaction whose idem_begin returned a stored response claimed
-- nothing: it prepares and commits like any other
BEGIN;
SELECT idem_begin('bfc-2pc-commit', '{"n": 8}') AS replayed;
PREPARE TRANSACTION 'bfc-2pc-replayed';
COMMIT PREPARED 'bfc-2pc-replayed';
SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'bfc-%';

SELECT key, result FROM idempotency_keys ORDER BY key;

-- (nothing is left prepared; if something were, it goes now)
SELECT format('ROLLBACK PREPARED %L', gid) FROM pg_prepared_xacts
WHERE gid LIKE 'bfc-%' \gexec
DROP FUNCTION bfc_only_begin(text);
DROP TABLE bfc_t;
DELETE FROM idempotency_keys;
