-- A new key's row skips the executor (keystore.c) and fills the table's
-- plain indexes itself: the primary key and the purge's index on
-- expires_at.  A keys table someone gave an index it cannot fill (an
-- expression index, say) or a trigger gets an ordinary INSERT instead: every
-- index finds every key, the trigger sees every new one.
SET client_min_messages = warning;
CREATE TABLE xi_log (k text);
SELECT idem_execute('xi-0', 'SELECT 0 AS zero') ->> 'replayed' AS replayed;
-- the purge's index, filled by the direct insert: the same count through it
-- as through the heap
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM idempotency_keys WHERE expires_at > '-infinity';
SELECT count(*) AS by_index FROM idempotency_keys WHERE expires_at > '-infinity' \gset
RESET ALL;
SET enable_indexscan = off;
SET enable_indexonlyscan = off;
SET enable_bitmapscan = off;
SELECT count(*) = :by_index AS expires_at_index_has_every_key, count(*) >= 1 AS keys
  FROM idempotency_keys WHERE expires_at > '-infinity';
RESET ALL;

-- an expression index: the ordinary INSERT fills it
SET client_min_messages = warning;
CREATE INDEX xi_key_length ON idempotency_keys ((length(key)));
SELECT idem_execute('xi-1', 'SELECT 1 AS one') ->> 'replayed' AS replayed;
SELECT idem_execute('xi-2', 'SELECT 2 AS two') ->> 'replayed' AS replayed;
SELECT idem_execute('xi-2', 'SELECT 2 AS two') ->> 'replayed' AS replayed;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM idempotency_keys WHERE length(key) = 4;
SELECT count(*) AS by_index FROM idempotency_keys WHERE length(key) = 4 \gset
RESET ALL;
SET enable_indexscan = off;
SET enable_indexonlyscan = off;
SET enable_bitmapscan = off;
SELECT count(*) = :by_index AS index_has_every_key, count(*) >= 3 AS keys
  FROM idempotency_keys WHERE length(key) = 4;
SELECT count(*) AS by_heap FROM idempotency_keys WHERE expires_at > '-infinity' \gset
RESET ALL;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) = :by_heap AS expires_at_index_has_every_key
  FROM idempotency_keys WHERE expires_at > '-infinity';
RESET ALL;
SET client_min_messages = warning;
DROP INDEX xi_key_length;

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

-- with the plain indexes alone again, the direct insert
SELECT idem_execute('xi-4', 'SELECT 4 AS four') ->> 'replayed' AS replayed;
SELECT k FROM xi_log ORDER BY k;
SELECT count(*) FILTER (WHERE idem_forget(k)) AS forgotten FROM unnest(ARRAY['xi-0', 'xi-1', 'xi-2', 'xi-3', 'xi-4']) AS k;
DROP TABLE xi_log;
