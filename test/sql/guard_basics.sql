--
-- guard_basics: idem_guard installs a BEFORE INSERT row trigger named
-- zz_idempotency_guard and registers the table's guard id in
-- idempotency_guards; each inserted row's key_column value is a key in the
-- guard's own scope 'guard:<guard id>' (one per table, whoever inserts).  The
-- first row with a key goes in and records it; a duplicate (recorded and
-- live, or earlier in the same statement or transaction) is dropped silently
-- ('skip') or fails with 23505 ('error').  NULL keys are not deduplicated.
-- Works for INSERT, multi-row INSERT, INSERT ... SELECT and COPY FROM.
-- Guarding a guarded table again keeps its guard id and keys.  idem_unguard
-- removes the trigger, the registration and the guard's keys.
--
-- Guard ids are random: this file never prints one; it compares them.
--
\set VERBOSITY terse

-- the scope of a table's guard: 'guard:' and the guard id idem_guard
-- registered for the table in idempotency_guards
CREATE FUNCTION guard_scope(t regclass) RETURNS text LANGUAGE sql AS $$
	SELECT guard_id FROM idempotency_guards WHERE tbl = t
$$;
-- the guard id in the first argument of the table's guard trigger
CREATE FUNCTION guard_trigger_id(t regclass) RETURNS text LANGUAGE sql AS $$
	SELECT split_part(encode(tgargs, 'escape'), '\000', 1)
	FROM pg_trigger WHERE tgrelid = t AND tgname = 'zz_idempotency_guard'
$$;
-- the keys of a table's guard, in order
CREATE FUNCTION guard_keys(t regclass) RETURNS SETOF text LANGUAGE sql AS $$
	SELECT key FROM idempotency_keys WHERE scope = guard_scope(t) ORDER BY key
$$;
-- the trigger's definition with its guard id masked
CREATE FUNCTION guard_triggerdef(t regclass) RETURNS text LANGUAGE sql AS $$
	SELECT regexp_replace(pg_get_triggerdef(oid),
		'''[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}''',
		'''<guard id>''')
	FROM pg_trigger WHERE tgrelid = t AND tgname = 'zz_idempotency_guard'
$$;

CREATE TABLE gb_events (
	event_id text,
	payload	 text
);

