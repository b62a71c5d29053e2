-- Keys beside their shard need Citus: without it, each of their functions
-- refuses with 0A000, stores nothing and runs nothing.
CREATE TABLE colo_nocitus (customer text PRIMARY KEY, amount numeric);
\set VERBOSITY terse
\set ON_ERROR_STOP 0
SELECT idem_colocate_keys('colo_nocitus');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_execute_colocated('colo_nocitus', 'cus_1'::text, 'colo-k1',
    'INSERT INTO colo_nocitus VALUES ($1, 1)', 'cus_1'::text);
\echo :LAST_ERROR_SQLSTATE
SELECT idem_execute_colocated('colo_nocitus', 'cus_1'::text, 'colo-k1', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_lookup_colocated('colo_nocitus', 'cus_1'::text, 'colo-k1');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_forget_colocated('colo_nocitus', 'cus_1'::text, 'colo-k1');
\echo :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP 1
-- nothing ran, nothing was stored, and no table was created
SELECT count(*) AS rows FROM colo_nocitus;
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'colo-k1';
SELECT count(*) AS colocated_tables FROM pg_class WHERE relname LIKE 'idempotency_keys_colocated%';
-- idem_purge has nothing of theirs to do
SELECT idem_purge() >= 0 AS purged;
DROP TABLE colo_nocitus;
