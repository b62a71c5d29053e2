-- ALTER EXTENSION idempotency UPDATE from 1.0 keeps every live key and
-- 1.0 keys still replay: execute keys under their role (by OID from now
-- on), guard keys under their guard.  Keys of roles that no longer exist
-- are dropped.  The 1.0 rows are written here as 1.0 wrote them (the 1.1
-- library refuses to run on 1.0 tables): scope 'role:<name>' or
-- 'guard:<id>', and a 32-byte fingerprint, SHA-256 of the request encoding.
\set VERBOSITY terse
SET client_min_messages = warning;
DROP EXTENSION idempotency;
CREATE EXTENSION idempotency VERSION '1.0';
RESET client_min_messages;
SELECT extversion FROM pg_extension WHERE extname = 'idempotency';

CREATE FUNCTION up_le32(n int) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT set_byte(set_byte(set_byte(set_byte('\x00000000'::bytea,
           0, n & 255), 1, (n >> 8) & 255), 2, (n >> 16) & 255), 3, (n >> 24) & 255)
$$;
CREATE FUNCTION up_text(t text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT up_le32(length(convert_to(t, 'UTF8'))) || convert_to(t, 'UTF8')
$$;
-- the 1.0 fingerprint of (sql, one numeric argument)
CREATE FUNCTION up_fp(sql text, amount text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(up_text(sql) || up_le32(4) || up_le32(1)
                  || up_text('numeric') || up_text('v') || up_text(amount))
$$;

CREATE ROLE regress_up_app;
CREATE ROLE "regress_up ""Odd"" App";
CREATE ROLE regress_up_gone;
CREATE TABLE up_pay (id int GENERATED ALWAYS AS IDENTITY (START WITH 10), amount numeric);
GRANT SELECT, INSERT ON up_pay TO PUBLIC;
CREATE TABLE up_events (event_id text, body text);
GRANT SELECT, INSERT ON up_events TO PUBLIC;

-- the 1.1 library on 1.0 tables: a clear error, nothing runs
SELECT idem_execute('up-early', 'INSERT INTO up_pay(amount) VALUES (1) RETURNING id');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS nothing_ran FROM up_pay;

-- the state 1.0 left: a guard, its key, and execute keys of three roles
INSERT INTO idempotency_guards VALUES ('6f0c2d1e-0a4b-4c3d-8e2f-1a2b3c4d5e6f', 'up_events');
CREATE TRIGGER zz_idempotency_guard BEFORE INSERT ON up_events FOR EACH ROW
	EXECUTE FUNCTION idem_guard_trigger('6f0c2d1e-0a4b-4c3d-8e2f-1a2b3c4d5e6f', 'event_id', '', 'skip');
INSERT INTO idempotency_keys (scope, key, expires_at) VALUES
	('guard:6f0c2d1e-0a4b-4c3d-8e2f-1a2b3c4d5e6f', 'evt-1', now() + interval '1 day');
INSERT INTO idempotency_keys (scope, key, fingerprint, result, expires_at)
SELECT 'role:' || r, 'pay-1',
	   up_fp('INSERT INTO up_pay(amount) VALUES ($1) RETURNING id', '100.00'),
	   jsonb_build_object('command', 'INSERT', 'row_count', 1, 'rows', jsonb_build_array(jsonb_build_object('id', n))),
	   now() + interval '1 day'
  FROM (VALUES (current_user::text, 1), ('regress_up_app', 2), ('regress_up "Odd" App', 3),
               ('regress_up_gone', 4)) AS v(r, n);
DROP ROLE regress_up_gone;
SELECT scope, key, length(fingerprint) AS fp_len FROM idempotency_keys ORDER BY scope COLLATE "C", key;

ALTER EXTENSION idempotency UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'idempotency';

-- the new table is registered for pg_dump in place of the old one
SELECT array_agg(c::regclass::text ORDER BY c::regclass::text) AS extconfig
  FROM pg_extension, unnest(extconfig) AS c WHERE extname = 'idempotency';
SELECT count(*) AS old_table FROM pg_class WHERE relname = 'idempotency_keys_1_0';

-- every live key is there, by role OID; the dropped role's key is gone
SELECT owner, scope = '' AS default_tenant, key, length(fingerprint) AS fp_len
  FROM idempotency_keys WHERE owner::oid <> 0 ORDER BY owner::text;
SELECT owner, scope, key FROM idempotency_keys WHERE owner::oid = 0;

-- 1.0 keys replay after the update, each to its own role
SELECT idem_execute('pay-1', 'INSERT INTO up_pay(amount) VALUES ($1) RETURNING id', 100.00::numeric);
SET ROLE regress_up_app;
SELECT idem_execute('pay-1', 'INSERT INTO up_pay(amount) VALUES ($1) RETURNING id', 100.00::numeric) -> 'rows' AS rows;
SELECT idem_lookup('pay-1') -> 'rows' AS lookup;
-- another request under a 1.0 key is still IK001
SELECT idem_execute('pay-1', 'INSERT INTO up_pay(amount) VALUES ($1) RETURNING id', 200.00::numeric);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE "regress_up ""Odd"" App";
SELECT idem_execute('pay-1', 'INSERT INTO up_pay(amount) VALUES ($1) RETURNING id', 100.00::numeric) -> 'rows' AS rows;
-- the policy shows a role whose name needs quoting its own keys
SELECT owner, key FROM idempotency_keys;
RESET ROLE;
SELECT count(*) AS payments_made FROM up_pay;

-- the guard key skips the redelivered event; a new one goes in
INSERT INTO up_events VALUES ('evt-1', 'redelivered'), ('evt-2', 'new');
SELECT event_id, body FROM up_events ORDER BY event_id;
SELECT key FROM idempotency_keys WHERE owner::oid = 0 ORDER BY key;

-- new keys are 1.1 keys
SELECT idem_execute('pay-2', 'INSERT INTO up_pay(amount) VALUES ($1) RETURNING id', 5::numeric) -> 'rows' AS rows;
SELECT get_byte(fingerprint, 0) AS version, length(fingerprint) AS fp_len
  FROM idempotency_keys WHERE key = 'pay-2';

-- dropping the guarded table forgets its guard keys (the event trigger's 1.1 form)
DROP TABLE up_events;
SELECT count(*) AS guard_keys FROM idempotency_keys WHERE owner::oid = 0;

DELETE FROM idempotency_keys;
DROP TABLE up_pay;
DROP FUNCTION up_fp(text, text), up_text(text), up_le32(int);
DROP ROLE regress_up_app;
DROP ROLE "regress_up ""Odd"" App";
