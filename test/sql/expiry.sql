--
-- expiry: a key stays live for idempotency.ttl; an expired key (past
-- expires_at) counts as absent: the call runs again and stores a new row
-- under the key, leaving the expired one untouched for the purge (a caller
-- never waits for a purge deleting it), and idem_lookup no longer finds it.
-- idem_purge deletes expired keys, at most max_rows of them, and returns
-- how many.
--
\set VERBOSITY terse
SET IntervalStyle = 'postgres';

CREATE TABLE exp_t (id serial PRIMARY KEY, v text);

-- the default ttl is 24 hours: expires_at - created_at
SELECT idem_execute('ex-default', 'SELECT 1 AS one') -> 'replayed' AS replayed;
SELECT expires_at - created_at = interval '24 hours' AS ttl_24h
FROM idempotency_keys WHERE key = 'ex-default';

-- idempotency.ttl sets the lifetime of new keys
SET idempotency.ttl = '2h';
SELECT idem_execute('ex-2h', 'SELECT 1 AS one') -> 'replayed' AS replayed;
SELECT expires_at - created_at AS lifetime,
	   expires_at - created_at = interval '2 hours' AS ttl_2h
FROM idempotency_keys WHERE key = 'ex-2h';
SET idempotency.ttl = 90;	-- plain number: seconds
SELECT idem_execute('ex-90s', 'SELECT 1 AS one') -> 'replayed' AS replayed;
SELECT expires_at - created_at AS lifetime,
	   expires_at - created_at = interval '90 seconds' AS ttl_90s
FROM idempotency_keys WHERE key = 'ex-90s';
RESET idempotency.ttl;

-- a key and its replay while live
SELECT idem_execute('ex-1', 'INSERT INTO exp_t(v) VALUES ($1) RETURNING id, v', 'first');
SELECT idem_execute('ex-1', 'INSERT INTO exp_t(v) VALUES ($1) RETURNING id, v', 'first') -> 'replayed' AS replayed;
-- expire it (as superuser, by moving expires_at into the past), and note
-- when it was created
UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = 'ex-1';
SELECT created_at AS old_created_at FROM idempotency_keys WHERE key = 'ex-1' \gset
-- an expired key is absent for idem_lookup ...
SELECT idem_lookup('ex-1') IS NULL AS lookup_is_null;
-- ... and for idem_execute: the statement runs again, with a new row
SELECT idem_execute('ex-1', 'INSERT INTO exp_t(v) VALUES ($1) RETURNING id, v', 'first');
SELECT * FROM exp_t ORDER BY id;
-- a new key row: live, created anew, with the new result and a lifetime of
-- one ttl; the expired row stays as it was until the purge
SELECT count(*) AS key_rows,
	   count(*) FILTER (WHERE expires_at <= now() AND created_at = :'old_created_at') AS old_expired,
	   count(*) FILTER (WHERE expires_at > now()) AS live,
	   bool_and(created_at > :'old_created_at') FILTER (WHERE expires_at > now()) AS created_anew,
	   bool_and(expires_at - created_at = interval '24 hours') FILTER (WHERE expires_at > now()) AS ttl_24h,
	   min(result::text) FILTER (WHERE expires_at > now()) AS result
FROM idempotency_keys WHERE key = 'ex-1';
-- and it replays the new result
SELECT idem_execute('ex-1', 'INSERT INTO exp_t(v) VALUES ($1) RETURNING id, v', 'first');

-- an expired key is absent whatever its request was: a different request
-- under it runs (no IK001) and takes the key over
UPDATE idempotency_keys SET expires_at = now() - interval '1 second'
WHERE key = 'ex-1' AND expires_at > now();
SELECT idem_execute('ex-1', 'INSERT INTO exp_t(v) VALUES ($1) RETURNING id, v', 'different');
SELECT idem_execute('ex-1', 'INSERT INTO exp_t(v) VALUES ($1) RETURNING id, v', 'first');
SELECT count(*) AS key_rows, count(*) FILTER (WHERE expires_at > now()) AS live
FROM idempotency_keys WHERE key = 'ex-1';

