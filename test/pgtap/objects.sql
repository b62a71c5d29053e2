-- objects.sql: CREATE EXTENSION idempotency creates exactly the objects SPEC.md lists
-- (keys table, functions, policy, settings), with the declared types, flags and comments.
-- Runs in one transaction and rolls back, so it leaves nothing behind.
BEGIN;
SELECT plan(128);

-- the settings and the reserved prefix exist once the module is loaded; a fresh
-- pg_prove session has not loaded it yet, so load it explicitly
LOAD 'idempotency';

-- ---------------------------------------------------------------------------
-- the keys table
-- ---------------------------------------------------------------------------
SELECT has_table('idempotency_keys', 'the keys table idempotency_keys exists');
SELECT columns_are('idempotency_keys',
	ARRAY['created_at', 'expires_at', 'owner', 'scope', 'key', 'fingerprint', 'command', 'result'],
	'idempotency_keys has exactly the columns created_at, expires_at, owner, scope, key, fingerprint, command, result');

SELECT col_type_is('idempotency_keys', 'owner', 'regrole', 'owner is regrole');

SELECT col_type_is('idempotency_keys', 'scope', 'text', 'scope is text');
SELECT col_type_is('idempotency_keys', 'key', 'text', 'key is text');
SELECT col_type_is('idempotency_keys', 'fingerprint', 'bytea', 'fingerprint is bytea');
SELECT col_type_is('idempotency_keys', 'command', 'text', 'command is text');
SELECT col_type_is('idempotency_keys', 'result', 'jsonb', 'result is jsonb');
SELECT col_type_is('idempotency_keys', 'created_at', 'timestamp with time zone', 'created_at is timestamptz');
SELECT col_type_is('idempotency_keys', 'expires_at', 'timestamp with time zone', 'expires_at is timestamptz');

SELECT col_not_null('idempotency_keys', 'owner', 'owner is NOT NULL');
SELECT col_not_null('idempotency_keys', 'scope', 'scope is NOT NULL');
SELECT col_not_null('idempotency_keys', 'key', 'key is NOT NULL');
SELECT col_not_null('idempotency_keys', 'created_at', 'created_at is NOT NULL');
SELECT col_not_null('idempotency_keys', 'expires_at', 'expires_at is NOT NULL');
-- guard keys store no request fingerprint and no result
SELECT col_is_null('idempotency_keys', 'fingerprint', 'fingerprint is nullable (guard keys have none)');
SELECT col_is_null('idempotency_keys', 'result', 'result is nullable (guard keys have none)');
SELECT col_is_null('idempotency_keys', 'command', 'command is nullable (only idem_execute results have one)');
SELECT col_has_default('idempotency_keys', 'created_at', 'created_at has a default');

-- keys compare byte for byte, whatever the database collation
SELECT is(
	(SELECT c.collname::text FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation
	  WHERE a.attrelid = 'idempotency_keys'::regclass AND a.attname = 'scope'),
	'C', 'scope uses COLLATE "C"');
SELECT is(
	(SELECT c.collname::text FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation
	  WHERE a.attrelid = 'idempotency_keys'::regclass AND a.attname = 'key'),
	'C', 'key uses COLLATE "C"');

SELECT has_pk('idempotency_keys', 'idempotency_keys has a primary key');
SELECT col_is_pk('idempotency_keys', ARRAY['owner', 'scope', 'key', 'expires_at'],
	'the primary key is (owner, scope, key, expires_at): a live row and expired ones of a key');

SELECT ok(obj_description('idempotency_keys'::regclass, 'pg_class') IS NOT NULL,
	'idempotency_keys has a COMMENT');

-- ---------------------------------------------------------------------------
-- row level security
-- ---------------------------------------------------------------------------
SELECT ok((SELECT relrowsecurity FROM pg_class WHERE oid = 'idempotency_keys'::regclass),
	'row level security is enabled on idempotency_keys');
SELECT policies_are('idempotency_keys', ARRAY['idempotency_keys_own_role'],
	'idempotency_keys has exactly the policy idempotency_keys_own_role');
SELECT policy_cmd_is('idempotency_keys', 'idempotency_keys_own_role', 'SELECT',
	'the policy applies to SELECT');
