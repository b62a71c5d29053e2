-- Keys belong to the role's OID and the idempotency.tenant (issue 8 item 3,
-- issue 9 tenant scope): a renamed role keeps its keys; a role dropped and
-- created again under the same name inherits nothing; idem_purge deletes
-- the keys of roles that no longer exist.  The key lock is taken on the
-- role's own OID (issue 8 item 1): another role's keys can never share it.
\set VERBOSITY terse
CREATE ROLE regress_rbo_first;
CREATE TABLE rbo_t (id int GENERATED ALWAYS AS IDENTITY, who name DEFAULT current_user);
GRANT INSERT, SELECT ON rbo_t TO PUBLIC;

SET ROLE regress_rbo_first;
SELECT idem_execute('rbo-1', 'INSERT INTO rbo_t DEFAULT VALUES RETURNING who') -> 'rows' AS rows;
RESET ROLE;

-- renamed: the same role, the same keys
ALTER ROLE regress_rbo_first RENAME TO regress_rbo_renamed;
SET ROLE regress_rbo_renamed;
SELECT idem_execute('rbo-1', 'INSERT INTO rbo_t DEFAULT VALUES RETURNING who') -> 'replayed' AS replayed;
SELECT idem_lookup('rbo-1') -> 'rows' AS lookup_rows;
RESET ROLE;

-- dropped, and a new role under the old name: none of the old keys
DROP ROLE regress_rbo_renamed;
CREATE ROLE regress_rbo_renamed;
SET ROLE regress_rbo_renamed;
SELECT idem_lookup('rbo-1') IS NULL AS nothing_inherited;
SELECT idem_forget('rbo-1') AS cannot_forget;
SELECT count(*) AS visible_keys FROM idempotency_keys;
SELECT idem_execute('rbo-1', 'INSERT INTO rbo_t DEFAULT VALUES RETURNING who') -> 'replayed' AS replayed;
RESET ROLE;

-- the dropped role's key is left with a dangling owner; idem_purge removes it
SELECT count(*) AS rbo_keys,
	   count(*) FILTER (WHERE NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = k.owner)) AS orphaned
  FROM idempotency_keys k WHERE key = 'rbo-1';
SELECT idem_purge() >= 1 AS purged;
SELECT owner, key FROM idempotency_keys WHERE key = 'rbo-1';

-- tenants: the same role and key in two tenants are two keys
SET ROLE regress_rbo_renamed;
SET idempotency.tenant = 'tenant-a';
SELECT idem_execute('rbo-t', 'INSERT INTO rbo_t DEFAULT VALUES RETURNING id') -> 'replayed' AS replayed;
SELECT idem_lookup('rbo-t') IS NOT NULL AS a_sees_it;
SET idempotency.tenant = 'tenant-b';
SELECT idem_lookup('rbo-t') IS NULL AS b_does_not;
SELECT idem_execute('rbo-t', 'INSERT INTO rbo_t DEFAULT VALUES RETURNING id') -> 'replayed' AS replayed;
SELECT idem_forget('rbo-t') AS b_forgets_its_own;
SET idempotency.tenant = 'tenant-a';
SELECT idem_lookup('rbo-t') IS NOT NULL AS a_still_has_it;
RESET idempotency.tenant;
SELECT idem_lookup('rbo-t') IS NULL AS default_tenant_does_not;
SELECT scope, key FROM idempotency_keys WHERE key = 'rbo-t';
RESET ROLE;
-- a tenant longer than 255 bytes is refused
SELECT set_config('idempotency.tenant', repeat('t', 256), false);
\echo :LAST_ERROR_SQLSTATE
RESET idempotency.tenant;

-- the key lock's tag: the role's OID in field 2 (pg_locks.classid), a hash
-- of tenant and key in field 3, and the role-key kind 0x4944 in field 4
SET ROLE regress_rbo_renamed;
SELECT (idem_execute('rbo-lock',
	'SELECT classid, objsubid FROM pg_locks WHERE locktype = ''advisory'' AND pid = pg_backend_pid()')
	-> 'rows' -> 0) = jsonb_build_object('classid', 'regress_rbo_renamed'::regrole::oid, 'objsubid', 18756)
	AS lock_on_own_role;
RESET ROLE;

SELECT who, count(*) FROM rbo_t GROUP BY who ORDER BY who;
DELETE FROM idempotency_keys WHERE owner = 'regress_rbo_renamed'::regrole;
DROP TABLE rbo_t;
DROP ROLE regress_rbo_renamed;
