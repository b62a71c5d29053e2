--
-- upgrade_keeps_keys: ALTER EXTENSION idempotency UPDATE from 1.0 keeps
-- every stored key: an idem_execute key stored by 1.0 replays after the
-- update (and a different request under it is still IK001), a 1.0 guard
-- key still skips its duplicate, keys of other roles stay theirs.  The
-- updated extension is the same as a fresh install of the new version.
--
-- Only the new library is installed, so the 1.0 keys are written here as
-- 1.0 wrote them: scope 'role:<name>' or 'guard:<id>', the fingerprint
-- SHA-256 of the documented request encoding (fingerprint_bytes proves
-- 1.0 stores exactly that), the result without "replayed".
--
\set VERBOSITY terse
\pset null '(sql null)'
SET client_min_messages = warning;

DROP EXTENSION idempotency;
CREATE EXTENSION idempotency VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'idempotency';

-- the 1.0 request encoding (see fingerprint_bytes)
CREATE FUNCTION upg_le32(n int) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
	SELECT set_byte(set_byte(set_byte(set_byte('\x00000000'::bytea,
		   0, n & 255), 1, (n >> 8) & 255), 2, (n >> 16) & 255), 3, (n >> 24) & 255)
$$;
CREATE FUNCTION upg_text(t text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
	SELECT upg_le32(octet_length(convert_to(t, 'UTF8'))) || convert_to(t, 'UTF8')
$$;

CREATE ROLE regress_upg_r;
CREATE ROLE "regress_upg ""odd"":role";
CREATE TABLE upg_pay (id int PRIMARY KEY, customer text, amount numeric);
GRANT SELECT, INSERT ON upg_pay TO regress_upg_r, "regress_upg ""odd"":role";
CREATE TABLE upg_events (event_id text, note text);

-- 1. what 1.0 stored: one payment made by idem_execute, as this superuser,
-- and one by each of the two roles; the statement and its arguments
\set upg_sql 'INSERT INTO upg_pay(id, customer, amount) VALUES ($1, $2, 100.00) RETURNING id'
INSERT INTO upg_pay VALUES (1, 'cus_1', 100.00), (2, 'cus_2', 100.00), (3, 'cus_3', 100.00);
INSERT INTO idempotency_keys (scope, key, fingerprint, result, created_at, expires_at)
SELECT 'role:' || r, 'upg-pay', sha256(upg_text(:'upg_sql') || upg_le32(4) || upg_le32(2)
		   || upg_text('integer') || upg_text('v') || upg_text(id::text)
		   || upg_text('pg_catalog.text') || upg_text('v') || upg_text(customer)),
	   jsonb_build_object('command', 'INSERT', 'row_count', 1, 'rows', jsonb_build_array(jsonb_build_object('id', id))),
	   now(), now() + interval '1 day'
FROM (VALUES (1, 'cus_1', current_user::text), (2, 'cus_2', 'regress_upg_r'),
			 (3, 'cus_3', 'regress_upg "odd":role')) AS v(id, customer, r);
-- the guard as idem_guard 1.0 installed it, with one key already seen
INSERT INTO upg_events VALUES ('e1', 'first');
INSERT INTO idempotency_guards VALUES ('00000000-0000-4000-8000-00000000abcd', 'upg_events');
CREATE TRIGGER zz_idempotency_guard BEFORE INSERT ON upg_events FOR EACH ROW
	EXECUTE FUNCTION public.idem_guard_trigger('00000000-0000-4000-8000-00000000abcd', 'event_id', '', 'skip');
INSERT INTO idempotency_keys (scope, key, fingerprint, result, created_at, expires_at)
VALUES ('guard:00000000-0000-4000-8000-00000000abcd', 'e1', NULL, NULL, now(), now() + interval '1 day');
SELECT scope, key, length(fingerprint) AS fp_bytes FROM idempotency_keys ORDER BY scope, key;
SELECT expires_at AS upg_expires FROM idempotency_keys WHERE key = 'upg-pay' LIMIT 1 \gset

-- 2. the update
ALTER EXTENSION idempotency UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'idempotency';
-- every key is still there, in the 1.1 layout, expiry unchanged
SELECT owner, scope, key, length(fingerprint) AS fp_bytes, expires_at = :'upg_expires' AS same_expiry
FROM idempotency_keys ORDER BY key, owner::text;

-- 3. the 1.0 idem_execute key replays after the update, its statement
-- does not run again; a different request under it is still IK001
SELECT idem_execute('upg-pay', :'upg_sql', 1, 'cus_1'::text);
SELECT idem_execute('upg-pay', :'upg_sql', 1, 'cus_other'::text);
SELECT idem_lookup('upg-pay');
-- and each role's key is still its own, and replays for it
SET ROLE regress_upg_r;
SELECT idem_execute('upg-pay', :'upg_sql', 2, 'cus_2'::text) -> 'replayed' AS r_replayed;
SELECT count(*) AS visible_keys FROM idempotency_keys;
SET ROLE "regress_upg ""odd"":role";
SELECT idem_execute('upg-pay', :'upg_sql', 3, 'cus_3'::text) -> 'replayed' AS odd_replayed;
RESET ROLE;
SELECT count(*) AS payments FROM upg_pay;

-- 4. the 1.0 guard key still skips its duplicate; a new key goes in
INSERT INTO upg_events VALUES ('e1', 'duplicate'), ('e2', 'new');
SELECT event_id, note FROM upg_events ORDER BY event_id, note;

-- 5. new keys work after the update: idem_execute (1.1 fingerprint),
-- idem_begin/idem_finish, forget of a 1.0 key
SELECT idem_execute('upg-new', 'SELECT 1 AS one') -> 'replayed' AS replayed;
SELECT get_byte(fingerprint, 0) AS fp_format, length(fingerprint) AS fp_bytes
FROM idempotency_keys WHERE key = 'upg-new';
BEGIN;
SELECT idem_begin('upg-req', '{"n": 1}');
SELECT idem_finish('upg-req', '"done"');
COMMIT;
SELECT idem_begin('upg-req', '{"n": 1}') AS replayed;
SELECT idem_forget('upg-pay') AS forgot_1_0_key;

-- 6. live keys still go into pg_dump after the update
SELECT extconfig::regclass[] AS dumped FROM pg_extension WHERE extname = 'idempotency';

-- 7. the updated extension equals a fresh install: its member objects, the
-- keys table's columns, indexes, policies and privileges, the functions'
-- signatures, attributes, privileges and comments
CREATE FUNCTION upg_shape() RETURNS TABLE (what text, item text)
LANGUAGE sql AS $$
SELECT 'member', pg_describe_object(classid, objid, 0)
FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'idempotency')
UNION ALL
SELECT 'column', attname || ' ' || format_type(atttypid, atttypmod) || ' ' || attnotnull
	   || coalesce(' ' || (SELECT collname FROM pg_collation WHERE oid = attcollation), '')