-- (pgTAP's policy_roles_are cannot name PUBLIC, so read pg_policies)
SELECT is(
	(SELECT roles::text[] FROM pg_policies
	  WHERE tablename = 'idempotency_keys' AND policyname = 'idempotency_keys_own_role'),
	ARRAY['public'], 'the policy applies to every role (PUBLIC)');
SELECT matches(
	(SELECT pg_get_expr(polqual, polrelid) FROM pg_policy
	  WHERE polrelid = 'idempotency_keys'::regclass AND polname = 'idempotency_keys_own_role'),
	'owner.*CURRENT_USER.*regrole',
	'the policy shows a role its own keys only (owner = current_user''s OID)');

-- ---------------------------------------------------------------------------
-- pg_dump registration: live keys survive dump and restore
-- ---------------------------------------------------------------------------
SELECT ok(
	(SELECT 'idempotency_keys'::regclass::oid = ANY (extconfig) FROM pg_extension
	  WHERE extname = 'idempotency'),
	'idempotency_keys is registered with pg_extension_config_dump');
SELECT matches(
	(SELECT extcondition[array_position(extconfig, 'idempotency_keys'::regclass::oid)]
	   FROM pg_extension WHERE extname = 'idempotency'),
	'^\s*WHERE\s+expires_at\s*>\s*(pg_catalog\.)?now\(\)\s*$',
	'pg_dump keeps only live keys (WHERE expires_at > now())');

-- ---------------------------------------------------------------------------
-- functions: existence, exact signatures, return types
-- ---------------------------------------------------------------------------
SELECT has_function('idem_execute', ARRAY['text', 'text'], 'idem_execute(text, text) exists');
SELECT has_function('idem_execute', ARRAY['text', 'text', '"any"'], 'idem_execute(text, text, VARIADIC "any") exists');
SELECT has_function('idem_lookup', ARRAY['text'], 'idem_lookup(text) exists');
SELECT has_function('idem_forget', ARRAY['text'], 'idem_forget(text) exists');
SELECT has_function('idem_purge', ARRAY['bigint'], 'idem_purge(bigint) exists');

SELECT function_returns('idem_execute', ARRAY['text', 'text'], 'jsonb', 'idem_execute(text, text) returns jsonb');
SELECT function_returns('idem_execute', ARRAY['text', 'text', '"any"'], 'jsonb', 'idem_execute(text, text, "any") returns jsonb');
SELECT function_returns('idem_lookup', ARRAY['text'], 'jsonb', 'idem_lookup returns jsonb');
SELECT function_returns('idem_forget', ARRAY['text'], 'boolean', 'idem_forget returns boolean');
SELECT function_returns('idem_purge', ARRAY['bigint'], 'bigint', 'idem_purge returns bigint');

-- the declared argument lists (names, VARIADIC, DEFAULT) are part of the interface
SELECT is(pg_get_function_arguments('idem_execute(text, text)'::regprocedure),
	'key text, sql text', 'idem_execute(text, text) arguments are (key text, sql text)');
SELECT is(pg_get_function_arguments('idem_execute(text, text, "any")'::regprocedure),
	'key text, sql text, VARIADIC params "any"',
	'idem_execute arguments are (key text, sql text, VARIADIC params "any")');
SELECT is(pg_get_function_arguments('idem_lookup(text)'::regprocedure),
	'key text', 'idem_lookup argument is (key text)');
SELECT is(pg_get_function_arguments('idem_forget(text)'::regprocedure),
	'key text', 'idem_forget argument is (key text)');
SELECT is(pg_get_function_arguments('idem_purge(bigint)'::regprocedure),
	'max_rows bigint DEFAULT NULL::bigint', 'idem_purge argument is (max_rows bigint DEFAULT NULL)');

-- implemented in C
SELECT function_lang_is('idem_execute', ARRAY['text', 'text'], 'c', 'idem_execute(text, text) is written in C');
SELECT function_lang_is('idem_execute', ARRAY['text', 'text', '"any"'], 'c', 'idem_execute(text, text, "any") is written in C');
SELECT function_lang_is('idem_lookup', ARRAY['text'], 'c', 'idem_lookup is written in C');
SELECT function_lang_is('idem_forget', ARRAY['text'], 'c', 'idem_forget is written in C');
SELECT function_lang_is('idem_purge', ARRAY['bigint'], 'c', 'idem_purge is written in C');

-- strictness: a NULL key or sql must raise 22004 rather than return NULL, and
-- idem_purge(NULL) means "no limit"; lookup and forget of NULL are simply NULL
SELECT isnt_strict('idem_execute', ARRAY['text', 'text'], 'idem_execute(text, text) is not STRICT (NULL key or sql raises 22004)');
SELECT isnt_strict('idem_execute', ARRAY['text', 'text', '"any"'], 'idem_execute(text, text, "any") is not STRICT (NULL args bind as NULL)');
SELECT is_strict('idem_lookup', ARRAY['text'], 'idem_lookup is STRICT');
SELECT is_strict('idem_forget', ARRAY['text'], 'idem_forget is STRICT');
SELECT isnt_strict('idem_purge', ARRAY['bigint'], 'idem_purge is not STRICT (NULL = no limit)');

-- volatility: the writers must be VOLATILE so they are never folded or skipped
SELECT volatility_is('idem_execute', ARRAY['text', 'text'], 'volatile', 'idem_execute(text, text) is VOLATILE');
SELECT volatility_is('idem_execute', ARRAY['text', 'text', '"any"'], 'volatile', 'idem_execute(text, text, "any") is VOLATILE');
SELECT volatility_is('idem_lookup', ARRAY['text'], 'stable', 'idem_lookup is STABLE (reads only)');
SELECT volatility_is('idem_forget', ARRAY['text'], 'volatile', 'idem_forget is VOLATILE');
SELECT volatility_is('idem_purge', ARRAY['bigint'], 'volatile', 'idem_purge is VOLATILE');

-- SECURITY INVOKER: the user's statement must run with the caller's privileges
SELECT isnt_definer('idem_execute', ARRAY['text', 'text'], 'idem_execute(text, text) is not SECURITY DEFINER');
SELECT isnt_definer('idem_execute', ARRAY['text', 'text', '"any"'], 'idem_execute(text, text, "any") is not SECURITY DEFINER');
SELECT isnt_definer('idem_lookup', ARRAY['text'], 'idem_lookup is not SECURITY DEFINER');
SELECT isnt_definer('idem_forget', ARRAY['text'], 'idem_forget is not SECURITY DEFINER');
SELECT isnt_definer('idem_purge', ARRAY['bigint'], 'idem_purge is not SECURITY DEFINER');

-- every function is documented
SELECT ok(obj_description('idem_execute(text, text)'::regprocedure, 'pg_proc') IS NOT NULL,
	'idem_execute(text, text) has a COMMENT');
SELECT ok(obj_description('idem_execute(text, text, "any")'::regprocedure, 'pg_proc') IS NOT NULL,
	'idem_execute(text, text, "any") has a COMMENT');
SELECT ok(obj_description('idem_lookup(text)'::regprocedure, 'pg_proc') IS NOT NULL,
	'idem_lookup has a COMMENT');

-- idem_begin and idem_finish (1.1): C, VOLATILE, not STRICT (a NULL key is 22004,
-- a NULL request skips the check), not SECURITY DEFINER, commented
SELECT is(pg_get_function_arguments('idem_begin(text, jsonb)'::regprocedure),
	'key text, request jsonb DEFAULT NULL::jsonb', 'idem_begin arguments are (key text, request jsonb DEFAULT NULL)');
SELECT is(pg_get_function_arguments('idem_finish(text, jsonb)'::regprocedure),
	'key text, response jsonb', 'idem_finish arguments are (key text, response jsonb)');
SELECT function_returns('idem_begin', ARRAY['text', 'jsonb'], 'jsonb', 'idem_begin returns jsonb');
SELECT function_returns('idem_finish', ARRAY['text', 'jsonb'], 'jsonb', 'idem_finish returns jsonb');
SELECT function_lang_is('idem_begin', ARRAY['text', 'jsonb'], 'c', 'idem_begin is written in C');
SELECT function_lang_is('idem_finish', ARRAY['text', 'jsonb'], 'c', 'idem_finish is written in C');
SELECT isnt_strict('idem_begin', ARRAY['text', 'jsonb'], 'idem_begin is not STRICT');
SELECT isnt_strict('idem_finish', ARRAY['text', 'jsonb'], 'idem_finish is not STRICT');
SELECT volatility_is('idem_begin', ARRAY['text', 'jsonb'], 'volatile', 'idem_begin is VOLATILE');
SELECT volatility_is('idem_finish', ARRAY['text', 'jsonb'], 'volatile', 'idem_finish is VOLATILE');
SELECT isnt_definer('idem_begin', ARRAY['text', 'jsonb'], 'idem_begin is not SECURITY DEFINER');
SELECT isnt_definer('idem_finish', ARRAY['text', 'jsonb'], 'idem_finish is not SECURITY DEFINER');
SELECT ok(obj_description('idem_begin(text, jsonb)'::regprocedure, 'pg_proc') IS NOT NULL,
	'idem_begin has a COMMENT');
SELECT ok(obj_description('idem_finish(text, jsonb)'::regprocedure, 'pg_proc') IS NOT NULL,
	'idem_finish has a COMMENT');
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'idempotency'), '1.1',
	'CREATE EXTENSION installs version 1.1');
