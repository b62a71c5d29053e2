/* idempotency 1.0 -> 1.1: keys follow role OIDs; tenant scope */

\echo Use "ALTER EXTENSION idempotency UPDATE TO '1.1'" to load this file. \quit

/*
 * The keys table is rebuilt with the owner of each key as a column of its
 * own:
 *   owner  the role of a role key (a regrole: the key follows the role's
 *          OID, so a renamed role keeps its keys and a new role of a dropped
 *          one's name inherits nothing); 0 (printed '-') for guard keys
 *   scope  role keys: the idempotency.tenant they were stored under ('' by
 *          default); guard keys: the guard id
 * pg_dump writes regrole values as role names and a restore maps them to
 * the new cluster's OIDs; pg_upgrade keeps role OIDs, and its check for
 * reg* columns in user tables lets regrole (and regclass) through
 * ("pg_authid.oid is preserved, so 'regrole' is OK" in pg_upgrade's
 * check.c; a 15-to-15 pg_upgrade of a database with keys passes its checks
 * and the keys replay afterwards).
 *
 * 1.0 rows are carried over: 'role:<name>' keys go to that role (keys of
 * roles that no longer exist are dropped), 'guard:<id>' keys to owner 0 and
 * scope <id>.  Fingerprints are kept as they are: a 32-byte fingerprint is
 * a 1.0 idem_execute request, which 1.1 still recognises and replays.
 */
ALTER TABLE @extschema@.idempotency_keys RENAME TO idempotency_keys_1_0;
ALTER TABLE @extschema@.idempotency_keys_1_0
	RENAME CONSTRAINT idempotency_keys_pkey TO idempotency_keys_1_0_pkey;

/*
 * A key has at most one live row and may have expired ones: a new request
 * under an expired key inserts a new row and leaves the expired one to the
 * purge, so that it never waits for a purge deleting it.  Hence expires_at
 * in the primary key; the key lock (claim.c) keeps one live row per key.
 * Fixed-width columns come first: no alignment padding between them.
 * An idem_execute result {"command": "INSERT", "row_count": 1, "rows": [...]}
 * is stored as command 'INSERT 1' and result [...]: the object's key
 * strings would cost every key some 30 bytes.  idem_lookup and replays put
 * the object together again, byte for byte.
 */
CREATE TABLE @extschema@.idempotency_keys (
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	expires_at	timestamptz NOT NULL,
	owner		regrole NOT NULL,
	scope		text COLLATE "C" NOT NULL,
	key			text COLLATE "C" NOT NULL,
	fingerprint bytea,
	command		text,
	result		jsonb,
	PRIMARY KEY (owner, scope, key, expires_at)
);

INSERT INTO @extschema@.idempotency_keys
	(owner, scope, key, fingerprint, result, created_at, expires_at)
SELECT r.oid::pg_catalog.regrole, '', k.key, k.fingerprint, k.result,
	   k.created_at, k.expires_at
  FROM @extschema@.idempotency_keys_1_0 k
  JOIN pg_catalog.pg_roles r
	ON k.scope OPERATOR(pg_catalog.=) ('role:' OPERATOR(pg_catalog.||) r.rolname)
UNION ALL
SELECT 0::pg_catalog.oid::pg_catalog.regrole,
	   pg_catalog.substr(k.scope, 7), k.key, k.fingerprint, k.result,
	   k.created_at, k.expires_at
  FROM @extschema@.idempotency_keys_1_0 k
 WHERE pg_catalog.starts_with(k.scope, 'guard:');

DO $$
DECLARE
	orphans bigint;
BEGIN
	SELECT pg_catalog.count(*) INTO orphans
	  FROM @extschema@.idempotency_keys_1_0 k
	 WHERE NOT pg_catalog.starts_with(k.scope, 'guard:')
	   AND NOT EXISTS (SELECT FROM pg_catalog.pg_roles r
					   WHERE k.scope OPERATOR(pg_catalog.=)
							 ('role:' OPERATOR(pg_catalog.||) r.rolname));
	IF orphans OPERATOR(pg_catalog.>) 0 THEN
		RAISE WARNING 'idempotency: % key(s) of roles that no longer exist were not kept', orphans;
	END IF;
END
$$;

/* leave pg_extension.extconfig, then go */
ALTER EXTENSION idempotency DROP TABLE @extschema@.idempotency_keys_1_0;
DROP TABLE @extschema@.idempotency_keys_1_0;

