-- row_level_security.sql: keys belong to the calling role.  Two roles using the
-- same key string do not collide; no role can read, replay or forget another
-- role's keys; superusers see all.  The user's statement runs with the caller's
-- privileges, and a hostile search_path cannot redirect the extension's own
-- queries to a decoy keys table, function or operator.
-- Runs in one transaction and rolls back: the roles, schema and tables go away too.
BEGIN;
SELECT plan(54);

-- ---------------------------------------------------------------------------
-- setup (as superuser): two ordinary roles, a table both may write, a table
-- both may only read, and a schema alice owns for the search_path attack
-- ---------------------------------------------------------------------------
CREATE ROLE regress_alice;
CREATE ROLE regress_bob;

CREATE TABLE public.regress_items (id serial PRIMARY KEY, owner text, what text);
GRANT SELECT, INSERT ON public.regress_items TO regress_alice, regress_bob;
GRANT USAGE ON SEQUENCE public.regress_items_id_seq TO regress_alice, regress_bob;

CREATE TABLE public.regress_secrets (owner text, what text);
GRANT SELECT ON public.regress_secrets TO regress_alice, regress_bob;	-- no INSERT

CREATE SCHEMA regress_evil AUTHORIZATION regress_alice;

-- ===========================================================================
-- SECURITY: search_path hijack.  This runs first, so that the extension
-- prepares its own statements in this backend for the first time under the
-- hostile search_path.
-- Alice puts a schema of her own in front of pg_catalog and fills it with a
-- decoy idempotency_keys table, a now() function and the operators the
-- extension's queries would use.  Each of them logs who called it.  If any
-- were picked up by the extension's queries (which run as the keys table
-- owner), alice would run code as that owner or divert keys to her table.
-- ===========================================================================
SET LOCAL ROLE regress_alice;

CREATE TABLE regress_evil.calls (fn text, called_by name);
GRANT INSERT ON regress_evil.calls TO PUBLIC;

CREATE TABLE regress_evil.idempotency_keys (
	owner oid, scope text, key text, fingerprint bytea, result jsonb,
	created_at timestamptz DEFAULT pg_catalog.now(), expires_at timestamptz);
GRANT ALL ON regress_evil.idempotency_keys TO PUBLIC;

CREATE FUNCTION regress_evil.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO regress_evil.calls VALUES ('now()', current_user);
	RETURN 'infinity'::pg_catalog.timestamptz;
END $$;

CREATE FUNCTION regress_evil.text_eq(a text, b text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO regress_evil.calls VALUES ('=(text,text)', current_user);
	RETURN pg_catalog.texteq(a, b);
END $$;
CREATE OPERATOR regress_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_evil.text_eq);

CREATE FUNCTION regress_evil.text_cat(a text, b text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO regress_evil.calls VALUES ('||(text,text)', current_user);
	RETURN pg_catalog.textcat(a, b);
END $$;
CREATE OPERATOR regress_evil.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_evil.text_cat);

CREATE FUNCTION regress_evil.bytea_eq(a bytea, b bytea) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO regress_evil.calls VALUES ('=(bytea,bytea)', current_user);
	RETURN pg_catalog.byteaeq(a, b);
END $$;
CREATE OPERATOR regress_evil.= (LEFTARG = bytea, RIGHTARG = bytea, FUNCTION = regress_evil.bytea_eq);

