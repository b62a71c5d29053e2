--
-- guard_partitioned: a guard installed on a partitioned table covers every
-- partition, present and future (created with PARTITION OF or attached
-- later), with one scope: a key is deduplicated across partitions, which a
-- unique index cannot do unless it contains the partition key.  It works for
-- INSERT through the parent, INSERT straight into a partition, and COPY into
-- the parent, and it survives renaming the parent.  Only the partitioned
-- table is registered in idempotency_guards; its partitions' cloned triggers
-- carry its guard id.  A partition guarded through its partitioned table
-- cannot be guarded or unguarded on its own (55000).
--
-- Guard ids are random: this file never prints one; it compares them.
--
\set VERBOSITY terse

-- the guard id idem_guard registered for a table
CREATE FUNCTION gp_guard_id(t regclass) RETURNS text LANGUAGE sql AS $$
	SELECT guard_id FROM idempotency_guards WHERE tbl = t
$$;
-- the guard id in the arguments of a table's zz_idempotency_guard trigger
CREATE FUNCTION gp_trigger_id(t regclass) RETURNS text LANGUAGE sql AS $$
	SELECT split_part(encode(tgargs, 'escape'), '\000', 1)
	FROM pg_trigger WHERE tgrelid = t AND tgname = 'zz_idempotency_guard'
$$;
-- every table of the tree: has it a guard trigger, is its trigger's guard id
-- the one registered for the parent, is the table itself registered
CREATE FUNCTION gp_guards(parent regclass)
RETURNS TABLE (tbl regclass, guarded boolean, same_guard boolean, registered boolean)
LANGUAGE sql AS $$
	SELECT relid, gp_trigger_id(relid) IS NOT NULL,
		   gp_trigger_id(relid) IS NOT DISTINCT FROM gp_guard_id(parent),
		   gp_guard_id(relid) IS NOT NULL
	FROM pg_partition_tree(parent) ORDER BY relid::text
$$;
-- the state a refused call must leave unchanged: every guard trigger (table,
-- arguments), every key, every registered guard
CREATE FUNCTION gp_state() RETURNS text LANGUAGE sql AS $$
	SELECT concat_ws(E'\n',
		(SELECT string_agg(format('%s %s %s', tgrelid::regclass, tgname,
								  encode(tgargs, 'escape')),
						   ', ' ORDER BY tgrelid::regclass::text, tgname)
		 FROM pg_trigger WHERE tgname = 'zz_idempotency_guard'),
		(SELECT string_agg(format('%s %s %s', scope, key, expires_at), ', '
						   ORDER BY scope, key)
		 FROM idempotency_keys),
		(SELECT string_agg(format('%s %s', guard_id, tbl), ', ' ORDER BY guard_id)
		 FROM idempotency_guards))
$$;

-- events partitioned by region; the event id cannot be unique across them
CREATE TABLE gp_events (
	event_id text,
	region	 text NOT NULL,
	payload	 text
) PARTITION BY LIST (region);
CREATE TABLE gp_events_eu PARTITION OF gp_events FOR VALUES IN ('eu');
CREATE TABLE gp_events_us PARTITION OF gp_events FOR VALUES IN ('us');
-- a unique index on the key alone is impossible here
CREATE UNIQUE INDEX ON gp_events (event_id);

SELECT idem_guard('gp_events', 'event_id');
-- the trigger is on the parent and cloned to each partition with the same
-- guard id; only the parent is registered
SELECT * FROM gp_guards('gp_events');
SELECT tgrelid::regclass, tgparentid <> 0 AS cloned FROM pg_trigger
WHERE tgname = 'zz_idempotency_guard' ORDER BY tgrelid::regclass::text;
SELECT tbl FROM idempotency_guards;

--
-- duplicates across partitions, through the parent
--
INSERT INTO gp_events VALUES ('k1', 'eu', 'first');
\echo inserted :ROW_COUNT
-- the same key routed to the other partition is a duplicate
INSERT INTO gp_events VALUES ('k1', 'us', 'dup in us');
\echo inserted :ROW_COUNT
-- multi-row, in-statement duplicates spread over both partitions
INSERT INTO gp_events VALUES ('k2', 'us', 'a'), ('k2', 'eu', 'dup'), ('k3', 'eu', 'b'),
	('k3', 'us', 'dup'), ('k1', 'eu', 'dup')