SELECT ok(obj_description('idem_forget(text)'::regprocedure, 'pg_proc') IS NOT NULL,
	'idem_forget has a COMMENT');
SELECT ok(obj_description('idem_purge(bigint)'::regprocedure, 'pg_proc') IS NOT NULL,
	'idem_purge has a COMMENT');

-- the dedup guard: idem_guard / idem_unguard, and the trigger function they install
SELECT has_function('idem_guard', ARRAY['regclass', 'name', 'interval', 'text'],
	'idem_guard(regclass, name, interval, text) exists');
SELECT has_function('idem_unguard', ARRAY['regclass'], 'idem_unguard(regclass) exists');
SELECT has_function('idem_guard_trigger', ARRAY[]::name[], 'idem_guard_trigger() exists');
SELECT function_returns('idem_guard', ARRAY['regclass', 'name', 'interval', 'text'], 'void',
	'idem_guard returns void');
SELECT function_returns('idem_unguard', ARRAY['regclass'], 'void', 'idem_unguard returns void');
SELECT function_returns('idem_guard_trigger', ARRAY[]::name[], 'trigger',
	'idem_guard_trigger returns trigger');
SELECT is(pg_get_function_arguments('idem_guard(regclass, name, interval, text)'::regprocedure),
	'tbl regclass, key_column name, ttl interval DEFAULT NULL::interval, on_duplicate text DEFAULT ''skip''::text',
	'idem_guard arguments are (tbl regclass, key_column name, ttl interval DEFAULT NULL, on_duplicate text DEFAULT ''skip'')');
