--
-- clients: idem_execute works from any client path: the simple protocol
-- (one statement, or several in one query string), server-side prepared
-- statements with $n parameters (cast so the server knows their types),
-- SQL and PL/pgSQL functions, DO blocks, and inside explicit transactions
-- with other statements.  An uncast parameter given for the "any"
-- arguments gets PostgreSQL's "could not determine data type of parameter"
-- (42P18), as drivers that send untyped parameters do.
--
\set VERBOSITY terse

CREATE TABLE cl_pay (id serial PRIMARY KEY, customer text, amount numeric);
CREATE TABLE cl_audit (note text);

-- simple protocol, several statements in one query string (\; sends them
-- together): the second call replays the first, in the same implicit
-- transaction
SELECT idem_execute('cl-simple', 'INSERT INTO cl_pay(customer, amount) VALUES ($1, $2) RETURNING id', 'cus_1', 10.00::numeric) -> 'replayed' AS first \; SELECT idem_execute('cl-simple', 'INSERT INTO cl_pay(customer, amount) VALUES ($1, $2) RETURNING id', 'cus_1', 10.00::numeric) -> 'replayed' AS second;
SELECT count(*) AS cus_1_rows FROM cl_pay WHERE customer = 'cus_1';

-- a prepared statement with cast parameters, the way a driver sends
-- "SELECT idem_execute($1, $2, $3::text, $4::numeric)"
PREPARE cl_pay_stmt AS
	SELECT idem_execute($1, 'INSERT INTO cl_pay(customer, amount) VALUES ($1, $2) RETURNING id, customer, amount',
		$2::text, $3::numeric);
EXECUTE cl_pay_stmt('cl-prep-1', 'cus_2', '20.50');
EXECUTE cl_pay_stmt('cl-prep-1', 'cus_2', '20.50');
-- a different amount under the same key: IK001
EXECUTE cl_pay_stmt('cl-prep-1', 'cus_2', '99');
-- a prepared statement with declared parameter types
PREPARE cl_pay_typed(text, text, numeric) AS
	SELECT idem_execute($1, 'INSERT INTO cl_pay(customer, amount) VALUES ($1, $2) RETURNING id, customer, amount',
		$2, $3);
-- the same request as cl_pay_stmt made: same types (text, numeric), same values
EXECUTE cl_pay_typed('cl-prep-1', 'cus_2', 20.50);
-- many executions, so that a generic plan is used too: the first call of
-- each key runs, its retries replay
SELECT count(*) AS rows_before FROM cl_pay;
EXECUTE cl_pay_typed('cl-prep-2', 'cus_3', 1);
EXECUTE cl_pay_typed('cl-prep-3', 'cus_3', 2);
EXECUTE cl_pay_typed('cl-prep-4', 'cus_3', 3);
EXECUTE cl_pay_typed('cl-prep-5', 'cus_3', 4);
EXECUTE cl_pay_typed('cl-prep-6', 'cus_3', 5);
EXECUTE cl_pay_typed('cl-prep-2', 'cus_3', 1);
EXECUTE cl_pay_typed('cl-prep-6', 'cus_3', 5);
SET plan_cache_mode = force_generic_plan;
EXECUTE cl_pay_typed('cl-prep-7', 'cus_3', 6);
EXECUTE cl_pay_typed('cl-prep-7', 'cus_3', 6);
EXECUTE cl_pay_typed('cl-prep-3', 'cus_3', 2);
RESET plan_cache_mode;
SELECT count(*) AS rows_after FROM cl_pay;
SELECT generic_plans > 0 AS used_generic_plan FROM pg_prepared_statements WHERE name = 'cl_pay_typed';

-- an uncast parameter in the "any" arguments: the server cannot determine
-- its type (42P18), as with node-postgres or psycopg sending untyped
-- strings; the cast placeholder ($1::numeric) is the fix
\set VERBOSITY sqlstate
PREPARE cl_untyped AS SELECT idem_execute('cl-untyped', 'SELECT $1 AS v', $1);
\set VERBOSITY terse
PREPARE cl_untyped AS SELECT idem_execute('cl-untyped', 'SELECT $1 AS v', $1);
PREPARE cl_untyped3 AS SELECT idem_execute($1, $2, $3);
PREPARE cl_cast AS SELECT idem_execute('cl-cast', 'SELECT $1 AS v', $1::numeric);
EXECUTE cl_cast('42.0');
-- the key and the sql are declared text: their parameters need no cast
PREPARE cl_key_sql AS SELECT idem_execute($1, $2);
EXECUTE cl_key_sql('cl-key-sql', 'SELECT 7 AS seven');
EXECUTE cl_key_sql('cl-key-sql', 'SELECT 7 AS seven');
DEALLOCATE ALL;

-- a SQL function
CREATE FUNCTION cl_sql_pay(k text, cust text, amt numeric) RETURNS jsonb
	LANGUAGE sql
	AS $$ SELECT idem_execute(k, 'INSERT INTO cl_pay(customer, amount) VALUES ($1, $2) RETURNING customer, amount', cust, amt) $$;
SELECT cl_sql_pay('cl-sqlfn', 'cus_4', 4.00);
SELECT cl_sql_pay('cl-sqlfn', 'cus_4', 4.00);

