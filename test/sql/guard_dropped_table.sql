-- Dropping a guarded table forgets its guard: the registry row and the
-- guard's keys go with it (sql_drop event trigger), so no later table can
-- inherit them.  Other guards are untouched.
CREATE ROLE regress_gdt_owner;
GRANT CREATE ON SCHEMA public TO regress_gdt_owner;
SET ROLE regress_gdt_owner;
CREATE TABLE gdt_doomed (k int);
CREATE TABLE gdt_kept (k int);
SELECT idem_guard('gdt_doomed', 'k');
SELECT idem_guard('gdt_kept', 'k');
INSERT INTO gdt_doomed VALUES (1), (2), (2);
INSERT INTO gdt_kept VALUES (1);
RESET ROLE;

-- two guards, three keys
SELECT tbl, (SELECT count(*) FROM idempotency_keys k
			 WHERE k.scope = g.guard_id) AS keys
FROM idempotency_guards g ORDER BY tbl::text;

-- an ordinary owner drops its table: its guard and keys are forgotten
SET ROLE regress_gdt_owner;
DROP TABLE gdt_doomed;
RESET ROLE;
SELECT tbl, (SELECT count(*) FROM idempotency_keys k
			 WHERE k.scope = g.guard_id) AS keys
FROM idempotency_guards g ORDER BY tbl::text;
SELECT count(*) AS keys_left FROM idempotency_keys;

-- a new table of the same name starts with a new guard and no keys
SET ROLE regress_gdt_owner;
CREATE TABLE gdt_doomed (k int);
SELECT idem_guard('gdt_doomed', 'k');
INSERT INTO gdt_doomed VALUES (1), (2) RETURNING k;
RESET ROLE;

-- DROP SCHEMA ... CASCADE forgets the guards of the tables it drops
CREATE SCHEMA gdt_schema;
CREATE TABLE gdt_schema.t (k int);
SELECT idem_guard('gdt_schema.t', 'k');
INSERT INTO gdt_schema.t VALUES (7);
\set VERBOSITY terse
DROP SCHEMA gdt_schema CASCADE;
\set VERBOSITY default
SELECT tbl FROM idempotency_guards ORDER BY tbl::text;

-- so does DROP OWNED
DROP OWNED BY regress_gdt_owner;
SELECT count(*) AS guards, (SELECT count(*) FROM idempotency_keys) AS keys
FROM idempotency_guards;

-- an unrelated DROP TABLE does nothing to guards
CREATE TABLE gdt_plain (k int);
CREATE TABLE gdt_guarded (k int);
SELECT idem_guard('gdt_guarded', 'k');
INSERT INTO gdt_guarded VALUES (1);
DROP TABLE gdt_plain;
SELECT tbl, (SELECT count(*) FROM idempotency_keys) AS keys FROM idempotency_guards;

DROP TABLE gdt_guarded;
DROP ROLE regress_gdt_owner;
SELECT count(*) AS guards, (SELECT count(*) FROM idempotency_keys) AS keys
FROM idempotency_guards;
