--
-- extension_objects: what CREATE EXTENSION idempotency makes for
-- idem_execute and its maintenance functions: the keys table (RLS on,
-- readable by everyone, writable by no ordinary role, registered with
-- pg_extension_config_dump so that live keys survive pg_dump/pg_restore),
-- and the functions with their signatures.  Dropping and creating the
-- extension again in the same session leaves the functions working.
--
\set VERBOSITY terse

-- the keys table: columns, collations, primary key
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
	   (SELECT collname FROM pg_collation WHERE oid = a.attcollation) AS collation
FROM pg_attribute a
WHERE a.attrelid = 'idempotency_keys'::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;
SELECT pg_get_constraintdef(oid) AS primary_key FROM pg_constraint
WHERE conrelid = 'idempotency_keys'::regclass AND contype = 'p';
-- row level security, and the policy restricting reads to the own role
SELECT relrowsecurity FROM pg_class WHERE oid = 'idempotency_keys'::regclass;
SELECT polname, polcmd, pg_get_expr(polqual, polrelid) AS using_expr
FROM pg_policy WHERE polrelid = 'idempotency_keys'::regclass;
-- an ordinary role may read (its own rows) and not write
CREATE ROLE regress_idem_objects;
SELECT p AS privilege, has_table_privilege('regress_idem_objects', 'idempotency_keys', p) AS granted
FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p;
-- every role may call the functions
SELECT p::regprocedure AS function, has_function_privilege('regress_idem_objects', p::regprocedure, 'EXECUTE') AS can_execute
FROM unnest(ARRAY['idem_execute(text, text)', 'idem_execute(text, text, "any")',
				  'idem_lookup(text)', 'idem_forget(text)', 'idem_purge(bigint)']) p;
DROP ROLE regress_idem_objects;

-- live keys are dumped with the extension's configuration: the table is
-- registered with a condition keeping only live keys
SELECT x.cfg::regclass AS config_table, x.cond AS dump_condition
FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(cfg, cond)
WHERE e.extname = 'idempotency' AND x.cfg = 'idempotency_keys'::regclass;

-- the functions: arguments, results, volatility and strictness
SELECT p.oid::regprocedure AS function, pg_get_function_arguments(p.oid) AS arguments,
	   pg_get_function_result(p.oid) AS result, p.provolatile, p.proisstrict,
	   p.prosecdef AS security_definer
FROM pg_proc p
WHERE p.proname IN ('idem_execute', 'idem_lookup', 'idem_forget', 'idem_purge')
ORDER BY p.proname, p.pronargs;

-- drop and create the extension again in this session: the functions work
-- on the new keys table (nothing stale kept from the old one)
SELECT idem_execute('eo-1', 'SELECT 1 AS one') -> 'replayed' AS replayed;
SELECT idem_lookup('eo-1') IS NOT NULL AS found, idem_purge() AS purged;
DROP EXTENSION idempotency;
CREATE EXTENSION idempotency;
SELECT idem_execute('eo-1', 'SELECT 1 AS one') -> 'replayed' AS replayed;
SELECT idem_execute('eo-1', 'SELECT 1 AS one') -> 'replayed' AS replayed;
SELECT idem_execute('eo-1', 'SELECT 2 AS two');
SELECT idem_lookup('eo-1') IS NOT NULL AS found, idem_forget('eo-1') AS forgot, idem_purge() AS purged;

-- clean up
DELETE FROM idempotency_keys;