-- a PL/pgSQL function with variables as arguments
CREATE FUNCTION cl_plpgsql_pay(k text, cust text, amt numeric) RETURNS jsonb
	LANGUAGE plpgsql AS $$
DECLARE
	r jsonb;
BEGIN
	r := idem_execute(k, 'INSERT INTO cl_pay(customer, amount) VALUES ($1, $2) RETURNING customer, amount', cust, amt);
	INSERT INTO cl_audit VALUES (format('%s replayed=%s', k, r -> 'replayed'));
	RETURN r;
END $$;
SELECT cl_plpgsql_pay('cl-plpgsql', 'cus_5', 5.00);
SELECT cl_plpgsql_pay('cl-plpgsql', 'cus_5', 5.00);
SELECT cl_plpgsql_pay('cl-plpgsql', 'cus_5', 6.00);
SELECT * FROM cl_audit;

-- a DO block calling it in a loop, from one call site: ten calls over
-- three keys run three statements and replay seven
DO $$
DECLARE
	r jsonb;
	ran int := 0;
	replayed int := 0;
BEGIN
	FOR i IN 1..10 LOOP
		r := idem_execute('cl-do-' || (i % 3), 'INSERT INTO cl_pay(customer, amount) VALUES ($1, $2) RETURNING id',
			'cus_do', (i % 3)::numeric);
		IF (r ->> 'replayed')::boolean THEN
			replayed := replayed + 1;
		ELSE
			ran := ran + 1;
		END IF;
	END LOOP;
	RAISE NOTICE 'ran %, replayed %', ran, replayed;
END $$;
SELECT amount, count(*) FROM cl_pay WHERE customer = 'cus_do' GROUP BY amount ORDER BY amount;
-- dynamic SQL in PL/pgSQL (EXECUTE ... USING) passes typed arguments too
DO $$
DECLARE
	r jsonb;
BEGIN
	EXECUTE 'SELECT idem_execute($1, $2, $3, $4)'
		INTO r
		USING 'cl-dyn', 'INSERT INTO cl_pay(customer, amount) VALUES ($1, $2) RETURNING customer, amount',
			'cus_dyn'::text, 7.25::numeric;
	RAISE NOTICE 'first: %', r;
	EXECUTE 'SELECT idem_execute($1, $2, $3, $4)'
		INTO r
		USING 'cl-dyn', 'INSERT INTO cl_pay(customer, amount) VALUES ($1, $2) RETURNING customer, amount',
			'cus_dyn'::text, 7.25::numeric;
	RAISE NOTICE 'again: %', r;
END $$;

-- inside an explicit transaction with other statements: the key and the
-- write commit together with the rest
BEGIN;
INSERT INTO cl_audit VALUES ('before');
SELECT idem_execute('cl-xact', 'INSERT INTO cl_pay(customer, amount) VALUES ($1, $2) RETURNING customer', 'cus_tx', 1::numeric);
UPDATE cl_pay SET amount = 2 WHERE customer = 'cus_tx';
SELECT idem_execute('cl-xact', 'INSERT INTO cl_pay(customer, amount) VALUES ($1, $2) RETURNING customer', 'cus_tx', 1::numeric) -> 'replayed' AS replayed;
SELECT amount FROM cl_pay WHERE customer = 'cus_tx';
INSERT INTO cl_audit VALUES ('after');
COMMIT;
SELECT amount FROM cl_pay WHERE customer = 'cus_tx';
SELECT idem_execute('cl-xact', 'INSERT INTO cl_pay(customer, amount) VALUES ($1, $2) RETURNING customer', 'cus_tx', 1::numeric) -> 'replayed' AS replayed;
-- in a REPEATABLE READ and a SERIALIZABLE transaction
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT idem_execute('cl-rr', 'INSERT INTO cl_pay(customer, amount) VALUES ($1, 1) RETURNING customer', 'cus_rr') -> 'replayed' AS replayed;
SELECT idem_execute('cl-rr', 'INSERT INTO cl_pay(customer, amount) VALUES ($1, 1) RETURNING customer', 'cus_rr') -> 'replayed' AS replayed;
COMMIT;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT idem_execute('cl-ser', 'INSERT INTO cl_pay(customer, amount) VALUES ($1, 1) RETURNING customer', 'cus_ser') -> 'replayed' AS replayed;
SELECT idem_execute('cl-rr', 'INSERT INTO cl_pay(customer, amount) VALUES ($1, 1) RETURNING customer', 'cus_rr') -> 'replayed' AS replayed;
COMMIT;
SELECT customer, count(*) FROM cl_pay WHERE customer IN ('cus_rr', 'cus_ser') GROUP BY customer ORDER BY customer;
-- a first call records a key, so it needs a read-write transaction: in a
-- read-only one it fails (25006) as any write does
BEGIN READ ONLY;
\set VERBOSITY sqlstate
SELECT idem_execute('cl-read-only', 'SELECT 1 AS one');
\set VERBOSITY terse
ROLLBACK;
SELECT idem_lookup('cl-read-only') IS NULL AS nothing_recorded;

-- every key that ran is recorded once
SELECT key, command FROM idempotency_keys ORDER BY key;

-- clean up
DROP FUNCTION cl_sql_pay(text, text, numeric);
DROP FUNCTION cl_plpgsql_pay(text, text, numeric);
DROP TABLE cl_pay;
DROP TABLE cl_audit;
DELETE FROM idempotency_keys;
