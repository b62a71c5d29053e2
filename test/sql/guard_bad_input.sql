--
-- guard_bad_input: idem_guard and idem_unguard refuse bad arguments with a
-- clear error and create nothing:
--   NULL tbl, key_column or on_duplicate           22004
--   on_duplicate other than 'skip' or 'error'      22023
--   ttl zero or negative                           22023
--   unknown key column                             42703
--   not a plain or partitioned table               42809
--   caller does not own the table                  42501
--   the table has a trigger of its own named
--   zz_idempotency_guard (the guard's name)        42710
-- and the guard trigger refuses keys longer than idempotency.max_key_length
-- (22023), rows whose key column is gone (42703), and being installed by hand
-- instead of through idem_guard: its guard id must be the one idem_guard
-- registered for the table in idempotency_guards (39P01).
-- (A partition guarded through its partitioned table, 55000, is in
-- guard_partitioned.)
--
-- Each error is shown twice: once terse (message) and once as SQLSTATE.
--
\set VERBOSITY terse

CREATE TABLE gbi_t (k text, n int);
CREATE TABLE gbi_guarded (k text, n int);
SELECT idem_guard('gbi_guarded', 'k');
INSERT INTO gbi_guarded VALUES ('g1', 1);

-- the state every failed call below must leave unchanged: every trigger
-- named zz_idempotency_guard or running idem_guard_trigger (table, name,
-- function, arguments), every key and every registered guard
CREATE FUNCTION gbi_state() RETURNS text LANGUAGE sql AS $$
	SELECT concat_ws(E'\n',
		(SELECT string_agg(format('%s %s %s %s', tgrelid::regclass, tgname,
								  tgfoid::regproc, encode(tgargs, 'escape')),
						   ', ' ORDER BY tgrelid::regclass::text, tgname)
		 FROM pg_trigger
		 WHERE tgname = 'zz_idempotency_guard'
			OR tgfoid = 'idem_guard_trigger'::regproc),
		(SELECT string_agg(format('%s %s %s', scope, key, expires_at), ', '
						   ORDER BY scope, key)
		 FROM idempotency_keys),
		(SELECT string_agg(format('%s %s', guard_id, tbl), ', ' ORDER BY guard_id)
		 FROM idempotency_guards))
$$;
CREATE TEMP TABLE gbi_before AS SELECT gbi_state() AS state;
CREATE FUNCTION gbi_unchanged() RETURNS boolean LANGUAGE sql AS $$
	SELECT gbi_state() = state FROM gbi_before
$$;

--
-- NULL arguments: 22004 (a NULL ttl is allowed: it means idempotency.ttl)
--
SELECT idem_guard(NULL, 'k');
SELECT idem_guard('gbi_t', NULL);
SELECT idem_guard('gbi_t', 'k', NULL, NULL);
SELECT idem_guard(NULL, NULL, NULL, NULL);
SELECT idem_unguard(NULL);
\set VERBOSITY sqlstate
SELECT idem_guard(NULL, 'k');
SELECT idem_guard('gbi_t', NULL);
SELECT idem_guard('gbi_t', 'k', NULL, NULL);
SELECT idem_unguard(NULL);
\set VERBOSITY terse
SELECT gbi_unchanged();

--
-- on_duplicate must be 'skip' or 'error': 22023
--
SELECT idem_guard('gbi_t', 'k', on_duplicate => 'x');
SELECT idem_guard('gbi_t', 'k', on_duplicate => '');
SELECT idem_guard('gbi_t', 'k', NULL, 'ignore');
\set VERBOSITY sqlstate
SELECT idem_guard('gbi_t', 'k', on_duplicate => 'x');
\set VERBOSITY terse
-- also when re-guarding: the guarded table keeps its settings
SELECT idem_guard('gbi_guarded', 'k', on_duplicate => 'x');
SELECT gbi_unchanged();

--
-- ttl must be positive: 22023
--
SELECT idem_guard('gbi_t', 'k', interval '0 seconds');
SELECT idem_guard('gbi_t', 'k', interval '-1 hour');
-- positive parts, negative in total
SELECT idem_guard('gbi_t', 'k', interval '1 day -25 hours');
\set VERBOSITY sqlstate
SELECT idem_guard('gbi_t', 'k', interval '0 seconds');
SELECT idem_guard('gbi_t', 'k', interval '-1 hour');
\set VERBOSITY terse
SELECT idem_guard('gbi_guarded', 'k', interval '-1 second');
SELECT gbi_unchanged();

--
-- the key column must exist: 42703; the name is taken as is (not folded),
-- system columns do not count, dropped columns are gone
--
ALTER TABLE gbi_t ADD COLUMN gone text;
ALTER TABLE gbi_t DROP COLUMN gone;
SELECT idem_guard('gbi_t', 'nosuch');
SELECT idem_guard('gbi_t', 'K');
SELECT idem_guard('gbi_t', 'ctid');
SELECT idem_guard('gbi_t', 'gone');
SELECT idem_guard('gbi_t', '');
\set VERBOSITY sqlstate
SELECT idem_guard('gbi_t', 'nosuch');
SELECT idem_guard('gbi_t', 'ctid');
\set VERBOSITY terse
SELECT gbi_unchanged();

--
-- unknown tables are refused by the regclass input already: 42P01
--
SELECT idem_guard('gbi_nosuch', 'k');
SELECT idem_unguard('gbi_nosuch');
\set VERBOSITY sqlstate
SELECT idem_guard('gbi_nosuch', 'k');
\set VERBOSITY terse

--
-- plain and partitioned tables only: 42809 for everything else
--
CREATE VIEW gbi_view AS SELECT * FROM gbi_t;
CREATE MATERIALIZED VIEW gbi_matview AS SELECT * FROM gbi_t;
CREATE SEQUENCE gbi_seq;
CREATE INDEX gbi_index ON gbi_t (k);
CREATE TYPE gbi_type AS (k text);
CREATE FOREIGN DATA WRAPPER regress_guard_fdw;
CREATE SERVER regress_guard_server FOREIGN DATA WRAPPER regress_guard_fdw;
CREATE FOREIGN TABLE gbi_foreign (k text) SERVER regress_guard_server;
SELECT idem_guard('gbi_view', 'k');
SELECT idem_guard('gbi_matview', 'k');
SELECT idem_guard('gbi_seq', 'last_value');
SELECT idem_guard('gbi_index', 'k');
SELECT idem_guard('gbi_type', 'k');
SELECT idem_guard('gbi_foreign', 'k');
SELECT idem_guard('pg_class', 'relname');
SELECT idem_unguard('gbi_view');
SELECT idem_unguard('gbi_seq');
SELECT idem_unguard('gbi_foreign');
\set VERBOSITY sqlstate
SELECT idem_guard('gbi_view', 'k');
SELECT idem_guard('gbi_seq', 'last_value');
SELECT idem_guard('gbi_index', 'k');
SELECT idem_guard('gbi_foreign', 'k');
SELECT idem_unguard('gbi_view');
\set VERBOSITY terse
-- a view's INSTEAD OF trigger slot stays free too
SELECT count(*) AS view_triggers FROM pg_trigger WHERE tgrelid = 'gbi_view'::regclass;
SELECT gbi_unchanged();

--
-- only the table's owner may guard or unguard it: 42501, even with every
-- privilege on the table
--
CREATE ROLE regress_guard_other;
GRANT ALL ON gbi_t, gbi_guarded TO regress_guard_other;
SET ROLE regress_guard_other;
SELECT idem_guard('gbi_t', 'k');
SELECT idem_unguard('gbi_guarded');
-- nor replace the settings of a guard
SELECT idem_guard('gbi_guarded', 'k', on_duplicate => 'error');
\set VERBOSITY sqlstate
SELECT idem_guard('gbi_t', 'k');
SELECT idem_unguard('gbi_guarded');
\set VERBOSITY terse
-- the guard still works for this role: a duplicate is skipped
INSERT INTO gbi_guarded VALUES ('g1', 2);
\echo inserted :ROW_COUNT
RESET ROLE;
SELECT gbi_unchanged();

--
-- a trigger of the table's own that happens to be named zz_idempotency_guard
-- is not replaced or dropped: 42710, for idem_guard and idem_unguard alike
--
SELECT state AS state_before_own FROM gbi_before \gset
CREATE TABLE gbi_own (k text, n int);
CREATE FUNCTION gbi_count_n() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.n := coalesce(NEW.n, 0) + 1;
	RETURN NEW;
END $$;
CREATE TRIGGER zz_idempotency_guard BEFORE INSERT ON gbi_own
	FOR EACH ROW EXECUTE FUNCTION gbi_count_n();
-- the state now includes that trigger
UPDATE gbi_before SET state = gbi_state();
SELECT idem_guard('gbi_own', 'k');
SELECT idem_unguard('gbi_own');
\set VERBOSITY default
SELECT idem_guard('gbi_own', 'k');
SELECT idem_unguard('gbi_own');
\set VERBOSITY sqlstate
SELECT idem_guard('gbi_own', 'k');
SELECT idem_unguard('gbi_own');
\set VERBOSITY terse
-- also with every argument given, and for a superuser (this session)
SELECT idem_guard('gbi_own', 'k', interval '1 hour', 'error');
-- nothing changed: the table's own trigger is still there and still its own,
-- nothing was registered for the table and no key recorded
SELECT tgname, tgfoid::regproc, tgnargs FROM pg_trigger
WHERE tgrelid = 'gbi_own'::regclass;
SELECT count(*) AS registered FROM idempotency_guards WHERE tbl = 'gbi_own'::regclass;
SELECT gbi_unchanged();
-- and it still works as its owner wrote it: no deduplication
INSERT INTO gbi_own (k) VALUES ('d'), ('d');
\echo inserted :ROW_COUNT
SELECT k, n FROM gbi_own;
-- once it is renamed, the table can be guarded; both triggers fire
ALTER TRIGGER zz_idempotency_guard ON gbi_own RENAME TO count_n;
SELECT idem_guard('gbi_own', 'k');
SELECT tgname, tgfoid::regproc FROM pg_trigger
WHERE tgrelid = 'gbi_own'::regclass ORDER BY tgname;
INSERT INTO gbi_own (k) VALUES ('e'), ('e'), ('d');
\echo inserted :ROW_COUNT
SELECT k, n FROM gbi_own ORDER BY k, n;
SELECT idem_unguard('gbi_own');
DROP TABLE gbi_own;
DROP FUNCTION gbi_count_n();
-- back to the state before this case: the guard left nothing behind
UPDATE gbi_before SET state = :'state_before_own';
SELECT gbi_unchanged();

--
-- the guard trigger cannot be installed by hand: pointing a trigger at
-- another table's guard id would read and fill that table's keys
--
CREATE SCHEMA gbi_other AUTHORIZATION regress_guard_other;
SELECT guard_id AS victim_id FROM idempotency_guards
WHERE tbl = 'gbi_guarded'::regclass \gset
SET ROLE regress_guard_other;
CREATE TABLE gbi_other.mine (k text);
-- trigger arguments are public: another role can read the guard id there
SELECT split_part(encode(tgargs, 'escape'), '\000', 1) = :'victim_id' AS id_readable
FROM pg_trigger WHERE tgrelid = 'gbi_guarded'::regclass AND tgname = 'zz_idempotency_guard';
-- and copies it
SELECT format('CREATE TRIGGER forged BEFORE INSERT ON gbi_other.mine FOR EACH ROW'
			  ' EXECUTE FUNCTION idem_guard_trigger(%L, %L, %L, %L)',
			  :'victim_id', 'k', '', 'skip') AS forge \gset
:forge;
-- inserting fails: the guard id is not registered for this table
INSERT INTO gbi_other.mine VALUES ('g1');
INSERT INTO gbi_other.mine VALUES ('probe');
\set VERBOSITY sqlstate
INSERT INTO gbi_other.mine VALUES ('g1');
\set VERBOSITY terse
-- same with the guard's own trigger name
DROP TRIGGER forged ON gbi_other.mine;
SELECT replace(:'forge', 'forged', 'zz_idempotency_guard') AS forge \gset
:forge;
INSERT INTO gbi_other.mine VALUES ('probe');
-- and idem_guard does not adopt the copied id: guarding the table replaces
-- the forged trigger with a guard of its own, registered for the table
SELECT idem_guard('gbi_other.mine', 'k');
SELECT guard_id <> :'victim_id' AS own_guard_id,
	   guard_id = (SELECT split_part(encode(tgargs, 'escape'), '\000', 1)
				   FROM pg_trigger WHERE tgrelid = 'gbi_other.mine'::regclass
				   AND tgname = 'zz_idempotency_guard') AS trigger_has_own_id
FROM idempotency_guards WHERE tbl = 'gbi_other.mine'::regclass;
SELECT count(*) AS guard_triggers FROM pg_trigger
WHERE tgrelid = 'gbi_other.mine'::regclass;
INSERT INTO gbi_other.mine VALUES ('g1');
\echo inserted :ROW_COUNT
SELECT count(*) AS rows FROM gbi_other.mine;
SELECT idem_unguard('gbi_other.mine');
RESET ROLE;
-- the victim's keys are as they were: no 'probe'
SELECT key FROM idempotency_keys WHERE scope = :'victim_id' ORDER BY key;
-- a made-up guard id fails the same way, even for a superuser
CREATE TRIGGER made_up BEFORE INSERT ON gbi_t FOR EACH ROW
	EXECUTE FUNCTION idem_guard_trigger('00000000-0000-4000-8000-000000000000', 'k', '', 'skip');
INSERT INTO gbi_t VALUES ('x');
DROP TRIGGER made_up ON gbi_t;
-- wrong number of arguments, wrong timing or level, direct call
CREATE TRIGGER no_args BEFORE INSERT ON gbi_t FOR EACH ROW
	EXECUTE FUNCTION idem_guard_trigger();
INSERT INTO gbi_t VALUES ('x');
DROP TRIGGER no_args ON gbi_t;
CREATE TRIGGER after_row AFTER INSERT ON gbi_t FOR EACH ROW
	EXECUTE FUNCTION idem_guard_trigger(:'victim_id', 'k', '', 'skip');
INSERT INTO gbi_t VALUES ('x');
DROP TRIGGER after_row ON gbi_t;
CREATE TRIGGER before_stmt BEFORE INSERT ON gbi_t FOR EACH STATEMENT
	EXECUTE FUNCTION idem_guard_trigger(:'victim_id', 'k', '', 'skip');
INSERT INTO gbi_t VALUES ('x');
DROP TRIGGER before_stmt ON gbi_t;
CREATE TRIGGER on_update BEFORE UPDATE ON gbi_guarded FOR EACH ROW
	EXECUTE FUNCTION idem_guard_trigger(:'victim_id', 'k', '', 'skip');
UPDATE gbi_guarded SET n = n + 1;
DROP TRIGGER on_update ON gbi_guarded;
SELECT idem_guard_trigger();
SELECT count(*) AS gbi_t_rows FROM gbi_t;
SELECT gbi_unchanged();

--
-- keys longer than idempotency.max_key_length bytes: 22023, nothing goes in
--
SET idempotency.max_key_length = 10;
-- exactly 10 bytes is fine
INSERT INTO gbi_guarded VALUES ('abcdefghij', 1);
\echo inserted :ROW_COUNT
INSERT INTO gbi_guarded VALUES ('abcdefghijk', 1);
-- bytes, not characters: 6 two-byte characters are 12 bytes
INSERT INTO gbi_guarded VALUES (repeat(U&'\00E9', 6), 1);
\set VERBOSITY sqlstate
INSERT INTO gbi_guarded VALUES ('abcdefghijk', 1);
\set VERBOSITY default
INSERT INTO gbi_guarded VALUES ('abcdefghijk', 1);
\set VERBOSITY terse
-- one long key fails the whole statement, COPY included
INSERT INTO gbi_guarded VALUES ('ok1', 1), ('abcdefghijk', 2);
COPY gbi_guarded FROM stdin;
ok2	1
abcdefghijk	2
\.
RESET idempotency.max_key_length;
SELECT k FROM gbi_guarded ORDER BY k;
SELECT key FROM idempotency_keys WHERE scope = :'victim_id' ORDER BY key;
-- the same key goes in once the limit allows it
INSERT INTO gbi_guarded VALUES ('abcdefghijk', 1);
\echo inserted :ROW_COUNT

--
-- renaming or dropping the key column: inserts fail (42703) instead of
-- letting duplicates in, until the table is guarded again
--
ALTER TABLE gbi_guarded RENAME COLUMN k TO k2;
INSERT INTO gbi_guarded VALUES ('g1', 3);
\set VERBOSITY sqlstate
INSERT INTO gbi_guarded VALUES ('g1', 3);
\set VERBOSITY terse
SELECT idem_guard('gbi_guarded', 'k2');
-- the keys were kept: g1 is still a duplicate
INSERT INTO gbi_guarded VALUES ('g1', 3);
\echo inserted :ROW_COUNT
ALTER TABLE gbi_guarded DROP COLUMN k2;
INSERT INTO gbi_guarded VALUES (4);
SELECT count(*) AS rows FROM gbi_guarded;

-- clean up
SELECT idem_unguard('gbi_guarded');
DROP SCHEMA gbi_other CASCADE;
DROP FOREIGN TABLE gbi_foreign;
DROP SERVER regress_guard_server;
DROP FOREIGN DATA WRAPPER regress_guard_fdw;
DROP VIEW gbi_view;
DROP MATERIALIZED VIEW gbi_matview;
DROP SEQUENCE gbi_seq;
DROP TYPE gbi_type;
DROP TABLE gbi_t, gbi_guarded;
DROP FUNCTION gbi_unchanged(), gbi_state();
DROP ROLE regress_guard_other;
DELETE FROM idempotency_keys;
