-- idem_purge finds its keys through indexes: expired keys through the index
-- on expires_at, keys of dropped roles through the primary key, one probe
-- per owner.  It never reads the table from end to end, so its cost follows
-- the keys it deletes, not the live keys beside them.  Proven by this
-- transaction's own table statistics: no sequential scan, and no more rows
-- fetched than it deleted (plus one probe per owner).
SET client_min_messages = warning;
CREATE ROLE purge_ro_gone;
CREATE ROLE purge_ro_kept;
-- 5,000 live keys, 40 expired ones, 30 live keys of a role about to be dropped
INSERT INTO idempotency_keys (created_at, expires_at, owner, scope, key, fingerprint)
SELECT now(), now() + interval '1 day', 'purge_ro_kept'::regrole, '', 'live-' || g, '\x03'
  FROM generate_series(1, 5000) g;
INSERT INTO idempotency_keys (created_at, expires_at, owner, scope, key, fingerprint)
SELECT now() - interval '2 days', now() - interval '1 day', 'purge_ro_kept'::regrole, '', 'old-' || g, '\x03'
  FROM generate_series(1, 40) g;
INSERT INTO idempotency_keys (created_at, expires_at, owner, scope, key, fingerprint)
SELECT now(), now() + interval '1 day', 'purge_ro_gone'::regrole, '', 'orphan-' || g, '\x03'
  FROM generate_series(1, 30) g;
DROP ROLE purge_ro_gone;
ANALYZE idempotency_keys;

BEGIN;
SELECT idem_purge(25) AS first_batch;       -- expired keys only: the batch is full
SELECT idem_purge(25) AS second_batch;      -- 15 expired, then 10 of the dropped role's
SELECT idem_purge() AS the_rest;            -- the dropped role's 20 left
SELECT idem_purge() AS nothing_left;
SELECT seq_scan AS sequential_scans,
       idx_tup_fetch BETWEEN 70 AND 70 + 20 AS fetched_only_what_it_deleted,
       n_tup_del AS deleted
  FROM pg_stat_xact_user_tables WHERE relid = 'idempotency_keys'::regclass;
COMMIT;

SELECT count(*) AS live_keys_left,
       count(*) FILTER (WHERE expires_at <= now()) AS expired_left,
       count(*) FILTER (WHERE owner::oid NOT IN (SELECT oid FROM pg_roles)) AS orphans_left
  FROM idempotency_keys WHERE key LIKE 'live-%' OR key LIKE 'old-%' OR key LIKE 'orphan-%';

DELETE FROM idempotency_keys WHERE owner = 'purge_ro_kept'::regrole;
DROP ROLE purge_ro_kept;