CREATE FUNCTION regress_evil.ts_gt(a timestamptz, b timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO regress_evil.calls VALUES ('>(timestamptz,timestamptz)', current_user);
	RETURN pg_catalog.timestamptz_gt(a, b);
END $$;
CREATE OPERATOR regress_evil.> (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = regress_evil.ts_gt);

CREATE FUNCTION regress_evil.ts_le(a timestamptz, b timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO regress_evil.calls VALUES ('<=(timestamptz,timestamptz)', current_user);
	RETURN pg_catalog.timestamptz_le(a, b);
END $$;
CREATE OPERATOR regress_evil.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = regress_evil.ts_le);

CREATE FUNCTION regress_evil.ts_pl(a timestamptz, b interval) RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO regress_evil.calls VALUES ('+(timestamptz,interval)', current_user);
	RETURN pg_catalog.timestamptz_pl_interval(a, b);
END $$;
CREATE OPERATOR regress_evil.+ (LEFTARG = timestamptz, RIGHTARG = interval, FUNCTION = regress_evil.ts_pl);

CREATE FUNCTION regress_evil.tid_eq(a tid, b tid) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO regress_evil.calls VALUES ('=(tid,tid)', current_user);
	RETURN pg_catalog.tideq(a, b);
END $$;
CREATE OPERATOR regress_evil.= (LEFTARG = tid, RIGHTARG = tid, FUNCTION = regress_evil.tid_eq);

-- collect what the functions return under the hostile search_path
CREATE TEMP TABLE regress_hijack (step int, r jsonb, b boolean, n bigint);

-- the attack: alice's schema first, even before pg_catalog
SET LOCAL search_path = regress_evil, pg_catalog, public;
-- (the user's statement legitimately runs under this search_path: it names
-- its table schema-qualified and uses no operator, so only the extension's
-- own queries could reach alice's objects)
INSERT INTO regress_hijack (step, r)
	SELECT 1, public.idem_execute('hijack-key',
		'INSERT INTO public.regress_items (owner, what) VALUES ($1, $2) RETURNING owner, what',
		'alice', 'hijack');
INSERT INTO regress_hijack (step, r)
	SELECT 2, public.idem_execute('hijack-key',
		'INSERT INTO public.regress_items (owner, what) VALUES ($1, $2) RETURNING owner, what',
		'alice', 'hijack');
INSERT INTO regress_hijack (step, r) SELECT 3, public.idem_lookup('hijack-key');
INSERT INTO regress_hijack (step, b) SELECT 4, public.idem_forget('hijack-no-such-key');
INSERT INTO regress_hijack (step, n) SELECT 5, public.idem_purge();
RESET search_path;
RESET ROLE;

SELECT is((SELECT r FROM regress_hijack WHERE step = 1),
	'{"rows": [{"what": "hijack", "owner": "alice"}], "command": "INSERT", "replayed": false, "row_count": 1}'::jsonb,
	'hostile search_path: the first call runs the statement');
SELECT is((SELECT r FROM regress_hijack WHERE step = 2),
	'{"rows": [{"what": "hijack", "owner": "alice"}], "command": "INSERT", "replayed": true, "row_count": 1}'::jsonb,
	'hostile search_path: the retry replays');
SELECT is((SELECT r FROM regress_hijack WHERE step = 3),
	'{"rows": [{"what": "hijack", "owner": "alice"}], "command": "INSERT", "row_count": 1}'::jsonb,
	'hostile search_path: idem_lookup reads the real keys table');
SELECT is((SELECT b FROM regress_hijack WHERE step = 4), false,
	'hostile search_path: idem_forget of an unknown key is false');
SELECT is((SELECT n FROM regress_hijack WHERE step = 5), 0::bigint,
	'hostile search_path: idem_purge deletes nothing live');
SELECT is((SELECT count(*)::int FROM public.regress_items WHERE what = 'hijack'), 1,
	'hostile search_path: the statement ran exactly once');
SELECT results_eq(
	$$SELECT owner::text, key COLLATE "default", result FROM public.idempotency_keys WHERE key = 'hijack-key'$$,
	$$VALUES ('regress_alice', 'hijack-key',
	          '{"rows": [{"what": "hijack", "owner": "alice"}], "command": "INSERT", "row_count": 1}'::jsonb)$$,
	'hostile search_path: the key went to the real public.idempotency_keys');
SELECT ok((SELECT expires_at > now() AND expires_at < 'infinity' FROM public.idempotency_keys
	  WHERE key = 'hijack-key'),
	'hostile search_path: the key expires at pg_catalog.now() + ttl, not at the decoy now()');
SELECT is_empty($$SELECT * FROM regress_evil.idempotency_keys$$,
	'hostile search_path: the decoy idempotency_keys table got nothing');
SELECT is_empty($$SELECT * FROM regress_evil.calls$$,
	'hostile search_path: none of alice''s functions or operators was called');

-- ===========================================================================
-- two roles, one key string: no collision
-- ===========================================================================
SET LOCAL ROLE regress_alice;
SELECT is(
	idem_execute('same-key',
		'INSERT INTO regress_items (owner, what) VALUES ($1, $2) RETURNING owner, what, current_user::text AS ran_as',
		'alice', 'apples'),
	'{"rows": [{"what": "apples", "owner": "alice", "ran_as": "regress_alice"}], "command": "INSERT", "replayed": false, "row_count": 1}'::jsonb,
	'alice: first call runs her statement, as regress_alice');
RESET ROLE;

SET LOCAL ROLE regress_bob;
-- a different request under the same key string: for alice this would be IK001,
-- but bob's keys are his own, so it simply runs
SELECT lives_ok(
	$$SELECT idem_execute('same-key',
		'INSERT INTO regress_items (what, owner) VALUES ($1, $2) RETURNING owner, what, current_user::text AS ran_as',
		'bananas', 'bob')$$,
	'bob: a different request under alice''s key string is not IK001');
SELECT is(
	(SELECT count(*)::int FROM regress_items WHERE owner = 'bob' AND what = 'bananas'), 1,
	'bob: his statement ran');
SELECT is(
	idem_execute('same-key',
		'INSERT INTO regress_items (what, owner) VALUES ($1, $2) RETURNING owner, what, current_user::text AS ran_as',
		'bananas', 'bob'),
	'{"rows": [{"what": "bananas", "owner": "bob", "ran_as": "regress_bob"}], "command": "INSERT", "replayed": true, "row_count": 1}'::jsonb,
	'bob: his retry replays his own result');
-- bob's key holds bob's request: alice's request under it is IK001 for bob
SELECT throws_ok(
	$$SELECT idem_execute('same-key',
		'INSERT INTO regress_items (owner, what) VALUES ($1, $2) RETURNING owner, what, current_user::text AS ran_as',
		'alice', 'apples')$$,
	'IK001', 'idempotency key "same-key" was used with a different request',
	'bob: alice''s request under bob''s own same-key is IK001 (his key holds his request)');
RESET ROLE;

SET LOCAL ROLE regress_alice;
SELECT is(
	idem_execute('same-key',
		'INSERT INTO regress_items (owner, what) VALUES ($1, $2) RETURNING owner, what, current_user::text AS ran_as',
		'alice', 'apples'),
	'{"rows": [{"what": "apples", "owner": "alice", "ran_as": "regress_alice"}], "command": "INSERT", "replayed": true, "row_count": 1}'::jsonb,
	'alice: her retry replays her own result, not bob''s');
SELECT throws_ok(
	$$SELECT idem_execute('same-key',
		'INSERT INTO regress_items (what, owner) VALUES ($1, $2) RETURNING owner, what, current_user::text AS ran_as',
		'bananas', 'bob')$$,
	'IK001', 'idempotency key "same-key" was used with a different request',
	'alice: bob''s request under alice''s same-key is IK001');
RESET ROLE;

SELECT results_eq(
	$$SELECT owner, what FROM regress_items WHERE what <> 'hijack' ORDER BY owner$$,
	$$VALUES ('alice', 'apples'), ('bob', 'bananas')$$,
	'each role''s statement ran exactly once');

-- the identical request from two roles: each runs it once, neither replays the other's
SET LOCAL ROLE regress_alice;
SELECT is(idem_execute('shared-request', 'SELECT current_user::text AS who'),
	'{"rows": [{"who": "regress_alice"}], "command": "SELECT", "replayed": false, "row_count": 1}'::jsonb,
	'alice: shared-request runs for alice');
RESET ROLE;
SET LOCAL ROLE regress_bob;
SELECT is(idem_execute('shared-request', 'SELECT current_user::text AS who'),
	'{"rows": [{"who": "regress_bob"}], "command": "SELECT", "replayed": false, "row_count": 1}'::jsonb,
	'bob: the identical request under the same key runs for bob instead of replaying alice''s result');
RESET ROLE;

-- a key only alice has
SET LOCAL ROLE regress_alice;
SELECT is(idem_execute('alice-only', 'SELECT 1 AS n'),
	'{"rows": [{"n": 1}], "command": "SELECT", "replayed": false, "row_count": 1}'::jsonb,
	'alice: alice-only is recorded');
RESET ROLE;

-- ===========================================================================
-- reading keys: each role sees only its own rows
-- ===========================================================================
SET LOCAL ROLE regress_alice;
SELECT results_eq(
	$$SELECT owner::text, key COLLATE "default" FROM idempotency_keys ORDER BY key$$,
	$$VALUES ('regress_alice', 'alice-only'), ('regress_alice', 'hijack-key'),
	         ('regress_alice', 'same-key'), ('regress_alice', 'shared-request')$$,
	'alice: SELECT * FROM idempotency_keys shows only her keys');
SELECT is(
	(SELECT result FROM idempotency_keys WHERE key = 'same-key'),
	'{"rows": [{"what": "apples", "owner": "alice", "ran_as": "regress_alice"}], "command": "INSERT", "row_count": 1}'::jsonb,
	'alice: her same-key row holds her result');
SELECT is(idem_lookup('same-key'),
	'{"rows": [{"what": "apples", "owner": "alice", "ran_as": "regress_alice"}], "command": "INSERT", "row_count": 1}'::jsonb,
	'alice: idem_lookup(''same-key'') returns her result');
SELECT is_empty($$SELECT * FROM idempotency_keys WHERE owner::text <> 'regress_alice'$$,
	'alice: no row of another scope is visible, even when asked for');
RESET ROLE;

SET LOCAL ROLE regress_bob;
SELECT results_eq(
	$$SELECT owner::text, key COLLATE "default" FROM idempotency_keys ORDER BY key$$,
	$$VALUES ('regress_bob', 'same-key'), ('regress_bob', 'shared-request')$$,
	'bob: SELECT * FROM idempotency_keys shows only his keys');
SELECT is(idem_lookup('same-key'),
	'{"rows": [{"what": "bananas", "owner": "bob", "ran_as": "regress_bob"}], "command": "INSERT", "row_count": 1}'::jsonb,
	'bob: idem_lookup(''same-key'') returns his result');
SELECT is(idem_lookup('alice-only'), NULL::jsonb,
	'bob: idem_lookup of a key only alice has is NULL');
SELECT is_empty($$SELECT * FROM idempotency_keys WHERE key = 'alice-only'$$,
	'bob: alice''s key is not visible to him');
RESET ROLE;

-- superusers see all
SELECT results_eq(
	$$SELECT owner::text, key COLLATE "default" FROM idempotency_keys WHERE key IN ('same-key', 'shared-request') ORDER BY key, scope$$,
	$$VALUES ('regress_alice', 'same-key'), ('regress_bob', 'same-key'),
	         ('regress_alice', 'shared-request'), ('regress_bob', 'shared-request')$$,
	'superuser: SELECT shows the keys of both roles');
SELECT is((SELECT count(*)::int FROM idempotency_keys WHERE owner::text LIKE 'regress\_%'), 6,
	'superuser: sees all six keys of alice and bob');
SELECT is(idem_lookup('same-key'), NULL::jsonb,
	'superuser: idem_lookup still looks in the superuser''s own scope only');

-- ===========================================================================
-- forgetting: only one's own keys
-- ===========================================================================
SET LOCAL ROLE regress_bob;
SELECT is(idem_forget('alice-only'), false,
	'bob: idem_forget of a key only alice has returns false');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM idempotency_keys WHERE owner::text = 'regress_alice' AND key = 'alice-only'), 1,
	'alice''s key still exists after bob''s idem_forget');
