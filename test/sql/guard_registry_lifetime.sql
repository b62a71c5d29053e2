--
-- guard_registry_lifetime: a guard's registry row and keys never outlive
-- its table, whatever makes the table go, so that no later table (one that
-- gets the same OID) inherits them:
--   - every command that drops a guarded table forgets its guard, not only
--     DROP TABLE, DROP SCHEMA and DROP OWNED: DROP TYPE ... CASCADE of a
--     typed table's type, DROP ACCESS METHOD ... CASCADE;
--   - temporary tables, which vanish at session end or ON COMMIT DROP with
--     no command at all, cannot be guarded (0A000);
--   - a registry row whose table has no guard trigger of ours is stale:
--     idem_guard forgets its keys and starts a new guard.
-- (OID reuse itself is simulated in test/t/guard_oid_reuse.pl.)
--
\set VERBOSITY terse

-- guards and their key counts, by table (a guard's keys are in scope
-- 'guard:<id>' in 1.0's keys table, scope '<id>' in 1.1's)
CREATE FUNCTION grl_guards() RETURNS TABLE (tbl text, keys bigint)
LANGUAGE sql AS $$
	SELECT g.tbl::text, (SELECT count(*) FROM idempotency_keys k
						 WHERE k.scope IN (g.guard_id, 'guard:' || g.guard_id))
	FROM idempotency_guards g ORDER BY 1
$$;

--
-- DROP TYPE ... CASCADE drops the typed tables of the type
--
CREATE TYPE grl_row AS (k int, note text);
CREATE TABLE grl_typed OF grl_row;
SELECT idem_guard('grl_typed', 'k');
INSERT INTO grl_typed VALUES (1, 'a'), (2, 'b');
SELECT * FROM grl_guards();
DROP TYPE grl_row CASCADE;
SELECT * FROM grl_guards();
SELECT count(*) AS keys_left FROM idempotency_keys;

--
-- DROP ACCESS METHOD ... CASCADE drops the tables using it
--
CREATE ACCESS METHOD grl_am TYPE TABLE HANDLER heap_tableam_handler;
CREATE TABLE grl_am_t (k int) USING grl_am;
SELECT idem_guard('grl_am_t', 'k');
INSERT INTO grl_am_t VALUES (1);
SELECT * FROM grl_guards();
DROP ACCESS METHOD grl_am CASCADE;
SELECT * FROM grl_guards();
SELECT count(*) AS keys_left FROM idempotency_keys;

--
-- a drop under session_replication_role = replica (replication and
-- migration tools) forgets the guard too
--
CREATE TABLE grl_replica (k int);
SELECT idem_guard('grl_replica', 'k');
INSERT INTO grl_replica VALUES (1);
SET session_replication_role = replica;
DROP TABLE grl_replica;
RESET session_replication_role;
SELECT * FROM grl_guards();
SELECT count(*) AS keys_left FROM idempotency_keys;

--
-- temporary tables cannot be guarded: 0A000, and nothing is recorded
--
CREATE TEMP TABLE grl_temp (k int);
SELECT idem_guard('grl_temp', 'k');
\set VERBOSITY sqlstate
SELECT idem_guard('grl_temp', 'k');
\set VERBOSITY terse
BEGIN;
CREATE TEMP TABLE grl_temp_xact (k int) ON COMMIT DROP;
SELECT idem_guard('grl_temp_xact', 'k');
ROLLBACK;
-- nor can a partitioned temporary table
CREATE TEMP TABLE grl_temp_parted (k int) PARTITION BY RANGE (k);
SELECT idem_guard('grl_temp_parted', 'k');
SELECT count(*) AS triggers FROM pg_trigger
WHERE tgrelid IN ('grl_temp'::regclass, 'grl_temp_parted'::regclass);
SELECT * FROM grl_guards();
-- idem_unguard of a temporary table just says it is not guarded
SELECT idem_unguard('grl_temp');
DROP TABLE grl_temp, grl_temp_parted;

--
-- a registry row without our trigger on its table is stale: guarding the
-- table again starts a new guard with no keys
--
CREATE TABLE grl_stale (k int);
SELECT idem_guard('grl_stale', 'k');
INSERT INTO grl_stale VALUES (1), (2);
SELECT guard_id AS old_guard FROM idempotency_guards
WHERE tbl = 'grl_stale'::regclass \gset
DROP TRIGGER zz_idempotency_guard ON grl_stale;
SELECT * FROM grl_guards();
SELECT idem_guard('grl_stale', 'k');
SELECT guard_id <> :'old_guard' AS new_guard_id FROM idempotency_guards
WHERE tbl = 'grl_stale'::regclass;
SELECT count(*) AS old_guard_keys FROM idempotency_keys
WHERE scope IN (:'old_guard', 'guard:' || :'old_guard');
-- the keys 1 and 2 are new to the new guard
INSERT INTO grl_stale VALUES (1), (2), (2) RETURNING k;
SELECT * FROM grl_guards();
-- while guarding a guarded table again keeps its guard and keys
SELECT guard_id AS cur_guard FROM idempotency_guards
WHERE tbl = 'grl_stale'::regclass \gset
SELECT idem_guard('grl_stale', 'k', on_duplicate => 'error');
SELECT guard_id = :'cur_guard' AS same_guard_id FROM idempotency_guards
WHERE tbl = 'grl_stale'::regclass;
INSERT INTO grl_stale VALUES (1);
SELECT * FROM grl_guards();

-- clean up
DROP TABLE grl_stale;
DROP FUNCTION grl_guards();
SELECT count(*) AS guards, (SELECT count(*) FROM idempotency_keys) AS keys
FROM idempotency_guards;
