--
-- statement_errors: an error of the statement run under a key propagates
-- unchanged (its own SQLSTATE, message, detail and hint), the transaction
-- aborts as usual and no key is recorded, so a retry runs the statement
-- again.  Rolling back to a savepoint taken before the call forgets the
-- key together with the write.
--
\set VERBOSITY terse

CREATE TABLE se_parent (id int PRIMARY KEY);
INSERT INTO se_parent VALUES (1);
CREATE TABLE se_t (
	id		int PRIMARY KEY,
	qty		int NOT NULL CHECK (qty > 0),
	parent	int REFERENCES se_parent
);
INSERT INTO se_t VALUES (1, 1, 1);
CREATE FUNCTION se_fail(msg text) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'custom failure: %', msg
		USING ERRCODE = 'U0001', DETAIL = 'some detail', HINT = 'some hint';
END $$;
CREATE FUNCTION se_trig() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.qty = 13 THEN
		RAISE EXCEPTION 'unlucky quantity' USING ERRCODE = 'check_violation';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER se_t_trig BEFORE INSERT ON se_t FOR EACH ROW EXECUTE FUNCTION se_trig();

-- se_error(q) runs q and returns the error it raised: SQLSTATE | message |
-- detail | hint.  The same statement run directly and through idem_execute
-- must raise the same error.
CREATE FUNCTION se_error(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text; msg text; det text; hnt text;
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
	RETURN concat_ws(' | ', st, msg, nullif(det, ''), nullif(hnt, ''));
END $$;

CREATE TABLE se_cases (id int PRIMARY KEY, label text, q text);
INSERT INTO se_cases VALUES
	(1, 'unique violation', 'INSERT INTO se_t VALUES (1, 1, 1)'),
	(2, 'not-null violation', 'INSERT INTO se_t VALUES (2, NULL, 1)'),
	(3, 'check violation', 'INSERT INTO se_t VALUES (2, -1, 1)'),
	(4, 'foreign key violation', 'INSERT INTO se_t VALUES (2, 1, 99)'),
	(5, 'division by zero', 'SELECT 1 / 0 AS boom'),
	(6, 'bad input value', 'SELECT ''abc''::int AS boom'),
	(7, 'missing table', 'INSERT INTO se_no_such_table VALUES (1)'),
	(8, 'missing column', 'SELECT no_such_column FROM se_t'),
	(9, 'syntax error', 'SELEC 1'),
	(10, 'raised by a function', 'SELECT se_fail(''boom'')'),
	(11, 'raised by a trigger', 'INSERT INTO se_t VALUES (2, 13, 1)'),
	(12, 'error during an UPDATE', 'UPDATE se_t SET qty = 10 / (qty - 1)');

-- each error, direct and through idem_execute: identical
SELECT id, label, se_error(q) AS direct,
	   se_error(format('SELECT idem_execute(%L, %L)', 'se-' || id, q)) = se_error(q) AS same_through_idem_execute
FROM se_cases ORDER BY id;

-- at the top level, each error keeps its SQLSTATE ...
\set VERBOSITY sqlstate
SELECT idem_execute('se-1', 'INSERT INTO se_t VALUES (1, 1, 1)');
SELECT idem_execute('se-5', 'SELECT 1 / 0 AS boom');
SELECT idem_execute('se-7', 'INSERT INTO se_no_such_table VALUES (1)');
SELECT idem_execute('se-9', 'SELEC 1');
SELECT idem_execute('se-10', 'SELECT se_fail(''boom'')');
-- ... and its message, detail and hint
\set VERBOSITY default
SELECT idem_execute('se-1', 'INSERT INTO se_t VALUES (1, 1, 1)');
SELECT idem_execute('se-10', 'SELECT se_fail(''boom'')');
\set VERBOSITY terse

-- no key was recorded by any failed statement, and nothing was written
SELECT count(*) AS keys FROM idempotency_keys;
SELECT * FROM se_t ORDER BY id;

-- after an error, a retry runs the statement again: here it fails again,
-- then, once the cause is gone, it runs and records the key
SELECT idem_execute('se-retry', 'INSERT INTO se_t VALUES ($1, 1, $2) RETURNING id', 3, 2);
INSERT INTO se_parent VALUES (2);
SELECT idem_execute('se-retry', 'INSERT INTO se_t VALUES ($1, 1, $2) RETURNING id', 3, 2);
SELECT idem_execute('se-retry', 'INSERT INTO se_t VALUES ($1, 1, $2) RETURNING id', 3, 2);

-- a failed call inside an explicit transaction aborts it; the earlier
-- calls of the transaction are undone with it, keys included
BEGIN;
SELECT idem_execute('se-xact-a', 'INSERT INTO se_t VALUES ($1, 1, 1) RETURNING id', 4) -> 'replayed' AS replayed;
SELECT idem_execute('se-xact-b', 'INSERT INTO se_t VALUES ($1, 1, 1) RETURNING id', 1);
SELECT idem_execute('se-xact-c', 'SELECT 1 AS one');
ROLLBACK;
SELECT count(*) AS keys FROM idempotency_keys WHERE key LIKE 'se-xact-%';
SELECT count(*) AS id4_rows FROM se_t WHERE id = 4;
-- so a retry of the whole transaction runs again
BEGIN;
SELECT idem_execute('se-xact-a', 'INSERT INTO se_t VALUES ($1, 1, 1) RETURNING id', 4) -> 'replayed' AS replayed;
COMMIT;

-- an error after the call, in the same transaction, takes the key too:
-- the key is atomic with the write it protects
BEGIN;
SELECT idem_execute('se-later-error', 'INSERT INTO se_t VALUES ($1, 1, 1) RETURNING id', 5) -> 'replayed' AS replayed;
SELECT 1 / 0;
COMMIT;
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'se-later-error';
SELECT count(*) AS id5_rows FROM se_t WHERE id = 5;

-- savepoints: rolling back to a savepoint taken before the call forgets
-- the key with the write
BEGIN;
SAVEPOINT s;
SELECT idem_execute('se-savepoint', 'INSERT INTO se_t VALUES ($1, 1, 1) RETURNING id', 6) -> 'replayed' AS replayed;
SELECT idem_lookup('se-savepoint') IS NOT NULL AS key_live;
ROLLBACK TO SAVEPOINT s;
SELECT idem_lookup('se-savepoint') IS NULL AS key_gone,
	   (SELECT count(*) FROM se_t WHERE id = 6) AS id6_rows;
-- calling again runs again (replayed false) ...
SELECT idem_execute('se-savepoint', 'INSERT INTO se_t VALUES ($1, 1, 1) RETURNING id', 6) -> 'replayed' AS replayed;
-- ... and a savepoint taken after the call does not forget it
SAVEPOINT t;
SELECT idem_execute('se-savepoint', 'INSERT INTO se_t VALUES ($1, 1, 1) RETURNING id', 6) -> 'replayed' AS replayed;
ROLLBACK TO SAVEPOINT t;
SELECT idem_lookup('se-savepoint') IS NOT NULL AS key_live;
COMMIT;
SELECT idem_execute('se-savepoint', 'INSERT INTO se_t VALUES ($1, 1, 1) RETURNING id', 6) -> 'replayed' AS replayed;
SELECT count(*) AS id6_rows FROM se_t WHERE id = 6;

-- a statement error inside a savepoint: ROLLBACK TO recovers the
-- transaction, nothing of the call remains, the transaction goes on
BEGIN;
SAVEPOINT s;
SELECT idem_execute('se-sp-error', 'INSERT INTO se_t VALUES ($1, 1, 1)', 1);
ROLLBACK TO SAVEPOINT s;
SELECT idem_execute('se-sp-error', 'INSERT INTO se_t VALUES ($1, 1, 1)', 7) -> 'replayed' AS replayed;
COMMIT;
SELECT idem_lookup('se-sp-error');

-- a PL/pgSQL exception handler (a savepoint) catching the statement's
-- error: the handler sees the statement's own SQLSTATE, no key remains,
-- and the function can retry under the same key
DO $$
DECLARE
	r jsonb;
BEGIN
	BEGIN
		r := idem_execute('se-plpgsql', 'INSERT INTO se_t VALUES ($1, 1, 1) RETURNING id', 1);
	EXCEPTION WHEN unique_violation THEN
		RAISE NOTICE 'caught % (%), key present: %', SQLSTATE, SQLERRM,
			idem_lookup('se-plpgsql') IS NOT NULL;
	END;
	r := idem_execute('se-plpgsql', 'INSERT INTO se_t VALUES ($1, 1, 1) RETURNING id', 8);
	RAISE NOTICE 'retry with another request under the same key: %', r;
END $$;

-- the keys that were recorded: only successful calls that committed
SELECT key, result AS rows FROM idempotency_keys ORDER BY key;
SELECT id FROM se_t ORDER BY id;

-- clean up
DROP TABLE se_cases;
DROP TABLE se_t;
DROP TABLE se_parent;
DROP FUNCTION se_error(text);
DROP FUNCTION se_fail(text);
DROP FUNCTION se_trig();
DELETE FROM idempotency_keys;
