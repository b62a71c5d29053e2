--
-- execute_first_call: the first call for a key runs the statement once, in
-- the caller's transaction, and returns
--   {"replayed": false, "command": ..., "row_count": ..., "rows": [...]}
-- The same object without "replayed" is stored under the key.
--
-- Each answer is kept in the temp table "answers" so that the end of the
-- file can compare it with what was stored.
--
\set VERBOSITY terse

CREATE TABLE first_call (
	id		integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	customer text NOT NULL,
	amount	numeric NOT NULL
);
CREATE TEMP TABLE answers (key text PRIMARY KEY, answer jsonb);

-- INSERT ... RETURNING: one row, the generated id comes back
INSERT INTO answers VALUES ('fc-insert-ret', idem_execute('fc-insert-ret',
	'INSERT INTO first_call(customer, amount) VALUES ($1, $2) RETURNING id',
	'cus_1', 100.00::numeric)) RETURNING answer;
-- the statement ran exactly once
SELECT * FROM first_call ORDER BY id;
-- the stored object is the answer without "replayed"
SELECT result FROM idempotency_keys WHERE key = 'fc-insert-ret';

-- INSERT without RETURNING: rows is [], row_count counts the inserted rows
INSERT INTO answers VALUES ('fc-insert-noret', idem_execute('fc-insert-noret',
	'INSERT INTO first_call(customer, amount) VALUES ($1, 1), ($1, 2)',
	'cus_2')) RETURNING answer;
SELECT * FROM first_call ORDER BY id;

-- UPDATE without RETURNING: command UPDATE, row_count = rows updated, rows []
INSERT INTO answers VALUES ('fc-update', idem_execute('fc-update',
	'UPDATE first_call SET amount = amount + 10 WHERE customer = $1',
	'cus_2')) RETURNING answer;
SELECT * FROM first_call ORDER BY id;

-- UPDATE ... RETURNING several columns: one object per row, in order
INSERT INTO answers VALUES ('fc-update-ret', idem_execute('fc-update-ret',
	'UPDATE first_call SET amount = amount * 2 WHERE customer = $1 RETURNING id, customer, amount',
	'cus_2')) RETURNING answer;
SELECT * FROM first_call ORDER BY id;

-- DELETE ... RETURNING
INSERT INTO answers VALUES ('fc-delete', idem_execute('fc-delete',
	'DELETE FROM first_call WHERE id = $1 RETURNING id, customer',
	3)) RETURNING answer;
SELECT * FROM first_call ORDER BY id;

-- DELETE without RETURNING
INSERT INTO answers VALUES ('fc-delete-noret', idem_execute('fc-delete-noret',
	'DELETE FROM first_call WHERE id = $1',
	2)) RETURNING answer;
SELECT * FROM first_call ORDER BY id;

-- SELECT of several rows: all of them, in the statement's order (descending here)
INSERT INTO answers VALUES ('fc-select', idem_execute('fc-select',
	'SELECT g AS n, $1 || g AS label FROM generate_series(1, 4) g ORDER BY g DESC',
	'row-')) RETURNING answer;

-- a SELECT reading the table
INSERT INTO answers VALUES ('fc-select-table', idem_execute('fc-select-table',
	'SELECT id, customer, amount FROM first_call ORDER BY id')) RETURNING answer;

-- statements returning zero rows: row_count 0 and rows []
INSERT INTO answers VALUES ('fc-zero-select', idem_execute('fc-zero-select',
	'SELECT id FROM first_call WHERE customer = $1',
	'nobody')) RETURNING answer;
INSERT INTO answers VALUES ('fc-zero-update', idem_execute('fc-zero-update',
	'UPDATE first_call SET amount = 0 WHERE customer = $1 RETURNING id',
	'nobody')) RETURNING answer;
INSERT INTO answers VALUES ('fc-zero-delete', idem_execute('fc-zero-delete',
	'DELETE FROM first_call WHERE false')) RETURNING answer;
SELECT * FROM first_call ORDER BY id;

-- MERGE (PostgreSQL 15): command MERGE, row_count = rows merged, rows []
-- (cus_1 is updated, cus_3 inserted)
INSERT INTO answers VALUES ('fc-merge', idem_execute('fc-merge',
	'MERGE INTO first_call f
	   USING (VALUES ($1, 5::numeric), ($2, 7::numeric)) AS s(customer, amount)
	   ON f.customer = s.customer
	 WHEN MATCHED THEN UPDATE SET amount = f.amount + s.amount
	 WHEN NOT MATCHED THEN INSERT (customer, amount) VALUES (s.customer, s.amount)',
	'cus_1', 'cus_3')) RETURNING answer;
SELECT * FROM first_call ORDER BY id;

-- a multi-column RETURNING: numbers, text, booleans, NULL, nested JSON and
-- arrays become the matching JSON values; column names are the keys
INSERT INTO answers VALUES ('fc-columns', idem_execute('fc-columns',
	'INSERT INTO first_call(customer, amount) VALUES ($1, 3.50)
	 RETURNING id, customer, amount, amount > 3 AS big, NULL::text AS nothing,
	           jsonb_build_object(''a'', 1) AS doc, ARRAY[1, 2] AS arr',
	'cus_4')) RETURNING answer;

-- a data-modifying WITH under a SELECT: the command word is the top-level
-- statement's, and the insert in the CTE happens once
INSERT INTO answers VALUES ('fc-cte', idem_execute('fc-cte',
	'WITH ins AS (INSERT INTO first_call(customer, amount) VALUES ($1, 9) RETURNING id, customer)
	 SELECT customer FROM ins',
	'cus_5')) RETURNING answer;
SELECT count(*) FROM first_call WHERE customer = 'cus_5';

-- the first call runs in the caller's transaction: rolled back with it,
-- neither the row nor the key remain
BEGIN;
SELECT idem_execute('fc-rolled-back',
	'INSERT INTO first_call(customer, amount) VALUES ($1, 0) RETURNING customer',
	'cus_rb');
SELECT count(*) AS keys_in_xact FROM idempotency_keys WHERE key = 'fc-rolled-back';
ROLLBACK;
SELECT count(*) AS rows_after FROM first_call WHERE customer = 'cus_rb';
SELECT count(*) AS keys_after FROM idempotency_keys WHERE key = 'fc-rolled-back';

-- every first call answered "replayed": false, and the stored object is
-- exactly the answer without "replayed" (one key row per call)
SELECT a.key,
	   a.answer -> 'replayed' AS replayed,
	   k.result = a.answer - 'replayed' AS stored_equals_answer,
	   k.result ? 'replayed' AS stored_has_replayed
FROM answers a FULL JOIN idempotency_keys k USING (key)
ORDER BY a.key;

-- the keys belong to the calling role
SELECT count(*) AS keys, bool_and(owner = current_user::regrole AND scope = '') AS own_scope
FROM idempotency_keys;

-- clean up
DROP TABLE first_call;
DROP TABLE answers;
DELETE FROM idempotency_keys;