COMMENT ON TABLE @extschema@.idempotency_keys IS
	'idempotency keys: one row per live key (and expired ones until purged), written only by the extension''s functions';
COMMENT ON COLUMN @extschema@.idempotency_keys.owner IS
	'role that owns a role key; 0 (''-'') for keys of a dedup guard';
COMMENT ON COLUMN @extschema@.idempotency_keys.scope IS
	'role keys: the idempotency.tenant they were stored under; guard keys: the guard id';
COMMENT ON COLUMN @extschema@.idempotency_keys.fingerprint IS
	'request fingerprint: 32 bytes (1.0 idem_execute), 0x02 and SHA-256 (idem_execute), 0x03 [and SHA-256 of the request] (idem_begin); NULL for guard keys';
COMMENT ON COLUMN @extschema@.idempotency_keys.command IS
	'idem_execute keys stored by 1.1: the command and row count of the result, as ''INSERT 1''; NULL otherwise';
COMMENT ON COLUMN @extschema@.idempotency_keys.result IS
	'replayed on retries: the rows array of an idem_execute result (the whole result object for keys stored by 1.0), or the response of idem_finish; NULL for guard keys';

/* Live keys must survive pg_dump, or a restored database would run retries again. */
SELECT pg_catalog.pg_extension_config_dump('@extschema@.idempotency_keys',
										   'WHERE expires_at > pg_catalog.now()');

/*
 * Ordinary roles read only their own keys and write none directly: the
 * functions write the table as its owner.  The policy compares OIDs, so a
 * role name that needs quoting is no different from any other; the role's
 * OID is looked up once per query (an InitPlan), not once per row.
 */
REVOKE ALL ON @extschema@.idempotency_keys FROM PUBLIC;
GRANT SELECT ON @extschema@.idempotency_keys TO PUBLIC;
ALTER TABLE @extschema@.idempotency_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY idempotency_keys_own_role ON @extschema@.idempotency_keys
	FOR SELECT
	USING (owner OPERATOR(pg_catalog.=)
		   (SELECT pg_catalog.quote_ident(CURRENT_USER)::pg_catalog.regrole));

COMMENT ON TABLE @extschema@.idempotency_guards IS
	'dedup guards: the table each guard id (owner 0, scope guard_id in idempotency_keys) belongs to';

CREATE OR REPLACE FUNCTION @extschema@.idem_forget_dropped_guards()
	RETURNS event_trigger
	LANGUAGE plpgsql
	SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	keys pg_catalog.regclass := pg_catalog.to_regclass('@extschema@.idempotency_keys');
	guards pg_catalog.regclass := pg_catalog.to_regclass('@extschema@.idempotency_guards');
	citus_tables bigint := 0;
BEGIN
	/* one of them is being dropped, or rebuilt (undistribute_table) */
	IF keys IS NULL OR guards IS NULL THEN
		RETURN;
	END IF;

	/*
	 * Under Citus, where the keys table or the guard registry has been made
	 * a Citus table the extension refuses to run (src/citus.c), and a
	 * DELETE here would fail the DROP (on a worker: a distributed query
	 * from a shard).  Leave the DDL alone there.
	 */
	IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
		EXECUTE 'SELECT pg_catalog.count(*) FROM pg_catalog.pg_dist_partition WHERE logicalrelid OPERATOR(pg_catalog.=) ANY ($1)'
			INTO citus_tables
			USING ARRAY[keys, guards];
		IF citus_tables > 0 THEN
			RETURN;
		END IF;
	END IF;

	WITH gone AS (
		DELETE FROM @extschema@.idempotency_guards g
		USING pg_catalog.pg_event_trigger_dropped_objects() d
		WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
		  AND d.objsubid = 0
		  AND g.tbl::pg_catalog.oid = d.objid
		RETURNING g.guard_id)
	DELETE FROM @extschema@.idempotency_keys k
	USING gone
	WHERE k.owner = 0::pg_catalog.oid AND k.scope = gone.guard_id;
END
$$;

COMMENT ON FUNCTION @extschema@.idem_lookup(text) IS
	'stored result of a live key of the calling role and idempotency.tenant, or NULL';
COMMENT ON FUNCTION @extschema@.idem_forget(text) IS
	'delete a key of the calling role and idempotency.tenant; true if a live key existed';
COMMENT ON FUNCTION @extschema@.idem_purge(bigint) IS
	'delete expired keys, and keys of roles that no longer exist, at most max_rows of them; returns how many were deleted';

