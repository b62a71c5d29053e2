/* idempotency 1.0 -> 1.1 */

\echo Use "ALTER EXTENSION idempotency UPDATE TO '1.1'" to load this file. \quit

-- stats

/*
 * Counters of what the extension did in this database (they need
 * shared_preload_libraries = 'idempotency'; NULL without it), the live and
 * expired keys (exact on a small table, estimated from a sample of pages on
 * a large one), and the size of the keys table with its indexes.
 */
CREATE FUNCTION @extschema@.idem_stats(
	OUT executed bigint,
	OUT replayed bigint,
	OUT mismatched bigint,
	OUT in_flight bigint,
	OUT too_large bigint,
	OUT waits bigint,
	OUT wait_time_ms bigint,
	OUT guard_inserted bigint,
	OUT guard_skipped bigint,
	OUT purged bigint,
	OUT live_keys bigint,
	OUT expired_keys bigint,
	OUT table_bytes bigint,
	OUT stats_reset timestamptz)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'idem_stats'
	LANGUAGE C VOLATILE STRICT;

CREATE VIEW @extschema@.idempotency_stats AS
	SELECT * FROM @extschema@.idem_stats();

CREATE FUNCTION @extschema@.idem_stats_reset()
	RETURNS void
	AS 'MODULE_PATHNAME', 'idem_stats_reset'
	LANGUAGE C VOLATILE STRICT;

/* Anyone may read the counters; only superusers (or grantees) reset them. */
GRANT SELECT ON @extschema@.idempotency_stats TO PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.idem_stats_reset() FROM PUBLIC;

COMMENT ON FUNCTION @extschema@.idem_stats() IS
	'counters of idem_execute, idem_begin/idem_finish, the guard and the purge in this database, with the keys table''s size; read it through idempotency_stats';
COMMENT ON VIEW @extschema@.idempotency_stats IS
	'what the extension did in this database since stats_reset, and how big its keys table is';
COMMENT ON FUNCTION @extschema@.idem_stats_reset() IS
	'zero the counters of idempotency_stats for this database';
