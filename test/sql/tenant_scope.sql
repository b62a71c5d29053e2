--
-- tenant_scope: idempotency.tenant (text, default '') is part of every
-- key's scope beside the role.  It separates keys for idem_execute,
-- idem_begin/idem_finish, idem_lookup and idem_forget alike; SET LOCAL
-- scopes it to one transaction; two roles with the same tenant are still
-- two scopes.  The dedup guard's keys are per table, whoever inserts: the
-- tenant does not split them.
--
\set VERBOSITY terse
\pset null '(sql null)'

CREATE TABLE ts_t (id serial PRIMARY KEY, tenant text DEFAULT current_setting('idempotency.tenant'), v text);
CREATE FUNCTION ts_store(k text, resp jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	IF idem_begin(k) IS NOT NULL THEN
		RAISE EXCEPTION 'key % was already finished', k;
	END IF;
	RETURN idem_finish(k, resp);
END $$;

-- 1. the default tenant is the empty string (the setting exists once the
-- library is loaded; tenant_set_before_load covers a fresh session)
LOAD 'idempotency';
SHOW idempotency.tenant;
SELECT current_setting('idempotency.tenant') = '' AS default_is_empty;

-- a tenant longer than 255 bytes is refused (22023); 255 bytes are fine
SELECT set_config('idempotency.tenant', repeat('t', 256), false);
\echo :LAST_ERROR_SQLSTATE
SELECT length(set_config('idempotency.tenant', repeat('t', 255), false)) AS accepted;
RESET idempotency.tenant;

-- 2. idem_execute: the same key and request in tenants '', 'user-1' and
-- 'user-2' runs once in each; each replays its own result
SELECT idem_execute('ts-k', 'INSERT INTO ts_t(v) VALUES ($1) RETURNING id, tenant', 'same');
SET idempotency.tenant = 'user-1';
SELECT idem_execute('ts-k', 'INSERT INTO ts_t(v) VALUES ($1) RETURNING id, tenant', 'same');
SELECT idem_execute('ts-k', 'INSERT INTO ts_t(v) VALUES ($1) RETURNING id, tenant', 'same') -> 'rows' AS user_1_replays;
SET idempotency.tenant = 'user-2';
SELECT idem_execute('ts-k', 'INSERT INTO ts_t(v) VALUES ($1) RETURNING id, tenant', 'same');
-- a different request under the key is judged against this tenant's own
SELECT idem_execute('ts-k', 'INSERT INTO ts_t(v) VALUES ($1) RETURNING id, tenant', 'other');
\echo :LAST_ERROR_SQLSTATE
RESET idempotency.tenant;
SELECT idem_execute('ts-k', 'INSERT INTO ts_t(v) VALUES ($1) RETURNING id, tenant', 'same') -> 'rows' AS default_replays;
SELECT id, tenant, v FROM ts_t ORDER BY id;
-- three key rows, one per tenant, the tenant in the scope column
SELECT scope, key, result -> 0 ->> 'tenant' AS ran_for
FROM idempotency_keys WHERE key = 'ts-k' ORDER BY scope;

-- 3. idem_lookup and idem_forget see the current tenant's key only
SET idempotency.tenant = 'user-1';
SELECT idem_lookup('ts-k') -> 'rows' -> 0 ->> 'tenant' AS user_1_lookup;
SELECT idem_forget('ts-k') AS user_1_forget;
SELECT idem_lookup('ts-k') AS user_1_lookup_after;
SET idempotency.tenant = 'user-3';
SELECT idem_lookup('ts-k') AS user_3_lookup, idem_forget('ts-k') AS user_3_forget;
RESET idempotency.tenant;
SELECT scope FROM idempotency_keys WHERE key = 'ts-k' ORDER BY scope;

-- 4. idem_begin/idem_finish: tenant 'a' finishes a request key; tenant
-- 'b' with the same key claims its own (no replay of a's response); each
-- replays its own afterwards
SET idempotency.tenant = 'a';
SELECT ts_store('ts-req', '{"for": "a"}');
SET idempotency.tenant = 'b';
BEGIN;
SELECT idem_begin('ts-req') AS b_claims;
SELECT idem_lookup('ts-req') AS b_lookup_pending;
SELECT idem_finish('ts-req', '{"for": "b"}');
COMMIT;
SELECT idem_begin('ts-req') AS b_replays;
SET idempotency.tenant = 'a';
SELECT idem_begin('ts-req') AS a_replays, idem_lookup('ts-req') AS a_lookup;
-- forget in 'a' leaves 'b' alone
SELECT idem_forget('ts-req') AS a_forget;
SET idempotency.tenant = 'b';
SELECT idem_lookup('ts-req') AS b_still_there;
RESET idempotency.tenant;
SELECT idem_lookup('ts-req') AS default_tenant_has_none;

-- 5. SET LOCAL: the tenant applies to that transaction only
BEGIN;
SET LOCAL idempotency.tenant = 'user-42';
SELECT idem_begin('ts-local') AS claimed;
SELECT idem_finish('ts-local', '"for user-42"');
COMMIT;
SHOW idempotency.tenant;
SELECT idem_lookup('ts-local') AS default_tenant_lookup;
BEGIN;
SET LOCAL idempotency.tenant = 'user-42';
SELECT idem_begin('ts-local') AS user_42_replays;
COMMIT;
SELECT scope, key FROM idempotency_keys WHERE key = 'ts-local';

-- 6. the tenant in force at idem_finish is the one at idem_begin: a key
-- begun in one tenant cannot be finished from another (55000)
BEGIN;
SET LOCAL idempotency.tenant = 'x';
SELECT idem_begin('ts-switch');
SET LOCAL idempotency.tenant = 'y';
SELECT idem_finish('ts-switch', '"y"');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- 7. two roles with the same tenant are still separate
CREATE ROLE regress_ts_r1;
CREATE ROLE regress_ts_r2;
GRANT SELECT, INSERT ON ts_t TO regress_ts_r1, regress_ts_r2;
GRANT USAGE ON SEQUENCE ts_t_id_seq TO regress_ts_r1, regress_ts_r2;
SET idempotency.tenant = 'shared';
SET ROLE regress_ts_r1;
SELECT idem_execute('ts-roles', 'INSERT INTO ts_t(v) VALUES ($1) RETURNING current_user AS who', 'r') -> 'rows' AS r1_runs;
SELECT ts_store('ts-roles-req', '"r1"');
SET ROLE regress_ts_r2;
SELECT idem_execute('ts-roles', 'INSERT INTO ts_t(v) VALUES ($1) RETURNING current_user AS who', 'r') -> 'replayed' AS r2_replayed;
SELECT idem_lookup('ts-roles-req') AS r2_lookup_of_r1;
SELECT idem_forget('ts-roles-req') AS r2_forget_of_r1;
SELECT ts_store('ts-roles-req', '"r2"');
SELECT key, scope, result FROM idempotency_keys ORDER BY key;
SET ROLE regress_ts_r1;
SELECT idem_begin('ts-roles-req') AS r1_replays_own;
-- within a role the tenant is a partition, not a security boundary: the
-- role reads its keys of every tenant, and can set any tenant
SET idempotency.tenant = 'another';
SELECT ts_store('ts-roles-another', '"r1 in another"');
SELECT scope, key FROM idempotency_keys ORDER BY key;
SET idempotency.tenant = 'shared';
SELECT idem_lookup('ts-roles-req') AS r1_lookup_back_in_shared;
RESET ROLE;
RESET idempotency.tenant;
SELECT owner, scope, key FROM idempotency_keys WHERE key LIKE 'ts-roles%' ORDER BY key, owner::text;

-- 8. the dedup guard's keys are per table, not per tenant: a duplicate
-- inserted under another tenant is skipped
CREATE TABLE ts_events (event_id text, tenant text DEFAULT current_setting('idempotency.tenant'));
SELECT idem_guard('ts_events', 'event_id');
SET idempotency.tenant = 'a';
INSERT INTO ts_events(event_id) VALUES ('e1');
SET idempotency.tenant = 'b';
INSERT INTO ts_events(event_id) VALUES ('e1'), ('e2');
RESET idempotency.tenant;
SELECT event_id, tenant FROM ts_events ORDER BY event_id;

DELETE FROM idempotency_keys
WHERE owner IN ('regress_ts_r1'::regrole, 'regress_ts_r2'::regrole);
DROP TABLE ts_t, ts_events;
DROP FUNCTION ts_store(text, jsonb);
DROP ROLE regress_ts_r1, regress_ts_r2;
DELETE FROM idempotency_keys;
