--
-- upgrade_same_as_fresh_install: an extension updated from 1.0 with ALTER
-- EXTENSION UPDATE is the same as a fresh install of the new version: the
-- same member objects, keys table columns, indexes, policies and
-- privileges, the same function signatures, attributes, privileges and
-- comments.  (upgrade_from_1_0 proves the update keeps and replays keys.)
-- The database is left with a fresh install of the default version.
--
\set VERBOSITY terse
SET client_min_messages = warning;

-- what an installed extension looks like, read from the catalogs at call
-- time (no dependency on the extension's objects)
CREATE FUNCTION upg_shape() RETURNS TABLE (what text, item text)
LANGUAGE sql AS $$
SELECT 'member', pg_describe_object(classid, objid, 0)
FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'idempotency')
UNION ALL
SELECT 'column', attname || ' ' || format_type(atttypid, atttypmod) || ' ' || attnotnull
	   || coalesce(' ' || (SELECT collname FROM pg_collation WHERE oid = attcollation), '')
	   || coalesce(' ' || col_description(attrelid, attnum), '')
FROM pg_attribute WHERE attrelid = to_regclass('idempotency_keys') AND attnum > 0 AND NOT attisdropped
UNION ALL
SELECT 'index', pg_get_indexdef(indexrelid)
FROM pg_index WHERE indrelid IN (to_regclass('idempotency_keys'), to_regclass('idempotency_guards'))
UNION ALL
SELECT 'policy', polname || ' ' || polcmd::text || ' ' || pg_get_expr(polqual, polrelid)
FROM pg_policy WHERE polrelid = to_regclass('idempotency_keys')
UNION ALL
SELECT 'table', relname || ' rls ' || relrowsecurity || ' acl ' || coalesce(relacl::text, '')
	   || ' ' || coalesce(obj_description(oid, 'pg_class'), '')
FROM pg_class WHERE oid IN (to_regclass('idempotency_keys'), to_regclass('idempotency_guards'))
UNION ALL
SELECT 'function', p.oid::regprocedure::text || ' ' || pg_get_function_result(p.oid) || ' '
	   || provolatile::text || ' strict ' || proisstrict || ' definer ' || prosecdef
	   || ' acl ' || coalesce(proacl::text, '') || ' ' || coalesce(obj_description(p.oid, 'pg_proc'), '')
FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'idempotency')
UNION ALL
SELECT 'dump', c::regclass::text || ' ' || coalesce(x.extcondition[i], '')
FROM pg_extension x, unnest(x.extconfig) WITH ORDINALITY AS u(c, i)
WHERE x.extname = 'idempotency'
$$;

-- 1. install 1.0 and update it
DROP EXTENSION idempotency;
CREATE EXTENSION idempotency VERSION '1.0';
ALTER EXTENSION idempotency UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'idempotency';
CREATE TEMP TABLE upg_updated AS SELECT * FROM upg_shape();
-- request keys work in the updated extension
BEGIN;
SELECT idem_begin('upg-req', '{"n": 1}');
SELECT idem_finish('upg-req', '"done"');
COMMIT;
SELECT idem_begin('upg-req', '{"n": 1}') AS replayed;

-- 2. a fresh install of the default version
DROP EXTENSION idempotency;
CREATE EXTENSION idempotency;
SELECT extversion FROM pg_extension WHERE extname = 'idempotency';

-- no difference either way
(SELECT 'only after update' AS side, * FROM upg_updated
 EXCEPT ALL SELECT 'only after update', * FROM upg_shape())
UNION ALL
(SELECT 'only in fresh install', * FROM upg_shape()
 EXCEPT ALL SELECT 'only in fresh install', * FROM upg_updated)
ORDER BY 1, 2, 3;
-- and the comparison compared something: members, columns, functions
SELECT what, count(*) > 0 AS compared FROM upg_updated GROUP BY what ORDER BY what;

DROP TABLE upg_updated;
DROP FUNCTION upg_shape();