SET LOCAL ROLE regress_alice;
SELECT is(idem_lookup('alice-only'),
	'{"rows": [{"n": 1}], "command": "SELECT", "row_count": 1}'::jsonb,
	'alice: her key is still live after bob tried to forget it');
RESET ROLE;

-- bob's identical request under alice's key runs for bob, it does not replay hers
SET LOCAL ROLE regress_bob;
SELECT is(idem_execute('alice-only', 'SELECT 1 AS n'),
	'{"rows": [{"n": 1}], "command": "SELECT", "replayed": false, "row_count": 1}'::jsonb,
	'bob: the same request under alice-only runs (replayed false) for bob');
-- forgetting his own same-key leaves alice's same-key alone
SELECT is(idem_forget('same-key'), true, 'bob: idem_forget of his own same-key returns true');
SELECT is(idem_lookup('same-key'), NULL::jsonb, 'bob: his same-key is gone');
RESET ROLE;
SELECT results_eq(
	$$SELECT owner::text FROM idempotency_keys WHERE key = 'same-key'$$,
	$$VALUES ('regress_alice')$$,
	'bob forgetting same-key left alice''s same-key in place');
SET LOCAL ROLE regress_alice;
SELECT is(
	(idem_execute('same-key',
		'INSERT INTO regress_items (owner, what) VALUES ($1, $2) RETURNING owner, what, current_user::text AS ran_as',
		'alice', 'apples')) -> 'replayed',
	'true'::jsonb, 'alice: her same-key still replays after bob forgot his');