SELECT is(pg_get_function_arguments('idem_unguard(regclass)'::regprocedure),
	'tbl regclass', 'idem_unguard argument is (tbl regclass)');
SELECT function_lang_is('idem_guard', ARRAY['regclass', 'name', 'interval', 'text'], 'c', 'idem_guard is written in C');
SELECT function_lang_is('idem_unguard', ARRAY['regclass'], 'c', 'idem_unguard is written in C');
SELECT function_lang_is('idem_guard_trigger', ARRAY[]::name[], 'c', 'idem_guard_trigger is written in C');
-- a NULL ttl means "use idempotency.ttl", so idem_guard must not be STRICT
SELECT isnt_strict('idem_guard', ARRAY['regclass', 'name', 'interval', 'text'], 'idem_guard is not STRICT (NULL ttl = idempotency.ttl)');
SELECT volatility_is('idem_guard', ARRAY['regclass', 'name', 'interval', 'text'], 'volatile', 'idem_guard is VOLATILE');
SELECT volatility_is('idem_unguard', ARRAY['regclass'], 'volatile', 'idem_unguard is VOLATILE');
-- installing a trigger needs the caller's own rights on the table
SELECT isnt_definer('idem_guard', ARRAY['regclass', 'name', 'interval', 'text'], 'idem_guard is not SECURITY DEFINER');
SELECT isnt_definer('idem_unguard', ARRAY['regclass'], 'idem_unguard is not SECURITY DEFINER');
SELECT ok(obj_description('idem_guard(regclass, name, interval, text)'::regprocedure, 'pg_proc') IS NOT NULL,
	'idem_guard has a COMMENT');
SELECT ok(obj_description('idem_unguard(regclass)'::regprocedure, 'pg_proc') IS NOT NULL,
	'idem_unguard has a COMMENT');
SELECT ok(obj_description('idem_guard_trigger()'::regprocedure, 'pg_proc') IS NOT NULL,
	'idem_guard_trigger has a COMMENT');

-- the extension's functions are exactly these: no stray overloads
SELECT is(
	(SELECT array_agg(p.oid::regprocedure::text ORDER BY p.oid::regprocedure::text)
	   FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
	  WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
	    AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'idempotency')),
	ARRAY['idem_begin(text,jsonb)', 'idem_colocate_keys(regclass)',
	      'idem_execute(text,text)', 'idem_execute(text,text,"any")',
	      'idem_execute_colocated(regclass,"any",text,text)',
	      'idem_execute_colocated(regclass,"any",text,text,"any")',
	      'idem_finish(text,jsonb)', 'idem_forget(text)',
	      'idem_forget_colocated(regclass,"any",text)',
	      'idem_forget_dropped_guards()',
	      'idem_guard(regclass,name,interval,text)', 'idem_guard_trigger()',
	      'idem_lookup(text)', 'idem_lookup_colocated(regclass,"any",text)',
	      'idem_purge(bigint)', 'idem_stats()', 'idem_stats_reset()',
	      'idem_unguard(regclass)'],
	'the extension owns exactly these functions');