FROM pg_attribute WHERE attrelid = to_regclass('idempotency_keys') AND attnum > 0 AND NOT attisdropped
UNION ALL
SELECT 'index', pg_get_indexdef(indexrelid)
FROM pg_index WHERE indrelid IN (to_regclass('idempotency_keys'), to_regclass('idempotency_guards'))
UNION ALL
SELECT 'policy', polname || ' ' || polcmd || ' ' || pg_get_expr(polqual, polrelid)
FROM pg_policy WHERE polrelid = to_regclass('idempotency_keys')
UNION ALL
SELECT 'table', relname || ' rls ' || relrowsecurity || ' acl ' || coalesce(relacl::text, '')
FROM pg_class WHERE oid IN (to_regclass('idempotency_keys'), to_regclass('idempotency_guards'))
UNION ALL
SELECT 'function', p.oid::regprocedure || ' ' || pg_get_function_result(p.oid) || ' '
	   || provolatile || ' strict ' || proisstrict || ' definer ' || prosecdef
	   || ' acl ' || coalesce(proacl::text, '') || ' ' || coalesce(obj_description(p.oid, 'pg_proc'), '')
FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'idempotency')
$$;
CREATE TEMP TABLE upg_updated AS SELECT * FROM upg_shape();

-- back to a fresh install of the default version, for the files after this
DROP TABLE upg_events, upg_pay;
DROP EXTENSION idempotency;
CREATE EXTENSION idempotency;
SELECT extversion FROM pg_extension WHERE extname = 'idempotency';
-- no difference either way
(SELECT 'only after update' AS side, * FROM upg_updated EXCEPT ALL SELECT 'only after update', * FROM upg_shape())
UNION ALL
(SELECT 'only in fresh install', * FROM upg_shape() EXCEPT ALL SELECT 'only in fresh install', * FROM upg_updated)
ORDER BY 1, 2, 3;
SELECT count(*) > 10 AS compared_something FROM upg_updated;

DROP TABLE upg_updated;
DROP FUNCTION upg_shape();
DROP FUNCTION upg_text(text), upg_le32(int);
DROP ROLE regress_upg_r, "regress_upg ""odd"":role";
