--
-- param_types: the arguments after sql are bound to $1..$n in their own
-- types (pg_typeof($n) shows the type the statement saw); untyped literals
-- bind as text; VARIADIC ARRAY[...] spreads its elements over $1..$n; NULL
-- arguments bind as NULL.  Each value round-trips unchanged, and the
-- "rows" of the result show its JSON form.
--
\set VERBOSITY terse
-- fixed output for date/time values
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';

CREATE TYPE pt_mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN pt_posint AS integer CHECK (VALUE > 0);
CREATE TYPE pt_pair AS (a integer, b text);

-- integers: smallint, integer, bigint (a bare integer literal is integer)
SELECT idem_execute('pt-int2', 'SELECT $1 AS v, pg_typeof($1)::text AS t', 7::smallint) -> 'rows';
SELECT idem_execute('pt-int4', 'SELECT $1 AS v, pg_typeof($1)::text AS t', 7) -> 'rows';
SELECT idem_execute('pt-int8', 'SELECT $1 AS v, pg_typeof($1)::text AS t', 9007199254740993::bigint) -> 'rows';
-- numeric keeps its scale (100.00 stays 100.00) and its precision
SELECT idem_execute('pt-numeric', 'SELECT $1 AS v, pg_typeof($1)::text AS t', 100.00::numeric) -> 'rows';
SELECT idem_execute('pt-numeric-big', 'SELECT $1 AS v', 12345678901234567890.000000000001) -> 'rows';
-- real and double precision; NaN and Infinity, which JSON lacks, become strings
SELECT idem_execute('pt-float4', 'SELECT $1 AS v, pg_typeof($1)::text AS t', 1.5::real) -> 'rows';
SELECT idem_execute('pt-float8', 'SELECT $1 AS v, pg_typeof($1)::text AS t', 2.25::double precision) -> 'rows';
SELECT idem_execute('pt-float8-special', 'SELECT $1 AS nan, $2 AS inf',
	'NaN'::float8, '-Infinity'::float8) -> 'rows';
-- text and varchar (each keeps its type)
SELECT idem_execute('pt-text', 'SELECT $1 AS v, pg_typeof($1)::text AS t', 'héllo "wörld"'::text) -> 'rows';
SELECT idem_execute('pt-varchar', 'SELECT $1 AS v, pg_typeof($1)::text AS t', 'abc'::varchar(10)) -> 'rows';
-- boolean
SELECT idem_execute('pt-bool', 'SELECT $1 AS v, pg_typeof($1)::text AS t, NOT $2 AS w', true, false) -> 'rows';
-- date, timestamp, timestamptz, interval
SELECT idem_execute('pt-date', 'SELECT $1 AS v, pg_typeof($1)::text AS t', '2024-02-29'::date) -> 'rows';
SELECT idem_execute('pt-timestamp', 'SELECT $1 AS v, pg_typeof($1)::text AS t', '2024-02-29 13:14:15.123456'::timestamp) -> 'rows';
SELECT idem_execute('pt-timestamptz', 'SELECT $1 AS v, pg_typeof($1)::text AS t', '2024-02-29 13:14:15+02'::timestamptz) -> 'rows';
SELECT idem_execute('pt-interval', 'SELECT $1 AS v, pg_typeof($1)::text AS t', '1 day 02:03:04'::interval) -> 'rows';
-- json and jsonb: nested into the row as JSON, not as a string
SELECT idem_execute('pt-json', 'SELECT $1 AS v, pg_typeof($1)::text AS t', '{"b": [1, 2], "a": null}'::json) -> 'rows';
SELECT idem_execute('pt-jsonb', 'SELECT $1 AS v, pg_typeof($1)::text AS t', '{"b": [1, 2], "a": null}'::jsonb) -> 'rows';
SELECT idem_execute('pt-jsonb-op', 'SELECT $1 -> ''b'' -> 1 AS second', '{"b": [1, 2]}'::jsonb) -> 'rows';
-- uuid
SELECT idem_execute('pt-uuid', 'SELECT $1 AS v, pg_typeof($1)::text AS t', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid) -> 'rows';
-- bytea, with a zero byte
SELECT idem_execute('pt-bytea', 'SELECT $1 AS v, pg_typeof($1)::text AS t, length($1) AS len', '\x00ff10'::bytea) -> 'rows';
-- arrays: one array argument is one parameter of an array type
SELECT idem_execute('pt-int-array', 'SELECT $1 AS v, pg_typeof($1)::text AS t, $1[2] AS second', ARRAY[1, 2, 3]) -> 'rows';
SELECT idem_execute('pt-text-array', 'SELECT $1 AS v, pg_typeof($1)::text AS t', ARRAY['a', NULL, 'c "q"']) -> 'rows';
SELECT idem_execute('pt-2d-array', 'SELECT $1 AS v', ARRAY[[1, 2], [3, 4]]) -> 'rows';
-- an enum, a domain and a composite type keep their own types
SELECT idem_execute('pt-enum', 'SELECT $1 AS v, pg_typeof($1)::text AS t, $1 > ''sad'' AS gt', 'ok'::pt_mood) -> 'rows';
SELECT idem_execute('pt-domain', 'SELECT $1 AS v, pg_typeof($1)::text AS t', 5::pt_posint) -> 'rows';
SELECT idem_execute('pt-composite', 'SELECT $1 AS v, pg_typeof($1)::text AS t, ($1).b AS b', ROW(1, 'x')::pt_pair) -> 'rows';
-- a range
SELECT idem_execute('pt-range', 'SELECT $1 AS v, pg_typeof($1)::text AS t, $1 @> 3 AS has3', int4range(1, 5)) -> 'rows';

