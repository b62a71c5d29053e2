--
-- begin_finish_maintenance: request keys share the keys table, the scope,
-- the TTL, idem_lookup, idem_forget and idem_purge with idem_execute.  An
-- expired request key counts as absent: idem_begin claims it again and
-- idem_finish replaces it.
--
\set VERBOSITY terse
\pset null '(sql null)'
SET IntervalStyle = 'postgres';

CREATE FUNCTION bfn_store(k text, resp jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
	IF idem_begin(k) IS NOT NULL THEN
		RAISE EXCEPTION 'key % was already finished', k;
	END IF;
	RETURN idem_finish(k, resp);
END $$;

-- 1. the TTL: idempotency.ttl (24h by default) sets expires_at of a
-- request key, as of an idem_execute key
SELECT bfn_store('bfn-default-ttl', '"a"');
SELECT idem_execute('bfn-exec-ttl', 'SELECT 1 AS one') -> 'replayed' AS replayed;
SELECT key, expires_at - created_at AS lifetime FROM idempotency_keys
WHERE key IN ('bfn-default-ttl', 'bfn-exec-ttl') ORDER BY key;
SET idempotency.ttl = '5min';
SELECT bfn_store('bfn-5min', '"b"');
SELECT expires_at - created_at AS lifetime FROM idempotency_keys WHERE key = 'bfn-5min';
RESET idempotency.ttl;
-- both kinds of key live side by side in the one table, in the same scope
SELECT count(DISTINCT (owner, scope)) AS scopes FROM idempotency_keys;

-- 2. idem_lookup: the response of a finished key; NULL for a key begun
-- but not yet finished in this transaction, and for an unknown key
BEGIN;
SELECT idem_begin('bfn-pending');
SELECT idem_lookup('bfn-pending') AS pending, idem_lookup('bfn-default-ttl') AS finished,
	   idem_lookup('bfn-unknown') AS unknown;
SELECT idem_finish('bfn-pending', '"c"');
SELECT idem_lookup('bfn-pending') AS finished_in_xact;
COMMIT;

-- 3. idem_forget: true for a stored request key, which is then free (the
-- next idem_begin claims it); false for an unknown key
SELECT idem_forget('bfn-pending') AS forgot;
SELECT idem_forget('bfn-pending') AS forgot_again, idem_forget('bfn-unknown') AS forgot_unknown;
SELECT idem_lookup('bfn-pending') AS lookup_after_forget;
BEGIN;
SELECT idem_begin('bfn-pending') AS claimed_after_forget;
SELECT idem_finish('bfn-pending', '"c2"');
COMMIT;
SELECT idem_begin('bfn-pending') AS replayed;
-- forgetting inside a transaction that rolls back keeps the key
BEGIN;
SELECT idem_forget('bfn-pending') AS forgot;
ROLLBACK;
SELECT idem_lookup('bfn-pending') AS still_there;

-- 4. an expired request key counts as absent: idem_lookup does not see it,
-- idem_begin claims it (with any request) and idem_finish replaces it
BEGIN;
SELECT idem_begin('bfn-exp', '{"v": 1}');
SELECT idem_finish('bfn-exp', '"old"');
COMMIT;
UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = 'bfn-exp';
SELECT created_at AS old_created_at FROM idempotency_keys WHERE key = 'bfn-exp' \gset
SELECT idem_lookup('bfn-exp') AS lookup_expired;
BEGIN;
SELECT idem_begin('bfn-exp', '{"v": 2}') AS claims_expired;
SELECT idem_finish('bfn-exp', '"new"');
COMMIT;
SELECT idem_begin('bfn-exp', '{"v": 2}') AS replayed;
-- (the expired row stays beside the new one until idem_purge removes it)
SELECT count(*) FILTER (WHERE expires_at > now()) AS live_rows,
	   bool_and(created_at > :'old_created_at') FILTER (WHERE expires_at > now()) AS recreated
FROM idempotency_keys WHERE key = 'bfn-exp';
-- an expired key that was never reclaimed cannot be finished: 55000
UPDATE idempotency_keys SET expires_at = now() - interval '1 second'
WHERE key = 'bfn-exp' AND expires_at > now();
SELECT idem_finish('bfn-exp', '"late"');
\echo :LAST_ERROR_SQLSTATE
-- an expired request key is absent for idem_execute too: it runs
SELECT idem_execute('bfn-exp', 'SELECT 2 AS two') -> 'replayed' AS replayed;

-- 5. idem_purge deletes expired request keys with expired idem_execute
-- keys, at most max_rows at a time, and keeps live ones
SELECT bfn_store('bfn-purge-1', '1'), bfn_store('bfn-purge-2', '2'), bfn_store('bfn-purge-3', '3');
SELECT idem_execute('bfn-purge-exec', 'SELECT 1 AS one') -> 'replayed' AS replayed;
UPDATE idempotency_keys SET expires_at = now() - interval '1 second'
WHERE key LIKE 'bfn-purge-%';
SELECT idem_purge(2) AS purged;
SELECT idem_purge() AS purged;
SELECT idem_purge() AS purged_nothing_left;
SELECT key FROM idempotency_keys ORDER BY key;

-- 6. keys belong to the calling role: another role can neither look up
-- nor forget a request key, and its own idem_begin of the same key string
-- claims a key of its own
CREATE ROLE regress_bfn_other;
SET ROLE regress_bfn_other;
SELECT idem_lookup('bfn-default-ttl') AS others_lookup;
SELECT idem_forget('bfn-default-ttl') AS others_forget;
SELECT bfn_store('bfn-default-ttl', '"other role"');
SELECT key, result FROM idempotency_keys ORDER BY key;
RESET ROLE;
SELECT idem_begin('bfn-default-ttl') AS own_response_unchanged;
SELECT owner, key, result FROM idempotency_keys WHERE key = 'bfn-default-ttl' ORDER BY owner::text;
DELETE FROM idempotency_keys WHERE owner = 'regress_bfn_other'::regrole;
DROP ROLE regress_bfn_other;

DROP FUNCTION bfn_store(text, jsonb);
DELETE FROM idempotency_keys;
