-- The same statement text is another request when it resolves against
-- another schema: the effective search_path is part of the fingerprint, and
-- reg* arguments are fingerprinted fully qualified.  A retry under another
-- search_path gets IK001 (or, with its own tenant, its own execution),
-- never another schema's stored result (issue 9 item 3, issue 8 item 8).
\set VERBOSITY terse
CREATE SCHEMA fs_a;
CREATE SCHEMA fs_b;
CREATE TABLE fs_a.orders (id int GENERATED ALWAYS AS IDENTITY, note text);
CREATE TABLE fs_b.orders (id int GENERATED ALWAYS AS IDENTITY (START WITH 100), note text);

-- schema-per-tenant: the same role, key and text in schema a, then b
SET search_path = fs_a, public;
SELECT idem_execute('fs-order-1', 'INSERT INTO orders(note) VALUES ($1) RETURNING id', 'x');
SET search_path = fs_b, public;
SELECT idem_execute('fs-order-1', 'INSERT INTO orders(note) VALUES ($1) RETURNING id', 'x');
\echo :LAST_ERROR_SQLSTATE
-- with each schema's tenant set, b runs its own insert
SET idempotency.tenant = 'fs_b';
SELECT idem_execute('fs-order-1', 'INSERT INTO orders(note) VALUES ($1) RETURNING id', 'x');
SELECT idem_execute('fs-order-1', 'INSERT INTO orders(note) VALUES ($1) RETURNING id', 'x') -> 'replayed' AS replayed;
RESET idempotency.tenant;
-- back in schema a, the first key still replays
SET search_path = fs_a, public;
SELECT idem_execute('fs-order-1', 'INSERT INTO orders(note) VALUES ($1) RETURNING id', 'x') -> 'replayed' AS replayed;
SELECT (SELECT count(*) FROM fs_a.orders) AS a_rows, (SELECT count(*) FROM fs_b.orders) AS b_rows;

-- reg* arguments: 'fs_a.t' and then 'fs_b.t' both print as t under this
-- search_path (once fs_a.t is gone), but they are different tables: IK001
CREATE TABLE fs_a.t ();
CREATE TABLE fs_b.t ();
SET search_path = fs_a, fs_b, public;
SELECT 'fs_a.t'::regclass::text AS a_prints;
SELECT idem_execute('fs-reg', 'SELECT count(*) AS n FROM pg_class WHERE oid = $1', 'fs_a.t'::regclass) -> 'rows' AS rows;
DROP TABLE fs_a.t;
SELECT 'fs_b.t'::regclass::text AS b_prints;
SELECT idem_execute('fs-reg', 'SELECT count(*) AS n FROM pg_class WHERE oid = $1', 'fs_b.t'::regclass);
\echo :LAST_ERROR_SQLSTATE
-- inside an array too
SELECT idem_execute('fs-reg-array', 'SELECT cardinality($1) AS n', ARRAY['fs_b.t'::regclass]) -> 'rows' AS rows;
CREATE TABLE fs_a.t ();
SELECT idem_execute('fs-reg-array', 'SELECT cardinality($1) AS n', ARRAY['fs_a.t'::regclass]);
\echo :LAST_ERROR_SQLSTATE
-- the same table again replays, and the session's search_path is as it was
SELECT idem_execute('fs-reg-array', 'SELECT cardinality($1) AS n', ARRAY['fs_b.t'::regclass]) -> 'replayed' AS replayed;
SHOW search_path;
RESET search_path;

SELECT count(*) FILTER (WHERE idem_forget(k)) AS forgotten
  FROM (VALUES ('fs-order-1'), ('fs-reg'), ('fs-reg-array')) AS v(k);
SET idempotency.tenant = 'fs_b';
SELECT idem_forget('fs-order-1') AS forgotten_b;
RESET idempotency.tenant;
DROP SCHEMA fs_a CASCADE;
DROP SCHEMA fs_b CASCADE;
