--
-- guard_key_settings: the guard's key is the key column's *value*.  The same
-- value is a duplicate and different values are not, whatever the
-- inserting session's output settings (TimeZone, DateStyle, IntervalStyle,
-- extra_float_digits, bytea_output): a consumer's sessions do not all share
-- one configuration, and the key must not depend on it.
--
-- So the key is the value's text form printed under fixed settings
-- (DateStyle ISO, IntervalStyle postgres, extra_float_digits 3,
-- bytea_output hex, TimeZone UTC), for every type except those whose text
-- form no setting changes (bool, "char", name, integers, oid, numeric, text,
-- varchar, char(n), uuid, json, jsonb and arrays of them).  Each case below
-- also shows the recorded keys.
--
\set VERBOSITY terse

-- the keys recorded by a table's guard, in order
CREATE FUNCTION gks_keys(t regclass) RETURNS SETOF text LANGUAGE sql AS $$
	SELECT key FROM idempotency_keys
	WHERE scope = (SELECT guard_id FROM idempotency_guards WHERE tbl = t)
	ORDER BY key COLLATE "C"
$$;

-- float8: two different values that print alike with extra_float_digits = 0
CREATE TABLE gks_float (x float8);
SELECT idem_guard('gks_float', 'x');
SET extra_float_digits = 0;
INSERT INTO gks_float VALUES (0.3);
INSERT INTO gks_float VALUES (0.1::float8 + 0.2::float8);
\echo inserted :ROW_COUNT
RESET extra_float_digits;
-- both went in: they are different values
SELECT count(*) AS rows, count(DISTINCT x) AS distinct_values FROM gks_float;
-- and the same value printed with full precision is a duplicate
INSERT INTO gks_float VALUES (0.1::float8 + 0.2::float8);
\echo inserted :ROW_COUNT
-- keys with every digit (extra_float_digits 3)
SELECT gks_keys('gks_float');

-- timestamptz: one instant inserted from sessions in different time zones
CREATE TABLE gks_tstz (t timestamptz);
SELECT idem_guard('gks_tstz', 't');
SET TimeZone = 'UTC';
INSERT INTO gks_tstz VALUES ('2024-01-01 00:00:00+00');
SET TimeZone = 'America/New_York';
INSERT INTO gks_tstz VALUES ('2024-01-01 00:00:00+00');
\echo inserted :ROW_COUNT
RESET TimeZone;
SELECT count(*) AS rows FROM gks_tstz;
-- the key is the instant in UTC, ISO style
SELECT gks_keys('gks_tstz');

-- date: DateStyle changes how a date prints
CREATE TABLE gks_date (d date);
SELECT idem_guard('gks_date', 'd');
SET DateStyle = 'SQL, DMY';
INSERT INTO gks_date VALUES (make_date(2024, 1, 2));
SET DateStyle = 'SQL, MDY';
-- a different date that prints as 02/01/2024 here: it must go in
INSERT INTO gks_date VALUES (make_date(2024, 2, 1));
\echo inserted :ROW_COUNT
SET DateStyle = 'ISO, YMD';
-- the first date again, printed another way: a duplicate
INSERT INTO gks_date VALUES (make_date(2024, 1, 2));
\echo inserted :ROW_COUNT
RESET DateStyle;
SELECT count(*) AS rows, count(DISTINCT d) AS distinct_values FROM gks_date;
-- ISO dates
SELECT gks_keys('gks_date');

-- interval: IntervalStyle changes how an interval prints
CREATE TABLE gks_interval (i interval);
SELECT idem_guard('gks_interval', 'i');
SET IntervalStyle = 'postgres';
INSERT INTO gks_interval VALUES (interval '1 day 2 hours');
SET IntervalStyle = 'iso_8601';
INSERT INTO gks_interval VALUES (interval '1 day 2 hours');
\echo inserted :ROW_COUNT
RESET IntervalStyle;
SELECT count(*) AS rows FROM gks_interval;
-- IntervalStyle postgres
SELECT gks_keys('gks_interval');

-- bytea: bytea_output changes how bytes print
CREATE TABLE gks_bytea (b bytea);
SELECT idem_guard('gks_bytea', 'b');
SET bytea_output = 'hex';
INSERT INTO gks_bytea VALUES ('\x6b6579');
SET bytea_output = 'escape';
INSERT INTO gks_bytea VALUES ('\x6b6579');
\echo inserted :ROW_COUNT
RESET bytea_output;
SELECT count(*) AS rows FROM gks_bytea;
-- hex
SELECT gks_keys('gks_bytea');

-- arrays and domains: printed under the same fixed settings as their
-- element or base type
CREATE DOMAIN gks_day AS date;
CREATE TABLE gks_array (a timestamptz[]);
SELECT idem_guard('gks_array', 'a');
SET TimeZone = 'Asia/Tokyo';
INSERT INTO gks_array VALUES (ARRAY['2024-01-01 09:00:00+09', '2024-06-01 09:00:00+09']::timestamptz[]);
SET TimeZone = 'America/New_York';
INSERT INTO gks_array VALUES (ARRAY['2024-01-01 00:00:00+00', '2024-06-01 00:00:00+00']::timestamptz[]);
\echo inserted :ROW_COUNT
RESET TimeZone;
SELECT gks_keys('gks_array');
CREATE TABLE gks_domain (d gks_day);
SELECT idem_guard('gks_domain', 'd');
SET DateStyle = 'German';
INSERT INTO gks_domain VALUES ('2024-03-04');
SET DateStyle = 'ISO';
INSERT INTO gks_domain VALUES ('2024-03-04');
\echo inserted :ROW_COUNT
RESET DateStyle;
SELECT gks_keys('gks_domain');

-- clean up
DO $$
DECLARE
	t regclass;
BEGIN
	FOREACH t IN ARRAY ARRAY['gks_float', 'gks_tstz', 'gks_date', 'gks_interval',
		'gks_bytea', 'gks_array', 'gks_domain']::regclass[]
	LOOP
		PERFORM idem_unguard(t);
	END LOOP;
END
$$;
DROP TABLE gks_float, gks_tstz, gks_date, gks_interval, gks_bytea, gks_array,
	gks_domain;
DROP DOMAIN gks_day;
DROP FUNCTION gks_keys(regclass);
DELETE FROM idempotency_keys;
