--
-- duplicate_column_names: a stored row is a JSON object, one value per
-- name, so a statement whose output has two columns of the same name
-- (RETURNING o.id, l.id) is refused with 42712 before it runs, instead of
-- silently storing one of them.  Nothing is written and no key is stored;
-- aliases make the same statement work.
--
\set VERBOSITY terse

CREATE TABLE dcn_orders (id int PRIMARY KEY, total int);
CREATE TABLE dcn_lines (id int PRIMARY KEY, order_id int REFERENCES dcn_orders, qty int);
INSERT INTO dcn_orders VALUES (1, 10);
INSERT INTO dcn_lines VALUES (11, 1, 1), (12, 1, 2);

-- the join's two id columns
SELECT idem_execute('dcn-1', 'UPDATE dcn_lines l SET qty = qty + 1 FROM dcn_orders o WHERE l.order_id = o.id RETURNING o.id, l.id');
\set VERBOSITY sqlstate
SELECT idem_execute('dcn-1', 'UPDATE dcn_lines l SET qty = qty + 1 FROM dcn_orders o WHERE l.order_id = o.id RETURNING o.id, l.id');
\set VERBOSITY terse
-- nothing was updated, no key stored
SELECT id, qty FROM dcn_lines ORDER BY id;
SELECT count(*) AS keys FROM idempotency_keys;

-- the full message, detail and hint
\set VERBOSITY default
SELECT idem_execute('dcn-1', 'UPDATE dcn_lines l SET qty = qty + 1 FROM dcn_orders o WHERE l.order_id = o.id RETURNING o.id, l.id');
\set VERBOSITY terse

-- other ways to get two columns of one name
SELECT idem_execute('dcn-2', 'SELECT 1 AS a, 2 AS a');
SELECT idem_execute('dcn-3', 'SELECT 1, 2');
SELECT idem_execute('dcn-4', 'SELECT * FROM dcn_orders o JOIN dcn_lines l ON l.order_id = o.id');
SELECT idem_execute('dcn-5', 'INSERT INTO dcn_orders VALUES (2, 20) RETURNING id, total AS id');
SELECT count(*) AS orders FROM dcn_orders;
SELECT count(*) AS keys FROM idempotency_keys;

-- a column whose row values have two fields of one name: a subquery's
-- row, an array of them, and a function's record whose row type only the
-- values tell
SELECT idem_execute('dcn-7', 'SELECT s FROM (SELECT 1 AS a, 2 AS a) s');
SELECT idem_execute('dcn-8', 'SELECT ARRAY[s] AS arr FROM (SELECT 1 AS a, 2 AS a) s');
SELECT idem_execute('dcn-9', 'SELECT 1 AS n, t FROM (SELECT 1 AS x, r FROM (SELECT 2 AS b, 3 AS b) r) t');
CREATE FUNCTION dcn_rec() RETURNS record LANGUAGE plpgsql AS $$
DECLARE
	r record;
BEGIN
	SELECT 1 AS a, 2 AS a INTO r;
	RETURN r;
END $$;
SELECT idem_execute('dcn-10', 'SELECT dcn_rec() AS r');
\set VERBOSITY default
SELECT idem_execute('dcn-7', 'SELECT s FROM (SELECT 1 AS a, 2 AS a) s');
\set VERBOSITY sqlstate
SELECT idem_execute('dcn-7', 'SELECT s FROM (SELECT 1 AS a, 2 AS a) s');
SELECT idem_execute('dcn-10', 'SELECT dcn_rec() AS r');
\set VERBOSITY terse
SELECT count(*) AS keys FROM idempotency_keys;
-- distinct field names are fine, at any depth
SELECT idem_execute('dcn-11', 'SELECT s FROM (SELECT 1 AS a, 2 AS b) s');
SELECT idem_execute('dcn-12', 'SELECT ROW(1, ROW(2, 3)) AS r');

-- names that differ only in case are different names
SELECT idem_execute('dcn-6', 'SELECT 1 AS id, 2 AS "ID"');

-- with aliases the statement runs, stores both columns and replays them
SELECT idem_execute('dcn-1', 'UPDATE dcn_lines l SET qty = qty + 1 FROM dcn_orders o WHERE l.order_id = o.id RETURNING o.id AS order_id, l.id AS line_id');
SELECT idem_execute('dcn-1', 'UPDATE dcn_lines l SET qty = qty + 1 FROM dcn_orders o WHERE l.order_id = o.id RETURNING o.id AS order_id, l.id AS line_id');
SELECT id, qty FROM dcn_lines ORDER BY id;

-- clean up
DROP TABLE dcn_lines, dcn_orders;
DROP FUNCTION dcn_rec();
DELETE FROM idempotency_keys;
