-- privileges.sql: ordinary roles may read idempotency_keys (row level security
-- narrows it to their own keys) but never write it directly; every function is
-- executable by PUBLIC, and the functions write the keys table on the caller's behalf.
-- Runs in one transaction and rolls back: the role created here goes away too.
BEGIN;
SELECT plan(45);

CREATE ROLE regress_carol LOGIN;	-- an ordinary role: no superuser, no grants
CREATE TABLE regress_not_carols (event_id text);	-- owned by the superuser
GRANT SELECT, INSERT ON regress_not_carols TO regress_carol;

-- ---------------------------------------------------------------------------
-- table privileges
-- ---------------------------------------------------------------------------
SELECT table_privs_are('idempotency_keys', 'public', ARRAY['SELECT'],
	'PUBLIC has SELECT only on idempotency_keys');
SELECT table_privs_are('idempotency_keys', 'regress_carol', ARRAY['SELECT'],
	'an ordinary role has SELECT only on idempotency_keys');
SELECT is(
	(SELECT count(*)::int FROM information_schema.column_privileges
	  WHERE table_name = 'idempotency_keys' AND grantee = 'PUBLIC' AND privilege_type <> 'SELECT'),
	0, 'PUBLIC has no column-level write privilege on idempotency_keys either');
SELECT ok(NOT has_any_column_privilege('regress_carol', 'idempotency_keys', 'INSERT')
      AND NOT has_any_column_privilege('regress_carol', 'idempotency_keys', 'UPDATE'),
	'an ordinary role cannot INSERT or UPDATE any column of idempotency_keys');
SELECT table_owner_is('idempotency_keys',
	(SELECT r.rolname FROM pg_extension e JOIN pg_roles r ON r.oid = e.extowner
	  WHERE e.extname = 'idempotency'),
	'idempotency_keys is owned by the extension owner');
SELECT ok(NOT pg_has_role('regress_carol',
		(SELECT relowner FROM pg_class WHERE oid = 'idempotency_keys'::regclass), 'USAGE'),
	'an ordinary role is not (a member of) the keys table owner');

-- ---------------------------------------------------------------------------
-- an ordinary role cannot write the keys table directly
-- ---------------------------------------------------------------------------
SET LOCAL ROLE regress_carol;

SELECT lives_ok($$SELECT * FROM idempotency_keys$$, 'an ordinary role can SELECT from idempotency_keys');
SELECT throws_ok(
	$$INSERT INTO idempotency_keys(owner, scope, key, fingerprint, result, expires_at)
	  VALUES ('regress_carol', '', 'forged', NULL, '{"rows": []}', now() + interval '1 day')$$,
	'42501', NULL, 'an ordinary role cannot INSERT into idempotency_keys, not even in its own scope');
SELECT throws_ok(
	$$INSERT INTO idempotency_keys(owner, scope, key, fingerprint, result, expires_at)
	  VALUES ('postgres', '', 'forged', NULL, '{"rows": []}', now() + interval '1 day')$$,
	'42501', NULL, 'an ordinary role cannot INSERT a key in another role''s scope');
SELECT throws_ok($$UPDATE idempotency_keys SET result = '{"rows": []}'$$,
	'42501', NULL, 'an ordinary role cannot UPDATE idempotency_keys');
SELECT throws_ok($$UPDATE idempotency_keys SET expires_at = 'infinity' WHERE key = 'x'$$,
	'42501', NULL, 'an ordinary role cannot extend a key''s expiry');
SELECT throws_ok($$DELETE FROM idempotency_keys$$,
	'42501', NULL, 'an ordinary role cannot DELETE from idempotency_keys');
SELECT throws_ok($$TRUNCATE idempotency_keys$$,
	'42501', NULL, 'an ordinary role cannot TRUNCATE idempotency_keys');
SELECT throws_ok($$SELECT * FROM idempotency_keys FOR UPDATE$$,
	'42501', NULL, 'an ordinary role cannot lock idempotency_keys rows (SELECT ... FOR UPDATE)');
SELECT throws_ok($$LOCK TABLE idempotency_keys IN ACCESS EXCLUSIVE MODE$$,
	'42501', NULL, 'an ordinary role cannot LOCK idempotency_keys');
SELECT throws_ok($$ALTER TABLE idempotency_keys DISABLE ROW LEVEL SECURITY$$,
	'42501', NULL, 'an ordinary role cannot disable row level security on idempotency_keys');
SELECT throws_ok($$DROP POLICY idempotency_keys_own_role ON idempotency_keys$$,
	'42501', NULL, 'an ordinary role cannot drop the row level security policy');
SELECT throws_ok($$CREATE POLICY regress_all ON idempotency_keys FOR SELECT USING (true)$$,
	'42501', NULL, 'an ordinary role cannot add a policy to idempotency_keys');
-- GRANT without grant option only warns "no privileges were granted": check the effect
SET LOCAL client_min_messages = error;
SELECT lives_ok($$GRANT INSERT, UPDATE, DELETE ON idempotency_keys TO regress_carol$$,
	'an ordinary role''s GRANT on idempotency_keys is a no-op (warning only)');
RESET client_min_messages;
SELECT ok(NOT has_table_privilege('regress_carol', 'idempotency_keys', 'INSERT, UPDATE, DELETE'),
	'an ordinary role cannot grant itself write access to idempotency_keys');
