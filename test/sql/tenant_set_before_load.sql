--
-- tenant_set_before_load: a pooled application's first statement on a
-- fresh server connection sets idempotency.tenant before the library is
-- loaded (the setting is then a placeholder).  The tenant still applies to
-- the first call, and SET LOCAL still ends with the transaction.  A tenant
-- the setting refuses (longer than 255 bytes) must never turn into the
-- default tenant, whose keys every other such user shares: the call either
-- fails or keeps the key under that tenant.
--
\set VERBOSITY terse

-- 1. SET LOCAL in a fresh session, before any call: the first call's key
-- is under that tenant; after COMMIT the tenant is the default again
BEGIN;
SET LOCAL idempotency.tenant = 'early-bird';
SELECT idem_execute('tbl-1', 'SELECT 1 AS one') -> 'replayed' AS replayed;
SHOW idempotency.tenant;
COMMIT;
SHOW idempotency.tenant;
SELECT scope, key FROM idempotency_keys ORDER BY key;
-- the default tenant has no such key: the same call runs for it
SELECT idem_execute('tbl-1', 'SELECT 1 AS one') -> 'replayed' AS replayed;

-- 2. the same with set_config, as PostgREST's pre-request function does,
-- in another fresh session
\c
\set VERBOSITY terse
BEGIN;
SELECT set_config('idempotency.tenant', 'user-7', true) AS tenant;
SELECT idem_begin('tbl-2') IS NULL AS claimed;
SELECT idem_finish('tbl-2', '"for user-7"');
COMMIT;
SELECT scope, key FROM idempotency_keys WHERE key = 'tbl-2';

-- 3. a tenant longer than 255 bytes set before the library is loaded, in a
-- fresh session: whatever the call does (an error, or a key under that
-- tenant), it must not store the key under the default tenant ''
\c
\set VERBOSITY terse
CREATE TEMP TABLE tbl_outcome (outcome text);
SET client_min_messages = error;
SELECT length(set_config('idempotency.tenant', repeat('u', 256), false)) AS tenant_bytes;
DO $$
BEGIN
	PERFORM idem_execute('tbl-long', 'SELECT 1 AS one');
	INSERT INTO tbl_outcome VALUES ('stored');
EXCEPTION WHEN OTHERS THEN
	INSERT INTO tbl_outcome VALUES ('refused ' || SQLSTATE);
END $$;
RESET client_min_messages;
SELECT outcome IN ('stored', 'refused 22023') AS expected_outcome FROM tbl_outcome;
SELECT count(*) AS under_default_tenant FROM idempotency_keys
WHERE key = 'tbl-long' AND scope = '';
RESET idempotency.tenant;

DELETE FROM idempotency_keys;