RESET ROLE;

-- ===========================================================================
-- the user's statement runs with the caller's privileges (SECURITY INVOKER)
-- ===========================================================================
SET LOCAL ROLE regress_bob;
SELECT throws_ok(
	$$SELECT idem_execute('secret-key',
		'INSERT INTO regress_secrets (owner, what) VALUES ($1, $2)', 'bob', 'stolen')$$,
	'42501', NULL,
	'bob: idem_execute of an INSERT into a table he may not write fails with 42501');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM idempotency_keys WHERE key = 'secret-key'), 0,
	'the failed statement recorded no key');
SELECT is_empty($$SELECT * FROM regress_secrets$$, 'the failed statement wrote nothing');

-- the statement's privileges are the caller's, not the keys table owner's:
-- it cannot write the keys table, nor read past row level security
SET LOCAL ROLE regress_bob;
SELECT throws_ok(
	$$SELECT idem_execute('steal-1', 'DELETE FROM idempotency_keys')$$,
	'42501', NULL, 'bob: idem_execute(''DELETE FROM idempotency_keys'') fails with 42501');
SELECT throws_ok(
	$$SELECT idem_execute('steal-2', 'UPDATE idempotency_keys SET expires_at = now()')$$,
	'42501', NULL, 'bob: idem_execute(''UPDATE idempotency_keys ...'') fails with 42501');