--
-- installing the guard
--
SELECT idem_guard('gb_events', 'event_id');
-- one trigger, named zz_idempotency_guard (BEFORE triggers fire in name
-- order, so it fires after the table's other BEFORE INSERT triggers),
-- BEFORE INSERT FOR EACH ROW, arguments (guard id, column, '' for
-- "idempotency.ttl at insert time", 'skip'); the guard id is a v4 UUID
SELECT guard_triggerdef('gb_events');
SELECT tgname, tgenabled, tgisinternal FROM pg_trigger
WHERE tgrelid = 'gb_events'::regclass;
-- one guard registered for the table, with the id in the trigger's arguments
SELECT count(*) AS registered FROM idempotency_guards WHERE tbl = 'gb_events'::regclass;
SELECT guard_scope('gb_events') ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
	AS scope_is_guard_uuid,
	   guard_scope('gb_events') = guard_trigger_id('gb_events')
	AS trigger_has_registered_id;
-- nothing is recorded until a row comes
SELECT count(*) AS keys FROM idempotency_keys WHERE scope = guard_scope('gb_events');

--
-- single-row INSERT
--
-- first time: the row goes in and the key is recorded
INSERT INTO gb_events VALUES ('e1', 'first');
\echo inserted :ROW_COUNT
-- a retry of the same key: dropped silently, the row count says 0
INSERT INTO gb_events VALUES ('e1', 'retry');
\echo inserted :ROW_COUNT
SELECT * FROM gb_events ORDER BY event_id, payload;
-- the key row: in the guard's scope, key = the column's text, no fingerprint
-- and no result, live
SELECT key, fingerprint IS NULL AS no_fingerprint, result IS NULL AS no_result,
	   expires_at > now() AS live
FROM idempotency_keys WHERE scope = guard_scope('gb_events');

--
-- multi-row INSERT with duplicates inside the statement and of earlier keys
--
INSERT INTO gb_events VALUES ('e2', 'a'), ('e3', 'b'), ('e2', 'c'), ('e1', 'd'), ('e3', 'e');
\echo inserted :ROW_COUNT
-- only the first e2 and the first e3 went in
SELECT * FROM gb_events ORDER BY event_id, payload;

--
-- RETURNING leaves the skipped rows out, and so does the row count
--
INSERT INTO gb_events VALUES ('e4', 'x'), ('e1', 'y'), ('e4', 'z'), ('e5', 'w')
RETURNING *;
\echo inserted :ROW_COUNT
WITH ins AS (
	INSERT INTO gb_events VALUES ('e5', 'again'), ('e6', 'new') RETURNING event_id
)
SELECT array_agg(event_id) AS returned, count(*) AS returned_count FROM ins;

--
-- INSERT ... SELECT, with duplicates in the source and of earlier keys
--
INSERT INTO gb_events
SELECT 'e' || (g % 8), 'select ' || g FROM generate_series(1, 16) g ORDER BY g;
\echo inserted :ROW_COUNT
-- e0 and e7 are new (from rows 7 and 8); every other key was known
SELECT * FROM gb_events WHERE payload LIKE 'select%' ORDER BY event_id;

--
-- COPY FROM: duplicates in the data and of earlier keys are dropped
--
COPY gb_events FROM stdin;
c1	copy 1
e1	copy dup of e1
c2	copy 2
c1	copy dup of c1
\N	copy null key
c3	copy 3
\.
\echo copied :ROW_COUNT
SELECT * FROM gb_events WHERE payload LIKE 'copy%' ORDER BY event_id, payload;
-- COPY of only duplicates loads nothing
COPY gb_events (event_id) FROM stdin;
c1
c2
c3
\.
\echo copied :ROW_COUNT

-- one key per distinct non-NULL value, one row per key
SELECT guard_keys('gb_events');
SELECT count(*) AS rows, count(DISTINCT event_id) AS distinct_keys,
	   count(*) FILTER (WHERE event_id IS NULL) AS null_keys
FROM gb_events;

--
-- NULL keys are not deduplicated (as with a unique constraint) and not recorded
--
SELECT count(*) AS keys_before FROM idempotency_keys WHERE scope = guard_scope('gb_events') \gset
INSERT INTO gb_events VALUES (NULL, 'n1'), (NULL, 'n2');
\echo inserted :ROW_COUNT
INSERT INTO gb_events VALUES (NULL, 'n3');
\echo inserted :ROW_COUNT
SELECT count(*) AS null_key_rows FROM gb_events WHERE event_id IS NULL;
SELECT count(*) - :keys_before AS keys_recorded FROM idempotency_keys
WHERE scope = guard_scope('gb_events');

--
-- a duplicate earlier in the same transaction is a duplicate too
--
BEGIN;
INSERT INTO gb_events VALUES ('t1', 'in xact 1');
INSERT INTO gb_events VALUES ('t1', 'in xact 2');
\echo inserted :ROW_COUNT
COMMIT;
SELECT * FROM gb_events WHERE event_id = 't1';

--
-- ROLLBACK forgets the keys with the rows
--
BEGIN;
INSERT INTO gb_events VALUES ('r1', 'rolled back'), ('r2', 'rolled back');
ROLLBACK;
SELECT count(*) AS r_keys FROM idempotency_keys
WHERE scope = guard_scope('gb_events') AND key IN ('r1', 'r2');
INSERT INTO gb_events VALUES ('r1', 'after rollback');
\echo inserted :ROW_COUNT
-- and so does rolling back to a savepoint taken before the insert
BEGIN;
SAVEPOINT s;
INSERT INTO gb_events VALUES ('r2', 'rolled back to savepoint');
ROLLBACK TO SAVEPOINT s;
INSERT INTO gb_events VALUES ('r2', 'after savepoint rollback');
\echo inserted :ROW_COUNT
COMMIT;
SELECT * FROM gb_events WHERE event_id IN ('r1', 'r2') ORDER BY event_id;

--
-- expired keys count as absent: the row goes in again and the key is renewed
--
UPDATE idempotency_keys SET created_at = now() - interval '2 days',
	expires_at = now() - interval '1 second'
WHERE scope = guard_scope('gb_events') AND key = 'e1';
INSERT INTO gb_events VALUES ('e1', 'after expiry');
\echo inserted :ROW_COUNT
SELECT count(*) AS e1_rows FROM gb_events WHERE event_id = 'e1';
-- one key row, live again, created anew (not 2 days ago)
SELECT count(*) AS e1_keys, bool_and(expires_at > now()) AS live,
	   bool_and(created_at > now() - interval '1 hour') AS created_anew
FROM idempotency_keys WHERE scope = guard_scope('gb_events') AND key = 'e1';
-- and it dedupes again
INSERT INTO gb_events VALUES ('e1', 'dup after renewal');
\echo inserted :ROW_COUNT
-- a key expiring exactly now is expired too (live means expires_at > now())
BEGIN;
UPDATE idempotency_keys SET expires_at = now()
WHERE scope = guard_scope('gb_events') AND key = 'e2';
INSERT INTO gb_events VALUES ('e2', 'expired at now');
\echo inserted :ROW_COUNT
COMMIT;

--
-- ttl: NULL means idempotency.ttl, read at insert time; an explicit ttl wins
--
CREATE TABLE gb_ttl_default (k text);
CREATE TABLE gb_ttl_explicit (k text);
SELECT idem_guard('gb_ttl_default', 'k');
SELECT idem_guard('gb_ttl_explicit', 'k', interval '90 minutes');
-- the trigger keeps the ttl spelt as IntervalStyle postgres prints it
-- ('01:30:00'), not as this session prints intervals (pg_regress uses
-- postgres_verbose: '@ 1 hour 30 mins')
SELECT guard_triggerdef('gb_ttl_explicit');
-- idempotency.ttl default (24h)
INSERT INTO gb_ttl_default VALUES ('d-24h');
INSERT INTO gb_ttl_explicit VALUES ('x-24h');
-- a changed idempotency.ttl applies to the next insert of the default guard
-- only, without guarding again
SET idempotency.ttl = '1h';
INSERT INTO gb_ttl_default VALUES ('d-1h');
INSERT INTO gb_ttl_explicit VALUES ('x-1h');
SET idempotency.ttl = 120;
INSERT INTO gb_ttl_default VALUES ('d-120s');
RESET idempotency.ttl;
SELECT key, expires_at - created_at AS ttl,
	   extract(epoch FROM expires_at - created_at) AS ttl_seconds
FROM idempotency_keys
WHERE scope IN (guard_scope('gb_ttl_default'), guard_scope('gb_ttl_explicit'))
ORDER BY key;

-- the ttl's spelling does not depend on the IntervalStyle of the session
-- that guards, nor is its meaning changed by the IntervalStyle of the
-- session that inserts: a ttl with mixed signs (-1 day +50 hours = 26 hours)
-- given under sql_standard is kept as '-1 days +50:00:00' and gives 26
-- hours under every style
CREATE TABLE gb_ttl_style (k text);
SET IntervalStyle = 'sql_standard';
SELECT idem_guard('gb_ttl_style', 'k', interval '-1 day' + interval '50 hours');
SELECT guard_triggerdef('gb_ttl_style');
-- (in UTC, so that no daylight saving change makes a day 23 or 25 hours)
SET TimeZone = 'UTC';
INSERT INTO gb_ttl_style VALUES ('sql_standard');
SET IntervalStyle = 'iso_8601';
INSERT INTO gb_ttl_style VALUES ('iso_8601');
SET IntervalStyle = 'postgres';
INSERT INTO gb_ttl_style VALUES ('postgres');
RESET IntervalStyle;
INSERT INTO gb_ttl_style VALUES ('postgres_verbose');
RESET TimeZone;
SELECT key, extract(epoch FROM expires_at - created_at) / 3600 AS ttl_hours
FROM idempotency_keys WHERE scope = guard_scope('gb_ttl_style') ORDER BY key;

-- a short ttl really expires: after it the same key goes in again
CREATE TABLE gb_ttl_short (k text);
SELECT idem_guard('gb_ttl_short', 'k', interval '1 second');
INSERT INTO gb_ttl_short VALUES ('s1');
INSERT INTO gb_ttl_short VALUES ('s1');
\echo inserted :ROW_COUNT
SELECT pg_sleep(1.2);
INSERT INTO gb_ttl_short VALUES ('s1');
\echo inserted :ROW_COUNT
SELECT count(*) AS s1_rows FROM gb_ttl_short;

--
-- key columns of other types are keyed by their text form
--
CREATE TABLE gb_bigint (id bigint, note text);
CREATE TABLE gb_uuid (id uuid, note text);
SELECT idem_guard('gb_bigint', 'id');
SELECT idem_guard('gb_uuid', 'id');
INSERT INTO gb_bigint VALUES (1, 'a'), (9223372036854775807, 'b'), (1, 'dup'),
	(-5, 'c'), ('9223372036854775807', 'dup');
\echo inserted :ROW_COUNT
INSERT INTO gb_bigint SELECT g, 'series' FROM generate_series(-5, 2) g;
\echo inserted :ROW_COUNT
SELECT * FROM gb_bigint ORDER BY id, note;
SELECT guard_keys('gb_bigint');
-- a uuid in any input spelling is the same key
INSERT INTO gb_uuid VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'first'),
	('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'upper case dup'),
	('{a0eebc999c0b4ef8bb6d6bb9bd380a11}', 'braces dup'),
	('b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', 'second');
\echo inserted :ROW_COUNT
SELECT * FROM gb_uuid ORDER BY id;
SELECT guard_keys('gb_uuid');

--
-- on_duplicate => 'error': the duplicate fails with 23505 naming the key
--
CREATE TABLE gb_strict (id integer, note text);
SELECT idem_guard('gb_strict', 'id', on_duplicate => 'error');
SELECT guard_triggerdef('gb_strict');
INSERT INTO gb_strict VALUES (1, 'first');
-- message (terse)
INSERT INTO gb_strict VALUES (1, 'dup');
-- message and detail
\set VERBOSITY default
INSERT INTO gb_strict VALUES (1, 'dup');
-- SQLSTATE
\set VERBOSITY sqlstate
INSERT INTO gb_strict VALUES (1, 'dup');
\set VERBOSITY terse
-- SQLSTATE 23505 is unique_violation, catchable as such; the error names the
-- table (and the guard trigger as the constraint)
DO $$
BEGIN
	INSERT INTO gb_strict VALUES (1, 'dup');
	RAISE NOTICE 'no error';
EXCEPTION WHEN unique_violation THEN
	DECLARE
		tbl text;
		con text;
	BEGIN
		GET STACKED DIAGNOSTICS tbl = TABLE_NAME, con = CONSTRAINT_NAME;
		RAISE NOTICE 'SQLSTATE % table % constraint %', SQLSTATE, tbl, con;
	END;
END
$$;
-- a duplicate inside one multi-row statement fails the whole statement, so
-- the keys its earlier rows recorded are forgotten with them
INSERT INTO gb_strict VALUES (2, 'a'), (3, 'b'), (2, 'c');
SELECT count(*) AS keys_2_3 FROM idempotency_keys
WHERE scope = guard_scope('gb_strict') AND key IN ('2', '3');
INSERT INTO gb_strict VALUES (2, 'a'), (3, 'b');
-- the same in COPY
COPY gb_strict FROM stdin;
4	copy
1	copy dup
\.
SELECT * FROM gb_strict ORDER BY id;
SELECT guard_keys('gb_strict');
-- NULL keys pass in error mode too
INSERT INTO gb_strict VALUES (NULL, 'null 1'), (NULL, 'null 2');
SELECT count(*) AS null_rows FROM gb_strict WHERE id IS NULL;

--
-- two guarded tables are independent: the same key goes into both
--
CREATE TABLE gb_other (event_id text, payload text);
SELECT idem_guard('gb_other', 'event_id');
SELECT guard_scope('gb_other') <> guard_scope('gb_events') AS distinct_scopes;
INSERT INTO gb_other VALUES ('e1', 'other table');
\echo inserted :ROW_COUNT
INSERT INTO gb_other VALUES ('e1', 'other table dup');
\echo inserted :ROW_COUNT
SELECT count(*) AS e1_in_events FROM gb_events WHERE event_id = 'e1';

-- guard keys and idem_execute keys do not collide either: idem_execute with
-- key 'e1' runs although guard key 'e1' exists, and the guard keeps
-- deduplicating 'e1' afterwards
SELECT idem_execute('e1', 'INSERT INTO gb_other VALUES ($1, $2)', 'x1', 'via idem_execute');
INSERT INTO gb_other VALUES ('e1', 'dup after idem_execute');
\echo inserted :ROW_COUNT
SELECT * FROM gb_other ORDER BY event_id, payload;
SELECT idem_forget('e1');

--
-- one scope per table whoever inserts: a key inserted by one role is a
-- duplicate for another, although neither may write the keys table
--
CREATE ROLE regress_guard_a;
CREATE ROLE regress_guard_b;
CREATE TABLE gb_shared (k text, by_role text DEFAULT current_user);
SELECT idem_guard('gb_shared', 'k');
GRANT SELECT, INSERT ON gb_shared TO regress_guard_a, regress_guard_b;
SET ROLE regress_guard_a;
INSERT INTO gb_shared (k) VALUES ('s1'), ('s2');
\echo inserted :ROW_COUNT
-- the guard's keys are not visible to an ordinary role
SELECT count(*) AS visible_keys FROM idempotency_keys;
RESET ROLE;
SET ROLE regress_guard_b;
INSERT INTO gb_shared (k) VALUES ('s2'), ('s3');
\echo inserted :ROW_COUNT
-- and cannot be written directly
DELETE FROM idempotency_keys;
RESET ROLE;
SELECT * FROM gb_shared ORDER BY k;
SELECT guard_keys('gb_shared');

--
-- guarding a guarded table again replaces its settings, keeps its guard id
-- and so its keys
--
SELECT guard_scope('gb_events') AS events_scope \gset
SELECT count(*) AS events_keys FROM idempotency_keys WHERE scope = :'events_scope' \gset
SELECT idem_guard('gb_events', 'event_id', interval '2 hours', 'error');
SELECT count(*) AS guard_triggers FROM pg_trigger
WHERE tgrelid = 'gb_events'::regclass AND tgname = 'zz_idempotency_guard';
SELECT guard_triggerdef('gb_events');
SELECT count(*) AS registered FROM idempotency_guards WHERE tbl = 'gb_events'::regclass;
SELECT guard_scope('gb_events') = :'events_scope' AS same_guard_id,
	   guard_trigger_id('gb_events') = :'events_scope' AS trigger_has_same_id,
	   (SELECT count(*) FROM idempotency_keys WHERE scope = :'events_scope') = :events_keys
	   AS same_keys;
-- a key recorded under 'skip' is now an error
INSERT INTO gb_events VALUES ('e1', 'dup now an error');
-- new keys get the new ttl
INSERT INTO gb_events VALUES ('g1', 'new ttl');
SELECT expires_at - created_at AS ttl FROM idempotency_keys
WHERE scope = :'events_scope' AND key = 'g1';
-- and back to 'skip', idempotency.ttl; the key column may change too
ALTER TABLE gb_events ADD COLUMN alt_key text;
SELECT idem_guard('gb_events', 'alt_key');
SELECT guard_triggerdef('gb_events');
SELECT guard_scope('gb_events') = :'events_scope' AS same_guard_id;
-- the old keys still live in the scope: alt_key 'g1' is a duplicate of the
-- key event_id 'g1' recorded before
INSERT INTO gb_events (event_id, alt_key) VALUES ('z1', 'g1'), ('z2', 'z-new');
\echo inserted :ROW_COUNT
SELECT event_id, alt_key FROM gb_events WHERE alt_key IS NOT NULL;

--
-- idem_unguard drops the trigger and the guard's keys, and no other keys
--
SELECT count(*) > 0 AS had_keys FROM idempotency_keys WHERE scope = :'events_scope';
SELECT count(*) AS other_keys_before FROM idempotency_keys WHERE scope <> :'events_scope' \gset
SELECT idem_unguard('gb_events');
SELECT count(*) AS guard_triggers FROM pg_trigger
WHERE tgrelid = 'gb_events'::regclass AND tgname = 'zz_idempotency_guard';
SELECT count(*) AS keys_left FROM idempotency_keys WHERE scope = :'events_scope';
SELECT count(*) = :other_keys_before AS other_keys_kept FROM idempotency_keys;
-- and its registration
SELECT count(*) AS registered FROM idempotency_guards WHERE tbl = 'gb_events'::regclass;
-- duplicates go in now
INSERT INTO gb_events (event_id) VALUES ('e1');
\echo inserted :ROW_COUNT
-- a second unguard says so and does nothing
SELECT idem_unguard('gb_events');
-- so does unguarding a table never guarded
CREATE TABLE gb_plain (k text);
SELECT idem_unguard('gb_plain');
-- guarding it again starts a new guard with a new id and no keys
SELECT idem_guard('gb_events', 'event_id');
SELECT guard_scope('gb_events') <> :'events_scope' AS new_guard_id,
	   guard_scope('gb_events') = guard_trigger_id('gb_events')
	   AS trigger_has_registered_id;
INSERT INTO gb_events (event_id) VALUES ('e1');
\echo inserted :ROW_COUNT

--
-- a table in another schema, with names needing quotes
--
CREATE SCHEMA "Guard Schema";
CREATE TABLE "Guard Schema"."Event Log" ("Event Id" text, n int);
SELECT idem_guard('"Guard Schema"."Event Log"', 'Event Id', on_duplicate => 'error');
SELECT guard_triggerdef('"Guard Schema"."Event Log"');
INSERT INTO "Guard Schema"."Event Log" VALUES ('q1', 1);
INSERT INTO "Guard Schema"."Event Log" VALUES ('q1', 2);
-- the detail quotes the column name as PostgreSQL's own unique violation does
\set VERBOSITY default
INSERT INTO "Guard Schema"."Event Log" VALUES ('q1', 2);
\set VERBOSITY terse
SELECT idem_unguard('"Guard Schema"."Event Log"');
SELECT count(*) AS guard_triggers FROM pg_trigger WHERE tgname = 'zz_idempotency_guard'
	AND tgrelid = '"Guard Schema"."Event Log"'::regclass;
SELECT count(*) AS registered FROM idempotency_guards
WHERE tbl = '"Guard Schema"."Event Log"'::regclass;

-- clean up: unguard what is still guarded, then drop
DO $$
DECLARE
	t regclass;
BEGIN
	FOREACH t IN ARRAY ARRAY['gb_events', 'gb_ttl_default', 'gb_ttl_explicit',
		'gb_ttl_short', 'gb_ttl_style', 'gb_bigint', 'gb_uuid', 'gb_strict', 'gb_other',
		'gb_shared']::regclass[]
	LOOP
		PERFORM idem_unguard(t);
	END LOOP;
END
$$;
SELECT count(*) AS guard_triggers_left FROM pg_trigger WHERE tgname = 'zz_idempotency_guard';
SELECT count(*) AS guards_left FROM idempotency_guards;
DROP SCHEMA "Guard Schema" CASCADE;
DROP TABLE gb_events, gb_ttl_default, gb_ttl_explicit, gb_ttl_short, gb_ttl_style, gb_bigint,
	gb_uuid, gb_strict, gb_other, gb_shared, gb_plain;
DROP FUNCTION guard_scope(regclass), guard_trigger_id(regclass), guard_keys(regclass),
	guard_triggerdef(regclass);
DROP ROLE regress_guard_a, regress_guard_b;
DELETE FROM idempotency_keys;
