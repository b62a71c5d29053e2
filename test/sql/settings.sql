--
-- settings: the four idempotency.* settings, their defaults, units and
-- bounds, and the reserved "idempotency." prefix.
--   idempotency.ttl              24h  how long a key stays live
--   idempotency.max_key_length   255  bytes
--   idempotency.max_result_size  1MB  largest stored result
--   idempotency.wait             on   wait for a concurrent holder, or IK002
--
\set VERBOSITY terse

-- the settings exist once the library is loaded (by the first call of one
-- of the extension's functions, or explicitly)
LOAD 'idempotency';

-- defaults, units, bounds; every setting can be changed by any user
SELECT name, setting, unit, boot_val, min_val, max_val, vartype, context
FROM pg_settings WHERE name LIKE 'idempotency.%' ORDER BY name;

-- SHOW of each default
SHOW idempotency.ttl;
SHOW idempotency.max_key_length;
SHOW idempotency.max_result_size;
SHOW idempotency.wait;
-- 1d is 24 hours; 1MB is 1048576 bytes
SELECT current_setting('idempotency.ttl') = '1d' AS ttl_24h,
	   (SELECT setting::int FROM pg_settings WHERE name = 'idempotency.ttl') = 24 * 60 * 60 AS ttl_seconds,
	   (SELECT setting::int FROM pg_settings WHERE name = 'idempotency.max_result_size') = 1024 * 1024 AS one_mb;

-- ttl takes time units; a plain number is seconds
SET idempotency.ttl = '1h';
SHOW idempotency.ttl;
SET idempotency.ttl = '90min';
SHOW idempotency.ttl;
SET idempotency.ttl = '2d';
SHOW idempotency.ttl;
SET idempotency.ttl = 3600;
SHOW idempotency.ttl;
SET idempotency.ttl = '1s';
SHOW idempotency.ttl;
-- bounds: at least 1 second
SET idempotency.ttl = 0;
SET idempotency.ttl = '-1h';
SET idempotency.ttl = 'forever';
SHOW idempotency.ttl;
RESET idempotency.ttl;
SHOW idempotency.ttl;

-- max_key_length takes byte units; 1 .. 2048 bytes
SET idempotency.max_key_length = 10;
SHOW idempotency.max_key_length;
SET idempotency.max_key_length = '1kB';
SHOW idempotency.max_key_length;
SET idempotency.max_key_length = '2kB';
SHOW idempotency.max_key_length;
SET idempotency.max_key_length = 1;
SHOW idempotency.max_key_length;
SET idempotency.max_key_length = 0;
SET idempotency.max_key_length = 2049;
SET idempotency.max_key_length = '1MB';
RESET idempotency.max_key_length;
SHOW idempotency.max_key_length;

-- max_result_size takes byte units
SET idempotency.max_result_size = '64kB';
SHOW idempotency.max_result_size;
SET idempotency.max_result_size = '10MB';
SHOW idempotency.max_result_size;
SET idempotency.max_result_size = 1000;
SHOW idempotency.max_result_size;
SET idempotency.max_result_size = -1;
SET idempotency.max_result_size = '1GB';
RESET idempotency.max_result_size;
SHOW idempotency.max_result_size;

-- wait is a boolean
SET idempotency.wait = off;
SHOW idempotency.wait;
SET idempotency.wait = 'maybe';
RESET idempotency.wait;
SHOW idempotency.wait;
-- with wait off, a key held by this very transaction is not "another
-- transaction in flight": the second call in the transaction replays
SET idempotency.wait = off;
BEGIN;
SELECT idem_execute('set-wait-off', 'SELECT 1 AS one') -> 'replayed' AS replayed;
SELECT idem_execute('set-wait-off', 'SELECT 1 AS one') -> 'replayed' AS replayed;
COMMIT;
SELECT idem_execute('set-wait-off', 'SELECT 1 AS one') -> 'replayed' AS replayed;
RESET idempotency.wait;

-- the prefix is reserved: unknown idempotency.* names are rejected (42602)
\set VERBOSITY sqlstate
SET idempotency.unknown = 1;
\set VERBOSITY default
SET idempotency.unknown = 1;
\set VERBOSITY terse
SET idempotency.max_key_lenght = 10;
SELECT set_config('idempotency.ttl_seconds', '10', false);
SHOW idempotency.unknown;

-- SET LOCAL lasts until the end of the transaction
BEGIN;
SET LOCAL idempotency.ttl = '5min';
SHOW idempotency.ttl;
SELECT idem_execute('set-local', 'SELECT 1 AS one') -> 'replayed' AS replayed;
COMMIT;
SHOW idempotency.ttl;
SELECT expires_at - created_at = interval '5 minutes' AS ttl_5min
FROM idempotency_keys WHERE key = 'set-local';

-- an ordinary role may change every setting, for its session or its role
CREATE ROLE regress_idem_settings;
SET ROLE regress_idem_settings;
SET idempotency.ttl = '1h';
SET idempotency.max_key_length = 64;
SET idempotency.max_result_size = '64kB';
SET idempotency.wait = off;
SELECT current_setting('idempotency.ttl') AS ttl,
	   current_setting('idempotency.max_key_length') AS max_key_length,
	   current_setting('idempotency.max_result_size') AS max_result_size,
	   current_setting('idempotency.wait') AS wait;
RESET ALL;
RESET ROLE;
ALTER ROLE regress_idem_settings SET idempotency.ttl = '15min';
SELECT unnest(setconfig) AS role_setting FROM pg_db_role_setting
WHERE setrole = 'regress_idem_settings'::regrole;
ALTER ROLE regress_idem_settings SET idempotency.unknown = 1;
DROP ROLE regress_idem_settings;

-- clean up
DELETE FROM idempotency_keys;