-- a key expires by itself once its ttl has passed (the first call and its
-- replay share one transaction, so the replay happens at the same now())
SET idempotency.ttl = '1s';
BEGIN;
SELECT idem_execute('ex-sleep', 'INSERT INTO exp_t(v) VALUES ($1) RETURNING v', 'sleep') -> 'replayed' AS replayed;
SELECT idem_execute('ex-sleep', 'INSERT INTO exp_t(v) VALUES ($1) RETURNING v', 'sleep') -> 'replayed' AS replayed;
COMMIT;
SELECT pg_sleep(1.1);
SELECT idem_lookup('ex-sleep') IS NULL AS lookup_is_null;
SELECT idem_execute('ex-sleep', 'INSERT INTO exp_t(v) VALUES ($1) RETURNING v', 'sleep') -> 'replayed' AS replayed;
RESET idempotency.ttl;
SELECT count(*) AS sleep_rows FROM exp_t WHERE v = 'sleep';

-- a key run again in a transaction that rolls back stays as it was (expired)
UPDATE idempotency_keys SET expires_at = now() - interval '1 second'
WHERE key = 'ex-sleep' AND expires_at > now();
BEGIN;
SELECT idem_execute('ex-sleep', 'INSERT INTO exp_t(v) VALUES ($1) RETURNING v', 'sleep') -> 'replayed' AS replayed;
ROLLBACK;
SELECT count(*) AS key_rows, bool_and(expires_at <= now()) AS still_expired
FROM idempotency_keys WHERE key = 'ex-sleep';

-- idem_purge deletes expired keys only, at most max_rows, and returns the
-- count.  Start from 10 live keys, 5 of them then expired.
DELETE FROM idempotency_keys;
SELECT count(idem_execute('ex-purge-' || g, 'SELECT $1 AS g', g)) FROM generate_series(1, 10) g;
UPDATE idempotency_keys SET expires_at = now() - interval '1 minute'
WHERE key IN ('ex-purge-2', 'ex-purge-4', 'ex-purge-6', 'ex-purge-8', 'ex-purge-10');
SELECT count(*) FILTER (WHERE expires_at > now()) AS live,
	   count(*) FILTER (WHERE expires_at <= now()) AS expired
FROM idempotency_keys;
-- a negative max_rows: 22023, nothing deleted
\set VERBOSITY sqlstate
SELECT idem_purge(-1);
\set VERBOSITY terse
SELECT idem_purge(-1);
-- max_rows 0 deletes nothing, 2 deletes two, then the rest
SELECT idem_purge(0) AS purged;
SELECT idem_purge(2) AS purged;
SELECT count(*) AS expired_left FROM idempotency_keys WHERE expires_at <= now();
SELECT idem_purge(100) AS purged;
-- nothing left to purge
SELECT idem_purge() AS purged;
-- the live keys were not touched
SELECT key FROM idempotency_keys ORDER BY key;
-- with NULL or no argument, no limit
UPDATE idempotency_keys SET expires_at = now() - interval '1 minute';
SELECT idem_purge(NULL) AS purged;
SELECT count(*) AS keys FROM idempotency_keys;
SELECT count(idem_execute('ex-purge-' || g, 'SELECT $1 AS g', g)) FROM generate_series(1, 3) g;
UPDATE idempotency_keys SET expires_at = now() - interval '1 minute';
SELECT idem_purge() AS purged;
-- a purged key is gone: its call runs again
SELECT idem_execute('ex-purge-1', 'SELECT $1 AS g', 1) -> 'replayed' AS replayed;

-- clean up
RESET IntervalStyle;
DROP TABLE exp_t;
DELETE FROM idempotency_keys;