-- NULL arguments bind as NULL: a typed NULL in its type, an untyped NULL as text
SELECT idem_execute('pt-null-typed', 'SELECT $1 AS v, pg_typeof($1)::text AS t, $1 IS NULL AS isnull', NULL::int) -> 'rows';
SELECT idem_execute('pt-null-untyped', 'SELECT $1 AS v, pg_typeof($1)::text AS t, $1 IS NULL AS isnull', NULL) -> 'rows';
SELECT idem_execute('pt-null-mixed', 'SELECT $1 AS a, $2 AS b, $3 AS c', 1, NULL::date, 'x') -> 'rows';

-- untyped literals bind as text ...
SELECT idem_execute('pt-unknown', 'SELECT $1 AS v, pg_typeof($1)::text AS t, $1 || ''!'' AS w', 'abc') -> 'rows';
SELECT idem_execute('pt-unknown-num', 'SELECT $1 AS v, pg_typeof($1)::text AS t', '42') -> 'rows';
-- ... so they convert to other types only where text does: an explicit
-- cast works, an INSERT into an integer column needs one
SELECT idem_execute('pt-unknown-cast', 'SELECT $1::int + 1 AS v', '42') -> 'rows';
CREATE TABLE pt_ints (n integer);
SELECT idem_execute('pt-unknown-insert', 'INSERT INTO pt_ints VALUES ($1)', '42');
SELECT idem_execute('pt-unknown-insert2', 'INSERT INTO pt_ints VALUES ($1::int) RETURNING n', '42') -> 'rows';
SELECT idem_execute('pt-typed-insert', 'INSERT INTO pt_ints VALUES ($1) RETURNING n', 43) -> 'rows';
-- an argument not referenced by the statement is still bound (its type
-- is given), so it is allowed
SELECT idem_execute('pt-unused', 'SELECT 1 AS one', 'unused', 2) -> 'rows';

-- VARIADIC ARRAY[...] spreads its elements over $1..$n, in the element type
SELECT idem_execute('pt-variadic', 'SELECT $1 AS a, $2 AS b, $3 AS c, pg_typeof($1)::text AS t',
	VARIADIC ARRAY[10, 20, 30]) -> 'rows';
SELECT idem_execute('pt-variadic-text', 'SELECT $1 || $2 AS v, pg_typeof($1)::text AS t',
	VARIADIC ARRAY['a', 'b']) -> 'rows';
-- NULL elements bind as NULL
SELECT idem_execute('pt-variadic-null-elem', 'SELECT $1 AS a, $2 AS b',
	VARIADIC ARRAY[NULL, 2]) -> 'rows';
-- an empty or NULL VARIADIC array binds no argument at all, as with format()
SELECT idem_execute('pt-variadic-empty', 'SELECT 1 AS one', VARIADIC ARRAY[]::int[]) -> 'rows';
SELECT idem_execute('pt-variadic-null', 'SELECT 1 AS one', VARIADIC NULL::int[]) -> 'rows';
SELECT idem_execute('pt-variadic-null-ref', 'SELECT $1 AS one', VARIADIC NULL::int[]);
-- a VARIADIC array built by a query: 100 arguments
SELECT idem_execute('pt-variadic-100',
	(SELECT 'SELECT ' || string_agg('$' || g, ' + ' ORDER BY g) || ' AS s' FROM generate_series(1, 100) g),
	VARIADIC (SELECT array_agg(g ORDER BY g) FROM generate_series(1, 100) g)) -> 'rows';