RETURNING *;
\echo inserted :ROW_COUNT
-- straight into a partition: the same scope
INSERT INTO gp_events_us VALUES ('k1', 'us', 'dup straight into us');
\echo inserted :ROW_COUNT
INSERT INTO gp_events_eu VALUES ('k4', 'eu', 'straight into eu');
INSERT INTO gp_events VALUES ('k4', 'us', 'dup through parent');
\echo inserted :ROW_COUNT
-- INSERT ... SELECT through the parent
INSERT INTO gp_events
SELECT 'k' || g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, 'select'
FROM generate_series(1, 6) g;
\echo inserted :ROW_COUNT
SELECT tableoid::regclass, * FROM gp_events ORDER BY event_id;

-- every key once, in the single scope of the guard
SELECT key FROM idempotency_keys WHERE scope = gp_guard_id('gp_events') ORDER BY key;

--
-- a partition created later is covered
--
CREATE TABLE gp_events_ap PARTITION OF gp_events FOR VALUES IN ('ap');
SELECT * FROM gp_guards('gp_events');
INSERT INTO gp_events VALUES ('k1', 'ap', 'dup in new partition'), ('k7', 'ap', 'new'),
	('k7', 'eu', 'dup of new');
\echo inserted :ROW_COUNT
SELECT tableoid::regclass, * FROM gp_events WHERE event_id = 'k7';

--
-- a table attached later is covered, even with its columns in another order
-- and a dropped column (the guard finds its key column by name)
--
CREATE TABLE gp_events_sa (dropped int, payload text, region text NOT NULL, event_id text);
ALTER TABLE gp_events_sa DROP COLUMN dropped;
-- rows already in it are not checked or recorded when it is attached
INSERT INTO gp_events_sa (event_id, region, payload) VALUES ('k1', 'sa', 'before attach');
ALTER TABLE gp_events ATTACH PARTITION gp_events_sa FOR VALUES IN ('sa');
SELECT * FROM gp_guards('gp_events');
INSERT INTO gp_events VALUES ('k2', 'sa', 'dup in attached'), ('k8', 'sa', 'new in attached');
\echo inserted :ROW_COUNT
INSERT INTO gp_events_sa (event_id, region, payload) VALUES ('k8', 'sa', 'dup straight into attached');
\echo inserted :ROW_COUNT
INSERT INTO gp_events VALUES ('k8', 'us', 'dup of attached');
\echo inserted :ROW_COUNT
SELECT tableoid::regclass, * FROM gp_events WHERE region = 'sa' ORDER BY event_id, payload;

--
-- a sub-partitioned partition: its leaves are covered too
--
CREATE TABLE gp_events_af PARTITION OF gp_events FOR VALUES IN ('af')
	PARTITION BY HASH (event_id);
CREATE TABLE gp_events_af0 PARTITION OF gp_events_af FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE gp_events_af1 PARTITION OF gp_events_af FOR VALUES WITH (MODULUS 2, REMAINDER 1);
SELECT * FROM gp_guards('gp_events');
INSERT INTO gp_events SELECT 'k' || g, 'af', 'af' FROM generate_series(7, 12) g;
\echo inserted :ROW_COUNT
SELECT event_id, region FROM gp_events WHERE region = 'af' ORDER BY event_id;

--
-- COPY into the parent: routed to the partitions, duplicates dropped
-- whichever partition they go to
--
COPY gp_events (event_id, region, payload) FROM stdin;
c1	eu	copy 1
c1	us	copy dup of c1
k3	ap	copy dup of k3
c2	sa	copy 2
\N	us	copy null key
\N	eu	copy null key
c2	af	copy dup of c2
c3	af	copy 3
\.
\echo copied :ROW_COUNT
SELECT tableoid::regclass, * FROM gp_events WHERE payload LIKE 'copy%' ORDER BY event_id, region;

--
-- a partition guarded through its partitioned table cannot be guarded or
-- unguarded on its own (55000): its trigger is the parent's, and so is its
-- scope.  Nothing changes: no trigger, key or registration
--
SELECT gp_state() AS state_before \gset
SELECT idem_guard('gp_events_eu', 'event_id');
SELECT idem_unguard('gp_events_eu');
-- a partition attached later and a leaf of a sub-partitioned partition alike
SELECT idem_guard('gp_events_sa', 'event_id', interval '1 hour', 'error');
SELECT idem_unguard('gp_events_af1');
-- and the sub-partitioned partition itself
SELECT idem_guard('gp_events_af', 'event_id');
\set VERBOSITY default
SELECT idem_guard('gp_events_eu', 'payload');
SELECT idem_unguard('gp_events_eu');
\set VERBOSITY sqlstate
SELECT idem_guard('gp_events_eu', 'event_id');
SELECT idem_unguard('gp_events_eu');
\set VERBOSITY terse
SELECT gp_state() = :'state_before' AS unchanged;
SELECT * FROM gp_guards('gp_events');
-- the partitions still deduplicate in the parent's scope
INSERT INTO gp_events_eu VALUES ('k1', 'eu', 'dup after refused guard');
\echo inserted :ROW_COUNT

