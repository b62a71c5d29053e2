/* idempotency 1.0: exactly-once writes kept inside PostgreSQL */

\echo Use "CREATE EXTENSION idempotency" to load this file. \quit

/*
 * One row per live key.  scope says who owns the key:
 *   'role:<name>'  a key of role <name>, written by idem_execute
 *   'guard:<id>'   a key of the dedup guard <id>, written by idem_guard's trigger
 * The two prefixes make the scopes of roles and guards disjoint, whatever a
 * role is called.  Keys compare byte for byte (COLLATE "C").
 */
CREATE TABLE @extschema@.idempotency_keys (
	scope		text COLLATE "C" NOT NULL,
	key			text COLLATE "C" NOT NULL,
	fingerprint bytea,
	result		jsonb,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	expires_at	timestamptz NOT NULL,
	PRIMARY KEY (scope, key)
);

COMMENT ON TABLE @extschema@.idempotency_keys IS
	'idempotency keys: one row per live key, written only by the extension''s functions';
COMMENT ON COLUMN @extschema@.idempotency_keys.scope IS
	'owner of the key: ''role:'' followed by the role name, or ''guard:'' followed by the guard id';
COMMENT ON COLUMN @extschema@.idempotency_keys.fingerprint IS
	'SHA-256 of the request (statement text and typed arguments); NULL for guard keys';
COMMENT ON COLUMN @extschema@.idempotency_keys.result IS
	'stored result replayed on retries; NULL for guard keys';

/* Live keys must survive pg_dump, or a restored database would run retries again. */
SELECT pg_catalog.pg_extension_config_dump('@extschema@.idempotency_keys',
										   'WHERE expires_at > pg_catalog.now()');

/*
 * Ordinary roles read only their own keys and write none directly: the
 * functions below write the table as its owner.
 */
REVOKE ALL ON @extschema@.idempotency_keys FROM PUBLIC;
GRANT SELECT ON @extschema@.idempotency_keys TO PUBLIC;
ALTER TABLE @extschema@.idempotency_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY idempotency_keys_own_role ON @extschema@.idempotency_keys
	FOR SELECT
	USING (scope OPERATOR(pg_catalog.=) ('role:' OPERATOR(pg_catalog.||) CURRENT_USER));

/*
 * Which table each dedup guard belongs to.  The guard trigger's arguments
 * name its guard id, but anyone can read (and copy) trigger arguments, so
 * the trigger only trusts an id registered here for its table; only
 * idem_guard writes this table, after checking the caller owns the table.
 */
CREATE TABLE @extschema@.idempotency_guards (
	guard_id	text COLLATE "C" PRIMARY KEY,
	tbl			regclass NOT NULL UNIQUE
);

COMMENT ON TABLE @extschema@.idempotency_guards IS
	'dedup guards: the table each guard id (scope ''guard:<guard_id>'' of idempotency_keys) belongs to';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.idempotency_guards', '');
REVOKE ALL ON @extschema@.idempotency_guards FROM PUBLIC;
GRANT SELECT ON @extschema@.idempotency_guards TO PUBLIC;

/*
 * Dropping a guarded table drops its trigger; this forgets its registry row
 * and keys too, so that a later table given the same OID (or a restore of a
 * dump) never inherits them.
 */
CREATE FUNCTION @extschema@.idem_forget_dropped_guards()
	RETURNS event_trigger
	LANGUAGE plpgsql
	SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	WITH gone AS (
		DELETE FROM @extschema@.idempotency_guards g
		USING pg_catalog.pg_event_trigger_dropped_objects() d
		WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
		  AND d.objsubid = 0
		  AND g.tbl::pg_catalog.oid = d.objid
		RETURNING g.guard_id)
	DELETE FROM @extschema@.idempotency_keys k
	USING gone
	WHERE k.scope = 'guard:' || gone.guard_id;
END
$$;

REVOKE ALL ON FUNCTION @extschema@.idem_forget_dropped_guards() FROM PUBLIC;

CREATE EVENT TRIGGER idempotency_forget_dropped_guards ON sql_drop
	WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED')
	EXECUTE FUNCTION @extschema@.idem_forget_dropped_guards();

CREATE FUNCTION @extschema@.idem_execute(key text, sql text)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'idem_execute'
	LANGUAGE C VOLATILE;

CREATE FUNCTION @extschema@.idem_execute(key text, sql text, VARIADIC params "any")
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'idem_execute'
	LANGUAGE C VOLATILE;

CREATE FUNCTION @extschema@.idem_lookup(key text)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'idem_lookup'
	LANGUAGE C STABLE STRICT;

CREATE FUNCTION @extschema@.idem_forget(key text)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'idem_forget'
	LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION @extschema@.idem_purge(max_rows bigint DEFAULT NULL)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'idem_purge'
	LANGUAGE C VOLATILE;

CREATE FUNCTION @extschema@.idem_guard(tbl regclass, key_column name,
										ttl interval DEFAULT NULL,
										on_duplicate text DEFAULT 'skip')
	RETURNS void
	AS 'MODULE_PATHNAME', 'idem_guard'
	LANGUAGE C VOLATILE;

CREATE FUNCTION @extschema@.idem_unguard(tbl regclass)
	RETURNS void
	AS 'MODULE_PATHNAME', 'idem_unguard'
	LANGUAGE C VOLATILE;

CREATE FUNCTION @extschema@.idem_guard_trigger()
	RETURNS trigger
	AS 'MODULE_PATHNAME', 'idem_guard_trigger'
	LANGUAGE C VOLATILE;

COMMENT ON FUNCTION @extschema@.idem_execute(text, text) IS
	'run a statement once per idempotency key and replay its stored result on retries';
COMMENT ON FUNCTION @extschema@.idem_execute(text, text, "any") IS
	'run a statement with arguments $1..$n once per idempotency key and replay its stored result on retries';
COMMENT ON FUNCTION @extschema@.idem_lookup(text) IS
	'stored result of a live key of the calling role, or NULL';
COMMENT ON FUNCTION @extschema@.idem_forget(text) IS
	'delete a key of the calling role; true if a live key existed';
COMMENT ON FUNCTION @extschema@.idem_purge(bigint) IS
	'delete expired keys, at most max_rows of them; returns how many were deleted';
COMMENT ON FUNCTION @extschema@.idem_guard(regclass, name, interval, text) IS
	'install the dedup guard: a BEFORE INSERT row trigger that lets each key in once per ttl';
COMMENT ON FUNCTION @extschema@.idem_unguard(regclass) IS
	'remove the dedup guard from a table, with its keys';
COMMENT ON FUNCTION @extschema@.idem_guard_trigger() IS
	'trigger function of the dedup guard; install it with idem_guard';
COMMENT ON FUNCTION @extschema@.idem_forget_dropped_guards() IS
	'event trigger function: forget the guard registry row and keys of dropped tables';
