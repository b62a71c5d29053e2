/* idempotency 1.0 -> 1.1 */

\echo Use "ALTER EXTENSION idempotency UPDATE TO '1.1'" to load this file. \quit

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