SELECT throws_ok(
	$$SELECT idem_execute('steal-3',
		'INSERT INTO idempotency_keys (owner, scope, key, expires_at) VALUES ($1::regrole, '''', $2, ''infinity'')',
		'regress_alice', 'forged')$$,
	'42501', NULL, 'bob: idem_execute cannot forge a key for alice');
-- (the statement may also see the row of its own key, claimed before it runs)
SELECT is(
	(SELECT array_agg(DISTINCT e ->> 'owner')
	   FROM jsonb_array_elements(
	        idem_execute('peek', 'SELECT owner, key FROM idempotency_keys ORDER BY key') -> 'rows') AS e),
	ARRAY['regress_bob'],
	'bob: a SELECT run by idem_execute sees only his own keys (row level security applies)');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM idempotency_keys WHERE key LIKE 'steal-%'), 0,
	'the refused statements recorded no key');

-- once bob may write the table, the same call runs: nothing was recorded before
GRANT INSERT ON regress_secrets TO regress_bob;
SET LOCAL ROLE regress_bob;
SELECT is(
	idem_execute('secret-key',
		'INSERT INTO regress_secrets (owner, what) VALUES ($1, $2)', 'bob', 'stolen'),
	'{"rows": [], "command": "INSERT", "replayed": false, "row_count": 1}'::jsonb,
	'bob: after GRANT INSERT the retried call runs (no key was left by the failure)');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM regress_secrets), 1, 'the statement wrote once');

-- ===========================================================================
-- guard scopes belong to their table: another role cannot borrow one.
-- The guard id sits in the trigger's arguments, which any role can read in
-- pg_trigger.  Bob attaches idem_guard_trigger to a table of his own with
-- alice's guard id (and a 100-year ttl), inserts, and then idem_unguards his
-- table.  Neither may plant keys in alice's guard scope or delete them: alice's
-- new event must go in, and her old event must stay deduplicated.
-- Bob's steps may fail anywhere (that is one way to refuse them), so they run
-- in blocks that swallow errors; only their effect on alice's table is checked.
-- ===========================================================================
CREATE TABLE public.regress_alice_events (event_id text, v int);
ALTER TABLE public.regress_alice_events OWNER TO regress_alice;
CREATE TABLE public.regress_bob_events (event_id text, v int);
ALTER TABLE public.regress_bob_events OWNER TO regress_bob;

SET LOCAL ROLE regress_alice;
SELECT lives_ok($$SELECT idem_guard('regress_alice_events', 'event_id')$$,
	'alice: guards her own table');
INSERT INTO regress_alice_events VALUES ('evt-0', 0);
RESET ROLE;

SET LOCAL ROLE regress_bob;
DO $$
DECLARE
	gid text;
BEGIN
	SELECT split_part(encode(tgargs, 'escape'), '\000', 1) INTO gid
	  FROM pg_trigger
	 WHERE tgrelid = 'public.regress_alice_events'::regclass AND tgname = 'idempotency_guard';
	BEGIN
		EXECUTE format('CREATE TRIGGER idempotency_guard BEFORE INSERT ON public.regress_bob_events'
					   ' FOR EACH ROW EXECUTE FUNCTION idem_guard_trigger(%L, %L, %L, %L)',
					   gid, 'event_id', '100 years', 'skip');
	EXCEPTION WHEN OTHERS THEN NULL;
	END;
	BEGIN
		INSERT INTO public.regress_bob_events VALUES ('evt-1', 1);
	EXCEPTION WHEN OTHERS THEN NULL;
	END;
END $$;
RESET ROLE;

SELECT is(
	(SELECT count(*)::int FROM idempotency_keys k JOIN pg_trigger t
	     ON k.owner::oid = 0 AND k.scope = split_part(encode(t.tgargs, 'escape'), '\000', 1)
	  WHERE t.tgrelid = 'regress_alice_events'::regclass AND t.tgname = 'idempotency_guard'
	    AND k.key = 'evt-1'),
	0, 'guard: bob''s inserts recorded no key in alice''s guard scope');
SET LOCAL ROLE regress_alice;
INSERT INTO regress_alice_events VALUES ('evt-1', 1);
RESET ROLE;
SELECT is((SELECT count(*)::int FROM regress_alice_events WHERE event_id = 'evt-1'), 1,
	'guard: alice''s first evt-1 goes in (bob could not pre-empt it)');

SET LOCAL ROLE regress_bob;
DO $$
BEGIN
	PERFORM idem_unguard('public.regress_bob_events');
EXCEPTION WHEN OTHERS THEN NULL;
END $$;
RESET ROLE;

SET LOCAL ROLE regress_alice;
INSERT INTO regress_alice_events VALUES ('evt-0', 0);
RESET ROLE;
SELECT is((SELECT count(*)::int FROM regress_alice_events WHERE event_id = 'evt-0'), 1,
	'guard: alice''s retried evt-0 is still deduplicated after bob''s idem_unguard (he deleted none of her keys)');

SELECT * FROM finish();
ROLLBACK;