-- twenty arguments of mixed types, each in its own type
SELECT jsonb_pretty(idem_execute('pt-twenty',
	'SELECT $1 AS a1, $2 AS a2, $3 AS a3, $4 AS a4, $5 AS a5, $6 AS a6, $7 AS a7,
	        $8 AS a8, $9 AS a9, $10 AS a10, $11 AS a11, $12 AS a12, $13 AS a13,
	        $14 AS a14, $15 AS a15, $16 AS a16, $17 AS a17, $18 AS a18,
	        $19 AS a19, $20 AS a20,
	        pg_typeof($20)::text AS t20',
	1, 2::bigint, 3.0, 'four', true, '2024-01-06'::date, 7.5::real, '8'::varchar,
	NULL::int, '{"ten": 10}'::jsonb, ARRAY[11], 'happy'::pt_mood, 13::pt_posint,
	'\x0e'::bytea, '15 minutes'::interval, 16::smallint, NULL, 'eighteen',
	19.00::numeric, '00000000-0000-0000-0000-000000000020'::uuid) -> 'rows');

-- every type round-trips through a table: the stored row equals the arguments
CREATE TABLE pt_all (
	c_int2 smallint, c_int4 integer, c_int8 bigint, c_num numeric, c_real real,
	c_float8 double precision, c_text text, c_varchar varchar(10), c_bool boolean,
	c_date date, c_ts timestamp, c_tstz timestamptz, c_interval interval,
	c_json json, c_jsonb jsonb, c_uuid uuid, c_bytea bytea, c_int_arr int[],
	c_text_arr text[], c_enum pt_mood, c_domain pt_posint, c_pair pt_pair,
	c_null integer
);
SELECT jsonb_pretty(idem_execute('pt-roundtrip',
	'INSERT INTO pt_all VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
	                            $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
	 RETURNING *',
	1::smallint, 2, 3::bigint, 100.00::numeric, 1.5::real, 2.25::float8,
	'text', 'varchar'::varchar, true, '2024-02-29'::date,
	'2024-02-29 13:14:15.123456'::timestamp, '2024-02-29 13:14:15+02'::timestamptz,
	'1 day 02:03:04'::interval, '{"b": [1, 2], "a": null}'::json,
	'{"b": [1, 2], "a": null}'::jsonb, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid,
	'\x00ff10'::bytea, ARRAY[1, 2, 3], ARRAY['a', NULL], 'ok'::pt_mood,
	5::pt_posint, ROW(1, 'x')::pt_pair, NULL::int) -> 'rows' -> 0);
SELECT c_int2 = 1 AND c_int4 = 2 AND c_int8 = 3
	   AND c_num::text = '100.00' AND c_real = 1.5 AND c_float8 = 2.25
	   AND c_text = 'text' AND c_varchar = 'varchar' AND c_bool
	   AND c_date = '2024-02-29'
	   AND c_ts = '2024-02-29 13:14:15.123456'
	   AND c_tstz = '2024-02-29 11:14:15+00'
	   AND c_interval = '1 day 02:03:04'
	   AND c_json::text = '{"b": [1, 2], "a": null}'
	   AND c_jsonb = '{"a": null, "b": [1, 2]}'
	   AND c_uuid = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'
	   AND c_bytea = '\x00ff10' AND c_int_arr = '{1,2,3}'
	   AND c_text_arr IS NOT DISTINCT FROM ARRAY['a', NULL]
	   AND c_enum = 'ok' AND c_domain = 5 AND c_pair = ROW(1, 'x')::pt_pair
	   AND c_null IS NULL AS all_equal
FROM pt_all;
SELECT count(*) FROM pt_all;

-- each call above made one key; calling any of them again replays
SELECT idem_execute('pt-domain', 'SELECT $1 AS v, pg_typeof($1)::text AS t', 5::pt_posint) -> 'replayed' AS replayed;
SELECT idem_execute('pt-variadic', 'SELECT $1 AS a, $2 AS b, $3 AS c, pg_typeof($1)::text AS t',
	VARIADIC ARRAY[10, 20, 30]) -> 'replayed' AS replayed;
SELECT idem_execute('pt-null-untyped', 'SELECT $1 AS v, pg_typeof($1)::text AS t, $1 IS NULL AS isnull', NULL) -> 'replayed' AS replayed;

-- clean up
DROP TABLE pt_all;
DROP TABLE pt_ints;
DROP TYPE pt_pair;
DROP DOMAIN pt_posint;
DROP TYPE pt_mood;
RESET TimeZone;
RESET DateStyle;
RESET IntervalStyle;
DELETE FROM idempotency_keys;
