--
-- stats_without_preload: idempotency_stats answers on a server that does not
-- preload the library (as this test server): the counters and stats_reset
-- are NULL, idem_stats_reset() does nothing, and the key counts and table
-- size describe the keys table exactly (it is small).  The counters
-- themselves are tested with the preload, in test/t/stats_counters.pl.
--
\set VERBOSITY terse

-- the view's columns, in order
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type
FROM pg_attribute a
WHERE a.attrelid = 'idempotency_stats'::regclass AND a.attnum > 0
ORDER BY a.attnum;

-- two live keys and three expired ones
SELECT idem_execute('swp-live-' || g, 'SELECT 1 AS one') ->> 'replayed' AS replayed
FROM generate_series(1, 2) g;
SELECT idem_execute('swp-old-' || g, 'SELECT 1 AS one') ->> 'replayed' AS replayed
FROM generate_series(1, 3) g;
UPDATE idempotency_keys SET expires_at = now() - interval '1 minute'
WHERE key LIKE 'swp-old-%';

-- counters NULL, key counts exact (whatever other tests left behind: none,
-- if they clean up), table_bytes the table with its indexes
SELECT num_nulls(executed, replayed, mismatched, in_flight, too_large, waits,
				 wait_time_ms, guard_inserted, guard_skipped, purged) AS null_counters,
	   stats_reset IS NULL AS no_reset_time,
	   live_keys = (SELECT count(*) FROM idempotency_keys WHERE expires_at > now()) AS live_exact,
	   expired_keys = (SELECT count(*) FROM idempotency_keys WHERE expires_at <= now()) AS expired_exact,
	   live_keys >= 2 AND expired_keys >= 3 AS counted_ours,
	   table_bytes = pg_total_relation_size('idempotency_keys') AS table_bytes_ok
FROM idempotency_stats;

-- idem_stats_reset does nothing without the preload
SELECT idem_stats_reset();
SELECT executed IS NULL AS still_null FROM idempotency_stats;

-- purging moves the key counts (not a counter: there is none)
SELECT idem_purge() >= 3 AS purged_ours;
SELECT live_keys = (SELECT count(*) FROM idempotency_keys) AS live_exact,
	   expired_keys, purged FROM idempotency_stats;

-- an ordinary role reads the view (counting every role's keys, not only its
-- own) but may not reset the counters
CREATE ROLE regress_idem_stats_reader;
SET ROLE regress_idem_stats_reader;
SELECT live_keys >= 2 AS counts_all_roles_keys FROM idempotency_stats;
SELECT idem_stats_reset();
RESET ROLE;
DROP ROLE regress_idem_stats_reader;

-- the function behind the view is set-returning, one row per call
SELECT count(*) FROM idem_stats();

SELECT idem_forget('swp-live-' || g) FROM generate_series(1, 2) g;
