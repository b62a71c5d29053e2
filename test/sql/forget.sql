--
-- forget: idem_forget(key) deletes a key of the calling role and returns
-- true if a live key existed, false otherwise; NULL for a NULL key (it is
-- STRICT).  After a forget, the call runs again.
--
\set VERBOSITY terse

CREATE TABLE forget_t (id serial PRIMARY KEY, v text);

SELECT idem_execute('fg-1', 'INSERT INTO forget_t(v) VALUES ($1) RETURNING id', 'a') -> 'replayed' AS replayed;
SELECT idem_execute('fg-1', 'INSERT INTO forget_t(v) VALUES ($1) RETURNING id', 'a') -> 'replayed' AS replayed;

-- forget a live key: true, and the key is gone
SELECT idem_forget('fg-1') AS forgot;
SELECT idem_lookup('fg-1') IS NULL AS lookup_is_null,
	   (SELECT count(*) FROM idempotency_keys WHERE key = 'fg-1') AS key_rows;
-- the effect stays: forgetting a key does not undo its statement
SELECT count(*) AS rows FROM forget_t;
-- forgetting it again: false
SELECT idem_forget('fg-1') AS forgot;

-- after the forget, the call runs again (a new row)
SELECT idem_execute('fg-1', 'INSERT INTO forget_t(v) VALUES ($1) RETURNING id', 'a');
SELECT count(*) AS rows FROM forget_t;

-- after a forget, the key is free for a different request (no IK001)
SELECT idem_forget('fg-1') AS forgot;
SELECT idem_execute('fg-1', 'INSERT INTO forget_t(v) VALUES ($1) RETURNING id, v', 'b');

-- a key never used: false; the empty string: false
SELECT idem_forget('fg-never') AS forgot;
SELECT idem_forget('') AS forgot;
-- a NULL key: NULL
SELECT idem_forget(NULL) IS NULL AS null_for_null;

-- an expired key counts as absent: false, and its row is left to the purge
-- (which may be deleting it right now: forget never waits for it)
SELECT idem_execute('fg-expired', 'SELECT 1 AS one') -> 'replayed' AS replayed;
UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = 'fg-expired';
SELECT idem_forget('fg-expired') AS forgot;
SELECT count(*) AS expired_rows FROM idempotency_keys WHERE key = 'fg-expired';
-- and the call runs again, under a new row
SELECT idem_execute('fg-expired', 'SELECT 1 AS one') -> 'replayed' AS replayed;
-- forgetting it then deletes the live row only
SELECT idem_forget('fg-expired') AS forgot;
SELECT count(*) FILTER (WHERE expires_at > now()) AS live,
	   count(*) FILTER (WHERE expires_at <= now()) AS expired
FROM idempotency_keys WHERE key = 'fg-expired';
SELECT idem_execute('fg-expired', 'SELECT 1 AS one') -> 'replayed' AS replayed;

-- forget is transactional: rolled back, the key stays
BEGIN;
SELECT idem_forget('fg-1') AS forgot;
SELECT idem_lookup('fg-1') IS NULL AS gone_in_xact;
ROLLBACK;
SELECT idem_lookup('fg-1') IS NOT NULL AS key_back;
SELECT idem_execute('fg-1', 'INSERT INTO forget_t(v) VALUES ($1) RETURNING id, v', 'b') -> 'replayed' AS replayed;

-- a key made and forgotten in the same transaction: the call runs again
-- in that transaction
BEGIN;
SELECT idem_execute('fg-xact', 'INSERT INTO forget_t(v) VALUES ($1) RETURNING v', 'x') -> 'replayed' AS replayed;
SELECT idem_forget('fg-xact') AS forgot;
SELECT idem_execute('fg-xact', 'INSERT INTO forget_t(v) VALUES ($1) RETURNING v', 'x') -> 'replayed' AS replayed;
SELECT idem_execute('fg-xact', 'INSERT INTO forget_t(v) VALUES ($1) RETURNING v', 'x') -> 'replayed' AS replayed;
COMMIT;
SELECT count(*) AS x_rows FROM forget_t WHERE v = 'x';
SELECT count(*) AS key_rows FROM idempotency_keys WHERE key = 'fg-xact';

-- forget touches only the named key (fg-expired: the live row and the
-- expired one, still there for the purge)
SELECT key, expires_at > now() AS live FROM idempotency_keys ORDER BY key, live;

-- clean up
DROP TABLE forget_t;
DELETE FROM idempotency_keys;