/* Keys for a whole request: idem_begin ... work ... idem_finish, in one transaction. */
CREATE FUNCTION @extschema@.idem_begin(key text, request jsonb DEFAULT NULL)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'idem_begin'
	LANGUAGE C VOLATILE;

CREATE FUNCTION @extschema@.idem_finish(key text, response jsonb)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'idem_finish'
	LANGUAGE C VOLATILE;

COMMENT ON FUNCTION @extschema@.idem_begin(text, jsonb) IS
	'claim a key for this transaction and return NULL, or return the stored response of a finished key';
COMMENT ON FUNCTION @extschema@.idem_finish(text, jsonb) IS
	'store the response of a key this transaction began; returns it';

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

-- dedup guard registry
/*
 * Forget the guard of a dropped table whatever command drops it: 1.0 fired
 * only for DROP TABLE, DROP SCHEMA and DROP OWNED, so DROP TYPE ... CASCADE
 * of a table's row type, DROP EXTENSION of an extension owning a table,
 * DROP ACCESS METHOD ... CASCADE and the like left the registry row and the
 * keys behind, for a later table with the same OID to inherit.  (Temporary
 * tables, which vanish without any command, can no longer be guarded.)
 */
DROP EVENT TRIGGER idempotency_forget_dropped_guards;
CREATE EVENT TRIGGER idempotency_forget_dropped_guards ON sql_drop
	EXECUTE FUNCTION @extschema@.idem_forget_dropped_guards();
/* also under session_replication_role = replica (replication and migration tools) */
ALTER EVENT TRIGGER idempotency_forget_dropped_guards ENABLE ALWAYS;

/*
 * Registry rows whose table is already gone (a temporary table guarded
 * under 1.0, or a drop the old event trigger missed) go now; their keys
 * expire with their TTL, and idem_guard never hands them to a new table.
 */
DELETE FROM @extschema@.idempotency_guards g
 WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_class c
				   WHERE c.oid OPERATOR(pg_catalog.=) g.tbl::pg_catalog.oid);

-- citus: keys beside their shard (issue 11; src/colocated.c) ------------------

/*
 * Under Citus: a keys table distributed with a tenant's tables, created on
 * the coordinator by the owner of colocate_with, one per colocation group.
 */
CREATE FUNCTION @extschema@.idem_colocate_keys(colocate_with regclass)
	RETURNS regclass
	AS 'MODULE_PATHNAME', 'idem_colocate_keys'
	LANGUAGE C VOLATILE STRICT;

/* idem_execute with the key kept in the tenant's shard, on the node that owns it */
CREATE FUNCTION @extschema@.idem_execute_colocated(colocate_with regclass, tenant "any",
												   key text, sql text)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'idem_execute_colocated'
	LANGUAGE C VOLATILE;

CREATE FUNCTION @extschema@.idem_execute_colocated(colocate_with regclass, tenant "any",
												   key text, sql text,
												   VARIADIC params "any")
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'idem_execute_colocated'
	LANGUAGE C VOLATILE;

CREATE FUNCTION @extschema@.idem_lookup_colocated(colocate_with regclass, tenant "any",
												  key text)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'idem_lookup_colocated'
	LANGUAGE C STABLE STRICT;

CREATE FUNCTION @extschema@.idem_forget_colocated(colocate_with regclass, tenant "any",
												  key text)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'idem_forget_colocated'
	LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION @extschema@.idem_colocate_keys(regclass) IS
	'Citus: create (once) the keys table distributed with colocate_with''s colocation group; returns it';
COMMENT ON FUNCTION @extschema@.idem_execute_colocated(regclass, "any", text, text) IS
	'Citus: idem_execute with the key stored in the tenant''s shard, on the node that holds it (refused elsewhere)';
COMMENT ON FUNCTION @extschema@.idem_execute_colocated(regclass, "any", text, text, "any") IS
	'Citus: idem_execute with the key stored in the tenant''s shard, on the node that holds it (refused elsewhere)';
COMMENT ON FUNCTION @extschema@.idem_lookup_colocated(regclass, "any", text) IS
	'Citus: stored result of a live key of the calling role beside the tenant''s shard, or NULL';
COMMENT ON FUNCTION @extschema@.idem_forget_colocated(regclass, "any", text) IS
	'Citus: delete a key of the calling role beside the tenant''s shard; true if a live key existed';
