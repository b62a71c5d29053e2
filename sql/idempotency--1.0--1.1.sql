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

CREATE TABLE @extschema@.idempotency_keys (
	owner		regrole NOT NULL,
	scope		text COLLATE "C" NOT NULL,
	key			text COLLATE "C" NOT NULL,
	fingerprint bytea,
	result		jsonb,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	expires_at	timestamptz NOT NULL,
	PRIMARY KEY (owner, scope, key)
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
	'idempotency keys: one row per live key, written only by the extension''s functions';
COMMENT ON COLUMN @extschema@.idempotency_keys.owner IS
	'role that owns a role key; 0 (''-'') for keys of a dedup guard';
COMMENT ON COLUMN @extschema@.idempotency_keys.scope IS
	'role keys: the idempotency.tenant they were stored under; guard keys: the guard id';
COMMENT ON COLUMN @extschema@.idempotency_keys.fingerprint IS
	'request fingerprint: 32 bytes (1.0 idem_execute), 0x02 and SHA-256 (idem_execute), 0x03 [and SHA-256 of the request] (idem_begin); NULL for guard keys';
COMMENT ON COLUMN @extschema@.idempotency_keys.result IS
	'stored result (idem_execute) or response (idem_finish) replayed on retries; NULL for guard keys';

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
