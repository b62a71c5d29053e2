-- Argument types are looked up once per backend (execute.c), yet a retry
-- still compares arguments by their current schema-qualified type name:
-- renaming a type or its schema makes the next call a different request.
-- Calls with more distinct types than the cache holds (32) hash alike.
SET client_min_messages = warning;
CREATE SCHEMA tc;
CREATE TYPE tc.mood AS ENUM ('happy', 'sad');

SELECT idem_execute('tc-1', 'SELECT $1::text AS m', 'happy'::tc.mood) ->> 'replayed' AS replayed;
SELECT idem_execute('tc-1', 'SELECT $1::text AS m', 'happy'::tc.mood) ->> 'replayed' AS replayed;
-- the type's name changes: the same call is now another request
ALTER TYPE tc.mood RENAME TO feeling;
SELECT idem_execute('tc-1', 'SELECT $1::text AS m', 'happy'::tc.feeling);
-- under a new key it runs, and replays under the new name
SELECT idem_execute('tc-2', 'SELECT $1::text AS m', 'happy'::tc.feeling) ->> 'replayed' AS replayed;
SELECT idem_execute('tc-2', 'SELECT $1::text AS m', 'happy'::tc.feeling) ->> 'replayed' AS replayed;
-- and so does its schema's
ALTER SCHEMA tc RENAME TO tc2;
SELECT idem_execute('tc-2', 'SELECT $1::text AS m', 'happy'::tc2.feeling);
ALTER SCHEMA tc2 RENAME TO tc;
SELECT idem_execute('tc-2', 'SELECT $1::text AS m', 'happy'::tc.feeling) ->> 'replayed' AS replayed;

-- 40 arguments of 40 types: more than the cache keeps
DO $$
BEGIN
    FOR i IN 1..40 LOOP
        EXECUTE format('CREATE DOMAIN tc.d%s AS int', i);
    END LOOP;
END
$$;
-- call40(key, last, first_type, last_type): $1 of type tc.<first_type>,
-- $2 .. $39 of tc.d2 .. tc.d39, $40 = last of type tc.<last_type>
CREATE FUNCTION tc.call40(key text, last int, first_type text DEFAULT 'd1', last_type text DEFAULT 'd40')
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    args text;
    result jsonb;
BEGIN
    SELECT string_agg(CASE i WHEN 1 THEN format('1::tc.%I', first_type)
                             WHEN 40 THEN format('%s::tc.%I', last, last_type)
                             ELSE format('%s::tc.d%s', i, i) END, ', ' ORDER BY i)
      INTO args FROM generate_series(1, 40) AS i;
    EXECUTE format('SELECT idem_execute(%L, %L, %s)', key,
                   'SELECT $1::int + $40::int AS s', args)
      INTO result;
    RETURN result;
END
$$;
SELECT tc.call40('tc-40', 40) - 'command' AS first;
SELECT tc.call40('tc-40', 40) ->> 'replayed' AS again;
SELECT tc.call40('tc-40', 41);
-- renamed types, one the cache holds and one past it: other requests
ALTER DOMAIN tc.d1 RENAME TO d1_renamed;
SELECT tc.call40('tc-40', 40, first_type => 'd1_renamed');
ALTER DOMAIN tc.d1_renamed RENAME TO d1;
ALTER DOMAIN tc.d40 RENAME TO d40_renamed;
SELECT tc.call40('tc-40', 40, last_type => 'd40_renamed');
ALTER DOMAIN tc.d40_renamed RENAME TO d40;
SELECT tc.call40('tc-40', 40) ->> 'replayed' AS replayed_again;
SELECT count(*) FILTER (WHERE idem_forget(k)) AS forgotten FROM unnest(ARRAY['tc-1', 'tc-2', 'tc-40']) AS k;
DROP SCHEMA tc CASCADE;