SELECT throws_ok($$CREATE TRIGGER regress_trg BEFORE INSERT ON idempotency_keys
	FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()$$,
	'42501', NULL, 'an ordinary role cannot put a trigger on idempotency_keys');

-- ---------------------------------------------------------------------------
-- the functions write the table for the ordinary role, in its own scope
-- ---------------------------------------------------------------------------
SELECT is(idem_execute('regress-priv-key', 'SELECT 1 AS one'),
	'{"rows": [{"one": 1}], "command": "SELECT", "replayed": false, "row_count": 1}'::jsonb,
	'an ordinary role can run idem_execute without any write privilege on idempotency_keys');
SELECT results_eq(
	$$SELECT owner::text, key, result FROM idempotency_keys$$,
	$$VALUES ('regress_carol'::text, 'regress-priv-key'::text COLLATE "C",
	          '{"rows": [{"one": 1}], "command": "SELECT", "row_count": 1}'::jsonb)$$,
	'idem_execute stored the key in the ordinary role''s own scope');
SELECT is(idem_execute('regress-priv-key', 'SELECT 1 AS one'),
	'{"rows": [{"one": 1}], "command": "SELECT", "replayed": true, "row_count": 1}'::jsonb,
	'the ordinary role''s retry replays');
SELECT is(idem_lookup('regress-priv-key'),
	'{"rows": [{"one": 1}], "command": "SELECT", "row_count": 1}'::jsonb,
	'an ordinary role can run idem_lookup');
SELECT is(idem_forget('regress-priv-key'), true, 'an ordinary role can run idem_forget on its key');
SELECT is_empty($$SELECT * FROM idempotency_keys WHERE key = 'regress-priv-key'$$,
	'idem_forget deleted the key');
SELECT lives_ok($$SELECT idem_purge()$$, 'an ordinary role can run idem_purge');

-- the guard installs and removes a trigger: only the table's owner may do that
SELECT throws_ok($$SELECT idem_guard('regress_not_carols', 'event_id')$$,
	'42501', NULL, 'an ordinary role cannot idem_guard a table it does not own, even with INSERT on it');
RESET ROLE;
SELECT lives_ok($$SELECT idem_guard('regress_not_carols', 'event_id')$$,
	'the table owner can idem_guard it');
SET LOCAL ROLE regress_carol;
SELECT throws_ok($$SELECT idem_unguard('regress_not_carols')$$,
	'42501', NULL, 'an ordinary role cannot idem_unguard a table it does not own');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'regress_not_carols'::regclass AND NOT tgisinternal), 1,
	'the guard trigger is still installed after the refused idem_unguard');

SELECT is((SELECT count(*)::int FROM idempotency_keys WHERE owner::text = 'regress_carol'), 0,
	'nothing of the ordinary role is left in idempotency_keys');

-- ---------------------------------------------------------------------------
-- function privileges: EXECUTE for PUBLIC
-- ---------------------------------------------------------------------------
SELECT function_privs_are('idem_execute', ARRAY['text', 'text'], 'public', ARRAY['EXECUTE'],
	'PUBLIC can EXECUTE idem_execute(text, text)');
SELECT function_privs_are('idem_execute', ARRAY['text', 'text', '"any"'], 'public', ARRAY['EXECUTE'],
	'PUBLIC can EXECUTE idem_execute(text, text, "any")');
SELECT function_privs_are('idem_lookup', ARRAY['text'], 'public', ARRAY['EXECUTE'],
	'PUBLIC can EXECUTE idem_lookup');
SELECT function_privs_are('idem_forget', ARRAY['text'], 'public', ARRAY['EXECUTE'],
	'PUBLIC can EXECUTE idem_forget');
SELECT function_privs_are('idem_purge', ARRAY['bigint'], 'public', ARRAY['EXECUTE'],
	'PUBLIC can EXECUTE idem_purge');
SELECT function_privs_are('idem_guard', ARRAY['regclass', 'name', 'interval', 'text'], 'public', ARRAY['EXECUTE'],
	'PUBLIC can EXECUTE idem_guard (it checks table ownership itself)');
SELECT function_privs_are('idem_unguard', ARRAY['regclass'], 'public', ARRAY['EXECUTE'],
	'PUBLIC can EXECUTE idem_unguard (it checks table ownership itself)');
SELECT function_privs_are('idem_execute', ARRAY['text', 'text'], 'regress_carol', ARRAY['EXECUTE'],
	'an ordinary role can EXECUTE idem_execute(text, text)');
SELECT function_privs_are('idem_execute', ARRAY['text', 'text', '"any"'], 'regress_carol', ARRAY['EXECUTE'],
	'an ordinary role can EXECUTE idem_execute(text, text, "any")');
SELECT function_privs_are('idem_lookup', ARRAY['text'], 'regress_carol', ARRAY['EXECUTE'],
	'an ordinary role can EXECUTE idem_lookup');
SELECT function_privs_are('idem_forget', ARRAY['text'], 'regress_carol', ARRAY['EXECUTE'],
	'an ordinary role can EXECUTE idem_forget');
SELECT function_privs_are('idem_purge', ARRAY['bigint'], 'regress_carol', ARRAY['EXECUTE'],
	'an ordinary role can EXECUTE idem_purge');

SELECT * FROM finish();
ROLLBACK;
