--
-- roles: keys belong to the calling role (current_user).  Two roles using
-- the same key string do not collide; no role can read, replay or forget
-- another role's keys; superusers see all.  Ordinary roles cannot write
-- the keys table directly, and the statement runs with the caller's
-- privileges (SECURITY INVOKER), never the extension owner's.
--
\set VERBOSITY terse

CREATE ROLE regress_idem_a;
CREATE ROLE regress_idem_b;
CREATE ROLE "regress_idem_odd ""q"":x";
CREATE TABLE roles_t (id serial PRIMARY KEY, who text DEFAULT current_user, v text);
GRANT SELECT, INSERT ON roles_t TO regress_idem_a, regress_idem_b, "regress_idem_odd ""q"":x";
GRANT USAGE ON SEQUENCE roles_t_id_seq TO regress_idem_a, regress_idem_b, "regress_idem_odd ""q"":x";
-- a table only regress_idem_a may write
CREATE TABLE roles_secret (v text);
GRANT SELECT, INSERT ON roles_secret TO regress_idem_a;
GRANT SELECT ON roles_secret TO regress_idem_b;

-- regress_idem_a makes two keys
SET ROLE regress_idem_a;
SELECT idem_execute('shared-key', 'INSERT INTO roles_t(v) VALUES ($1) RETURNING id, who, v', 'same');
SELECT idem_execute('a-only', 'INSERT INTO roles_t(v) VALUES ($1) RETURNING id, who, v', 'a');
RESET ROLE;

-- regress_idem_b uses the same key string with the same request: no
-- collision and no replay of regress_idem_a's result; it runs for b
SET ROLE regress_idem_b;
SELECT idem_execute('shared-key', 'INSERT INTO roles_t(v) VALUES ($1) RETURNING id, who, v', 'same');
-- and b's retry replays b's own result
SELECT idem_execute('shared-key', 'INSERT INTO roles_t(v) VALUES ($1) RETURNING id, who, v', 'same');
-- a different request under the same key string is b's own business:
-- IK001 compares with b's request, not a's
SELECT idem_execute('shared-key', 'INSERT INTO roles_t(v) VALUES ($1) RETURNING id, who, v', 'other');
-- b cannot read a's key ...
SELECT idem_lookup('a-only') IS NULL AS cannot_lookup;
SELECT idem_lookup('shared-key') -> 'rows' -> 0 ->> 'who' AS lookup_sees;
-- ... nor forget it ...
SELECT idem_forget('a-only') AS forgot;
-- ... nor replay it: the same request under a's key runs for b
SELECT idem_execute('a-only', 'INSERT INTO roles_t(v) VALUES ($1) RETURNING id, who, v', 'a');
-- selecting from the keys table shows b's rows only
SELECT owner, scope, key, result -> 'rows' -> 0 ->> 'who' AS who FROM idempotency_keys ORDER BY key;
SELECT current_user, count(*) AS visible FROM idempotency_keys;
RESET ROLE;

-- regress_idem_a still has both keys, untouched, and replays them
SET ROLE regress_idem_a;
SELECT owner, scope, key, result -> 'rows' -> 0 ->> 'who' AS who FROM idempotency_keys ORDER BY key;
SELECT idem_execute('a-only', 'INSERT INTO roles_t(v) VALUES ($1) RETURNING id, who, v', 'a') -> 'replayed' AS replayed;
SELECT idem_execute('shared-key', 'INSERT INTO roles_t(v) VALUES ($1) RETURNING id, who, v', 'same') -> 'replayed' AS replayed;
RESET ROLE;

-- a role with quotes, spaces and a colon in its name has its own scope too
SET ROLE "regress_idem_odd ""q"":x";
SELECT idem_execute('shared-key', 'INSERT INTO roles_t(v) VALUES ($1) RETURNING who', 'same');
SELECT owner, scope, key FROM idempotency_keys ORDER BY key;
SELECT idem_lookup('shared-key') -> 'rows' -> 0 ->> 'who' AS lookup_sees;
RESET ROLE;