-- dropping a guarded table forgets its guard: an sql_drop event trigger
SELECT is(
	(SELECT evtevent || ':' || evtfoid::regprocedure::text || ':' || evtenabled::text
			|| ':' || coalesce(evttags::text, 'every command')
	   FROM pg_event_trigger WHERE evtname = 'idempotency_forget_dropped_guards'),
	'sql_drop:idem_forget_dropped_guards():A:every command',
	'the sql_drop event trigger is installed, fires for every drop command, and always (also under session_replication_role = replica)');
SELECT ok(NOT has_function_privilege('public', 'idem_forget_dropped_guards()', 'EXECUTE'),
	'PUBLIC cannot call the event trigger function directly');

-- ---------------------------------------------------------------------------
-- settings and their defaults
-- ---------------------------------------------------------------------------
SELECT is(current_setting('idempotency.ttl'), '1d', 'idempotency.ttl defaults to 1d (24h)');
SELECT is((SELECT setting || ' ' || unit FROM pg_settings WHERE name = 'idempotency.ttl'),
	'86400 s', 'idempotency.ttl is 86400 seconds');
SELECT is((SELECT setting FROM pg_settings WHERE name = 'idempotency.max_key_length'),
	'255', 'idempotency.max_key_length defaults to 255');
SELECT is((SELECT unit FROM pg_settings WHERE name = 'idempotency.max_key_length'),
	'B', 'idempotency.max_key_length is in bytes');
SELECT is(current_setting('idempotency.max_result_size'), '1MB',
	'idempotency.max_result_size defaults to 1MB');
SELECT is((SELECT setting || ' ' || unit FROM pg_settings WHERE name = 'idempotency.max_result_size'),
	'1048576 B', 'idempotency.max_result_size is 1048576 bytes');
SELECT is(current_setting('idempotency.wait'), 'on', 'idempotency.wait defaults to on');
SELECT is((SELECT vartype FROM pg_settings WHERE name = 'idempotency.wait'),
	'bool', 'idempotency.wait is a boolean');
SELECT is(
	(SELECT array_agg(name::text ORDER BY name) FROM pg_settings WHERE name LIKE 'idempotency.%'),
	ARRAY['idempotency.max_key_length', 'idempotency.max_result_size', 'idempotency.purge_interval',
	      'idempotency.tenant', 'idempotency.ttl', 'idempotency.wait'],
	'the extension defines exactly these settings');
SELECT is(
	(SELECT array_agg(DISTINCT context::text) FROM pg_settings
	  WHERE name LIKE 'idempotency.%' AND name <> 'idempotency.purge_interval'),
	ARRAY['user'],
	'every setting but the purge worker''s can be changed by any user, per session or transaction');
SELECT is((SELECT context::text FROM pg_settings WHERE name = 'idempotency.purge_interval'),
	'sighup', 'idempotency.purge_interval is set in the server configuration (reload)');
SELECT is(current_setting('idempotency.purge_interval'), '1min',
	'idempotency.purge_interval defaults to 1min');
SELECT has_view('idempotency_stats', 'the view idempotency_stats exists');
SELECT is((SELECT count(*)::int FROM pg_settings WHERE name LIKE 'idempotency.%' AND setting <> boot_val),
	0, 'every setting is at its default');

-- the settings accept units: SET idempotency.ttl = '1s' etc.
SELECT lives_ok($$SET LOCAL idempotency.ttl = '1s'$$, 'idempotency.ttl accepts a unit (1s)');
SELECT is(current_setting('idempotency.ttl'), '1s', 'idempotency.ttl is now 1s');
SELECT lives_ok($$SET LOCAL idempotency.ttl = '2h'$$, 'idempotency.ttl accepts 2h');
SELECT is((SELECT setting FROM pg_settings WHERE name = 'idempotency.ttl'), '7200', '2h is 7200 seconds');
RESET idempotency.ttl;

-- the idempotency. prefix is reserved: a misspelt setting is an error, not a placeholder
SELECT throws_ok($$SET idempotency.nonexistent = 1$$, '42602',
	'invalid configuration parameter name "idempotency.nonexistent"',
	'SET of an unknown idempotency.* setting fails with 42602');
SELECT throws_ok($$SELECT set_config('idempotency.tll', '1s', true)$$, '42602',
	'invalid configuration parameter name "idempotency.tll"',
	'set_config of a misspelt idempotency.* setting fails with 42602');

SELECT * FROM finish();
ROLLBACK;
