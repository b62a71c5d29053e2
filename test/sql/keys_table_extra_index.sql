-- A new key's row skips the executor (keystore.c) and maintains the primary
-- key itself.  A keys table someone gave another index (for idem_purge on
-- expires_at, say) or a trigger gets an ordinary INSERT instead: the extra
-- index finds every key, the trigger sees every new one.
SET client_min_messages = warning;
CREATE TABLE xi_log (k text);
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
SELECT idem_execute('xi-1', 'SELECT 1 AS one') ->> 'replayed' AS replayed;
SELECT idem_execute('xi-2', 'SELECT 2 AS two') ->> 'replayed' AS replayed;
SELECT idem_execute('xi-2', 'SELECT 2 AS two') ->> 'replayed' AS replayed;
-- the same count through the new index as through the heap
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM idempotency_keys WHERE expires_at > '-infinity';
SELECT count(*) AS by_index FROM idempotency_keys WHERE expires_at > '-infinity' \gset
RESET enable_seqscan;
SET enable_indexscan = off;
SET enable_indexonlyscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM idempotency_keys WHERE expires_at > '-infinity';
SELECT count(*) = :by_index AS index_has_every_key, count(*) >= 2 AS keys
  FROM idempotency_keys WHERE expires_at > '-infinity';
RESET ALL;
DROP INDEX idempotency_keys_expires_at;

-- a trigger on the keys table sees each new key once, no replay
CREATE FUNCTION xi_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO xi_log VALUES (NEW.key);
    RETURN NEW;
END
$$;
CREATE TRIGGER xi_audit AFTER INSERT ON idempotency_keys FOR EACH ROW EXECUTE FUNCTION xi_audit();
SELECT idem_execute('xi-3', 'SELECT 3 AS three') ->> 'replayed' AS replayed;
SELECT idem_execute('xi-3', 'SELECT 3 AS three') ->> 'replayed' AS replayed;
SELECT k FROM xi_log ORDER BY k;
DROP TRIGGER xi_audit ON idempotency_keys;
DROP FUNCTION xi_audit();

-- with the primary key alone again, the direct insert
SELECT idem_execute('xi-4', 'SELECT 4 AS four') ->> 'replayed' AS replayed;
SELECT k FROM xi_log ORDER BY k;
SELECT count(*) FILTER (WHERE idem_forget(k)) AS forgotten FROM unnest(ARRAY['xi-1', 'xi-2', 'xi-3', 'xi-4']) AS k;
DROP TABLE xi_log;
