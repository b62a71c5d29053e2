-- The effective search_path that fingerprints hash is kept between calls;
-- a catalog change that changes it, with the search_path setting itself
-- unchanged, must make the same statement another request (IK001), never
-- a replay of the result stored before the change.
\set VERBOSITY terse
CREATE ROLE regress_fspc NOLOGIN;
GRANT CREATE ON DATABASE contrib_regression TO regress_fspc;
GRANT USAGE ON SCHEMA public TO regress_fspc;
SET ROLE regress_fspc;
SET search_path = "$user", public;

-- 1. "$user" names no schema yet: the path is public alone
SELECT idem_execute('fspc-user', 'SELECT 1 AS one') -> 'replayed' AS replayed;
SELECT idem_execute('fspc-user', 'SELECT 1 AS one') -> 'replayed' AS replayed;
-- the role's own schema appears: "$user" now resolves, another request
CREATE SCHEMA regress_fspc;
SELECT idem_execute('fspc-user', 'SELECT 1 AS one');
\echo :LAST_ERROR_SQLSTATE

-- 2. a schema in search_path without USAGE is skipped, until it is granted
RESET ROLE;
CREATE SCHEMA fspc_locked;
SET ROLE regress_fspc;
SET search_path = fspc_locked, public;
SELECT idem_execute('fspc-usage', 'SELECT 2 AS two') -> 'replayed' AS replayed;
RESET ROLE;
GRANT USAGE ON SCHEMA fspc_locked TO regress_fspc;
SET ROLE regress_fspc;
SELECT idem_execute('fspc-usage', 'SELECT 2 AS two');
\echo :LAST_ERROR_SQLSTATE

-- 3. the role is renamed: "$user" names another schema (none), with the
-- setting's text the same
SET search_path = "$user", public;
SELECT idem_execute('fspc-role', 'SELECT 3 AS three') -> 'replayed' AS replayed;
RESET ROLE;
ALTER ROLE regress_fspc RENAME TO regress_fspc2;
SET ROLE regress_fspc2;
SELECT idem_execute('fspc-role', 'SELECT 3 AS three');
\echo :LAST_ERROR_SQLSTATE

RESET ROLE;
RESET search_path;
DELETE FROM idempotency_keys WHERE owner = 'regress_fspc2'::regrole;
DROP SCHEMA regress_fspc, fspc_locked;
REVOKE ALL ON SCHEMA public FROM regress_fspc2;
REVOKE ALL ON DATABASE contrib_regression FROM regress_fspc2;
DROP ROLE regress_fspc2;
