--
-- tenant_too_long_refused: a tenant longer than 255 bytes never becomes the
-- default tenant.  Set in a session before the library is loaded (a
-- placeholder, as a pooled application's first SET LOCAL or PostgREST's
-- set_config on a fresh server connection), or by ALTER ROLE ... SET, it
-- reaches the first call unchecked: the call fails with 22023 and stores
-- nothing, rather than run under tenant '' whose keys every such user shares.
--
\set VERBOSITY terse

-- 1. SET LOCAL before the library is loaded (fresh session): the first
-- idem_execute fails with 22023 and stores nothing, under any tenant
\c
\set VERBOSITY terse
BEGIN;
SET LOCAL idempotency.tenant = 'uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu';
SELECT length(current_setting('idempotency.tenant')) AS tenant_bytes;
SELECT idem_execute('ttlr-1', 'SELECT 1 AS one');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT count(*) AS stored FROM idempotency_keys WHERE key = 'ttlr-1';

-- 2. set_config before the library is loaded, then idem_begin, idem_lookup
-- and idem_forget: each fails with 22023
\c
\set VERBOSITY terse
SELECT length(set_config('idempotency.tenant', repeat('v', 256), false)) AS tenant_bytes;
SELECT idem_begin('ttlr-2');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_lookup('ttlr-2');
\echo :LAST_ERROR_SQLSTATE
SELECT idem_forget('ttlr-2');
\echo :LAST_ERROR_SQLSTATE
-- the library is loaded now: a SET of a too-long tenant fails at once
SET idempotency.tenant = 'ok';
\set VERBOSITY sqlstate
SELECT set_config('idempotency.tenant', repeat('w', 256), false);
\set VERBOSITY terse
SHOW idempotency.tenant;
-- 255 bytes is the longest tenant: it works
SELECT set_config('idempotency.tenant', repeat('x', 255), false) IS NOT NULL AS set;
SELECT idem_execute('ttlr-3', 'SELECT 1 AS one') -> 'replayed' AS replayed;
SELECT length(scope) AS scope_bytes FROM idempotency_keys WHERE key = 'ttlr-3';
RESET idempotency.tenant;

-- 3. ALTER ROLE ... SET: refused at once while the library is loaded; set
-- before it is (fresh session), the role's next sessions start with the
-- long tenant and their calls fail with 22023 (a guarded insert does not
-- use the tenant and still works)
\set VERBOSITY sqlstate
ALTER ROLE CURRENT_USER IN DATABASE :"DBNAME" SET idempotency.tenant = 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy';
\c
\set VERBOSITY terse
ALTER ROLE CURRENT_USER IN DATABASE :"DBNAME" SET idempotency.tenant = 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy';
\c
\set VERBOSITY terse
SELECT length(current_setting('idempotency.tenant')) AS tenant_bytes;
SELECT idem_execute('ttlr-4', 'SELECT 1 AS one');
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE ttlr_events (event_id text);
SELECT idem_guard('ttlr_events', 'event_id');
INSERT INTO ttlr_events VALUES ('e1'), ('e1');
SELECT count(*) AS events FROM ttlr_events;
SELECT idem_unguard('ttlr_events');
DROP TABLE ttlr_events;
ALTER ROLE CURRENT_USER IN DATABASE :"DBNAME" RESET idempotency.tenant;
\c
\set VERBOSITY terse

-- nothing was stored under the default tenant, nor under any other
SELECT count(*) AS stored FROM idempotency_keys WHERE key LIKE 'ttlr-%' AND key <> 'ttlr-3';

DELETE FROM idempotency_keys WHERE key LIKE 'ttlr-%';