-- ordinary roles cannot write the keys table directly: 42501
SET ROLE regress_idem_b;
\set VERBOSITY sqlstate
INSERT INTO idempotency_keys(owner, scope, key, expires_at) VALUES ('regress_idem_b', '', 'forged', now() + interval '1 day');
UPDATE idempotency_keys SET result = '{}' WHERE key = 'shared-key';
DELETE FROM idempotency_keys WHERE key = 'shared-key';
TRUNCATE idempotency_keys;
\set VERBOSITY terse
INSERT INTO idempotency_keys(owner, scope, key, expires_at) VALUES ('regress_idem_a', '', 'forged', now() + interval '1 day');
UPDATE idempotency_keys SET result = '{}' WHERE key = 'shared-key';
DELETE FROM idempotency_keys WHERE key = 'shared-key';
TRUNCATE idempotency_keys;
RESET ROLE;

-- the statement runs with the caller's privileges: b may not insert into
-- roles_secret, so the call fails with 42501 and records nothing ...
SET ROLE regress_idem_b;
\set VERBOSITY sqlstate
SELECT idem_execute('b-secret', 'INSERT INTO roles_secret VALUES ($1)', 'b was here');
\set VERBOSITY terse
SELECT idem_execute('b-secret', 'INSERT INTO roles_secret VALUES ($1)', 'b was here');
SELECT idem_lookup('b-secret') IS NULL AS nothing_recorded;
-- ... and the statement cannot use the extension's own rights on the keys
-- table either: it sees b's rows only (2: a-only and shared-key; b-peek's
-- own row is written after its statement ran), and cannot write them
SELECT idem_execute('b-peek', 'SELECT count(*) AS n, min(owner::text) AS owner FROM idempotency_keys') -> 'rows' AS rows;
SELECT idem_execute('b-wipe', 'DELETE FROM idempotency_keys');
SELECT idem_execute('b-forge', 'UPDATE idempotency_keys SET result = NULL');
-- inside the statement, current_user is the caller
SELECT idem_execute('b-whoami', 'SELECT current_user AS u') -> 'rows' AS rows;
RESET ROLE;
-- a may insert into roles_secret through idem_execute
SET ROLE regress_idem_a;
SELECT idem_execute('a-secret', 'INSERT INTO roles_secret VALUES ($1) RETURNING v', 'a was here') -> 'rows' AS rows;
RESET ROLE;
SELECT * FROM roles_secret;

-- keys belong to current_user: a SECURITY DEFINER function owned by
-- regress_idem_a records its keys as regress_idem_a, whoever calls it
CREATE FUNCTION roles_definer_call(k text) RETURNS jsonb
	LANGUAGE sql SECURITY DEFINER
	AS $$ SELECT idem_execute(k, 'SELECT current_user AS u') $$;
ALTER FUNCTION roles_definer_call(text) OWNER TO regress_idem_a;
SET ROLE regress_idem_b;
SELECT roles_definer_call('definer-key') -> 'rows' AS rows;
SELECT idem_lookup('definer-key') IS NULL AS not_bs_key;
RESET ROLE;
SET ROLE regress_idem_a;
SELECT idem_lookup('definer-key') -> 'rows' AS as_key_rows;
RESET ROLE;

-- a superuser sees every role's rows
SELECT owner, scope, key, result -> 'rows' -> 0 ->> 'who' AS who
FROM idempotency_keys ORDER BY owner::text, scope, key;
SELECT who, v FROM roles_t ORDER BY id;

-- clean up
DROP FUNCTION roles_definer_call(text);
DROP TABLE roles_t;
DROP TABLE roles_secret;
DROP ROLE regress_idem_a;
DROP ROLE regress_idem_b;
DROP ROLE "regress_idem_odd ""q"":x";
DELETE FROM idempotency_keys;
