-- idem_execute keeps the plan of each statement text per backend.  The
-- kept plans must behave as if the statement were planned on every call.

-- the same text under another search_path goes to that schema's table
CREATE SCHEMA sc_tenant_a;
CREATE SCHEMA sc_tenant_b;
CREATE TABLE sc_tenant_a.orders (id int, note text);
CREATE TABLE sc_tenant_b.orders (id int, note text);
SET search_path = sc_tenant_a, public;
SELECT idem_execute('sc-a', 'INSERT INTO orders VALUES ($1, $2)', 1, 'a'::text) -> 'row_count';
SET search_path = sc_tenant_b, public;
SELECT idem_execute('sc-b', 'INSERT INTO orders VALUES ($1, $2)', 1, 'b'::text) -> 'row_count';
RESET search_path;
SELECT 'a' AS tenant, * FROM sc_tenant_a.orders
UNION ALL SELECT 'b', * FROM sc_tenant_b.orders ORDER BY 1;

-- a column added between calls shows in RETURNING *: the plan was redone
CREATE TABLE sc_items (id int);
SELECT idem_execute('sc-i1', 'INSERT INTO sc_items VALUES ($1) RETURNING *', 1) -> 'rows';
ALTER TABLE sc_items ADD COLUMN label text DEFAULT 'new';
SELECT idem_execute('sc-i2', 'INSERT INTO sc_items VALUES ($1) RETURNING *', 2) -> 'rows';

-- the same text with other argument types is another plan
SELECT idem_execute('sc-t1', 'SELECT pg_typeof($1)::text AS t', 1) -> 'rows';
SELECT idem_execute('sc-t2', 'SELECT pg_typeof($1)::text AS t', 1::bigint) -> 'rows';

-- more statement texts than the cache holds (256), then the first ones
-- again: the cache starts over and every call still runs its own text
DO $$
BEGIN
	FOR i IN 1..300 LOOP
		PERFORM idem_execute('sc-many-' || i, format('SELECT %s AS n', i));
	END LOOP;
END
$$;
SELECT count(*) AS keys,
	   count(*) FILTER (WHERE (result -> 'rows' -> 0 ->> 'n')::int
						 = substr(key, 9)::int) AS right_results
FROM idempotency_keys WHERE key LIKE 'sc-many-%';
SELECT idem_execute('sc-again-1', 'SELECT 1 AS n') -> 'rows',
	   idem_execute('sc-again-300', 'SELECT 300 AS n') -> 'rows';

-- a nested call whose statements fill the cache while the outer plan runs
CREATE FUNCTION sc_fill(k int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..300 LOOP
		PERFORM idem_execute('sc-nested-' || k || '-' || i, format('SELECT %s AS n', i + 1000));
	END LOOP;
	RETURN k;
END
$$;
SELECT idem_execute('sc-outer', 'SELECT sc_fill($1) AS k', 7) -> 'rows';
SELECT count(*) AS nested_keys FROM idempotency_keys WHERE key LIKE 'sc-nested-7-%';

-- a renamed role keeps its keys: they follow the role's OID, not its name
CREATE ROLE regress_sc_before;
GRANT INSERT, SELECT ON sc_items TO regress_sc_before;
SET ROLE regress_sc_before;
SELECT idem_execute('sc-role', 'SELECT 1 AS one') -> 'replayed';
RESET ROLE;
ALTER ROLE regress_sc_before RENAME TO regress_sc_after;
SET ROLE regress_sc_after;
SELECT idem_execute('sc-role', 'SELECT 1 AS one') -> 'replayed';
RESET ROLE;
SELECT owner, scope FROM idempotency_keys WHERE key = 'sc-role' ORDER BY owner::text;

DROP FUNCTION sc_fill(int);
DROP TABLE sc_items;
DROP SCHEMA sc_tenant_a CASCADE;
DROP SCHEMA sc_tenant_b CASCADE;
DROP ROLE regress_sc_after;
DELETE FROM idempotency_keys;