--
-- error mode on a partitioned table: the error names the partition the
-- duplicate row went to
--
SELECT idem_guard('gp_events', 'event_id', on_duplicate => 'error');
SELECT * FROM gp_guards('gp_events');
INSERT INTO gp_events VALUES ('k1', 'us', 'dup now an error');
\set VERBOSITY default
INSERT INTO gp_events VALUES ('k1', 'ap', 'dup now an error');
\set VERBOSITY sqlstate
INSERT INTO gp_events VALUES ('k1', 'ap', 'dup now an error');
\set VERBOSITY terse
COPY gp_events (event_id, region, payload) FROM stdin;
e1	eu	copy 1
e1	us	copy dup
\.
SELECT count(*) AS e1_rows FROM gp_events WHERE event_id = 'e1';
SELECT idem_guard('gp_events', 'event_id');

--
-- renaming the parent (and a partition) keeps the guard and its scope:
-- earlier keys still dedupe
--
SELECT gp_guard_id('gp_events') AS guard_id \gset
ALTER TABLE gp_events RENAME TO gp_events_renamed;
ALTER TABLE gp_events_us RENAME TO gp_events_us_renamed;
SELECT gp_guard_id('gp_events_renamed') = :'guard_id' AS same_guard_id;
SELECT * FROM gp_guards('gp_events_renamed');
SELECT tbl FROM idempotency_guards;
INSERT INTO gp_events_renamed VALUES ('k1', 'eu', 'dup after rename'), ('k2', 'us', 'dup after rename'),
	('r1', 'us', 'new after rename');
\echo inserted :ROW_COUNT
SELECT tableoid::regclass, * FROM gp_events_renamed WHERE payload LIKE '%after rename';
SELECT count(*) AS keys FROM idempotency_keys WHERE scope = :'guard_id' \gset
SELECT :keys > 0 AS has_keys;

--
-- unguarding the parent drops the trigger from every partition and the
-- guard's keys
--
SELECT idem_unguard('gp_events_renamed');
SELECT count(*) AS guard_triggers FROM pg_trigger WHERE tgname = 'zz_idempotency_guard';
SELECT count(*) AS keys_left FROM idempotency_keys WHERE scope = :'guard_id';
SELECT count(*) AS registered FROM idempotency_guards;
INSERT INTO gp_events_renamed VALUES ('k1', 'eu', 'dup goes in unguarded');
\echo inserted :ROW_COUNT
-- now a partition may be guarded on its own, with a guard of its own that
-- covers that partition only
SELECT idem_guard('gp_events_eu', 'event_id');
SELECT tbl, guarded, registered FROM gp_guards('gp_events_renamed');
SELECT gp_guard_id('gp_events_eu') <> :'guard_id' AS new_guard_id,
	   gp_trigger_id('gp_events_eu') = gp_guard_id('gp_events_eu') AS trigger_has_registered_id;
INSERT INTO gp_events_renamed VALUES ('p1', 'eu', 'eu guarded alone'), ('p1', 'eu', 'dup in eu'),
	('p1', 'us', 'us is not guarded');
\echo inserted :ROW_COUNT
-- while it is, the partitioned table cannot be guarded: PostgreSQL's own
-- CREATE TRIGGER refuses to clone the guard onto a partition that has a
-- trigger of that name (42710), and nothing changes
SELECT gp_state() AS state_before \gset
SELECT idem_guard('gp_events_renamed', 'event_id');
\set VERBOSITY sqlstate
SELECT idem_guard('gp_events_renamed', 'event_id');
\set VERBOSITY terse
SELECT gp_state() = :'state_before' AS unchanged;
SELECT idem_unguard('gp_events_eu');
SELECT count(*) AS guard_triggers FROM pg_trigger WHERE tgname = 'zz_idempotency_guard';
SELECT count(*) AS registered FROM idempotency_guards;

-- clean up
DROP TABLE gp_events_renamed;
DROP FUNCTION gp_guards(regclass), gp_guard_id(regclass), gp_trigger_id(regclass),
	gp_state();
DELETE FROM idempotency_keys;
