-- The object idem_execute returns is the stored object with "replayed"
-- added, built from the stored bytes (statement.c): check it against
-- jsonb_concat for results of every shape, including ones whose values need
-- alignment padding (numerics, nested containers), long strings, and a
-- result large enough to be compressed and toasted in idempotency_keys.
SET client_min_messages = warning;
CREATE TABLE shapes (id int PRIMARY KEY, n numeric, s text, a int[], j jsonb, b boolean, f float8);
INSERT INTO shapes VALUES
  (1, 1, 'x', '{1}', '{"k": 1}', true, 1.5),
  (2, 12345678901234567890.123456789, 'xy', '{1,2,3}', '[1, [2, {"a": null}]]', false, -0.0),
  (3, NULL, NULL, NULL, NULL, NULL, NULL),
  (4, -0.5, repeat('é', 3), '{}', '"str"', true, 'NaN'),
  (5, 7, '', '{NULL}', 'null', false, 1e300);
CREATE TABLE big (id int, payload text);
INSERT INTO big SELECT i, md5(i::text) FROM generate_series(1, 400) AS i;

CREATE FUNCTION check_replay(key text, sql text) RETURNS TABLE (first_ok boolean, replay_ok boolean, lookups_ok boolean)
LANGUAGE plpgsql AS $$
DECLARE
    first jsonb;
    again jsonb;
    stored jsonb;
BEGIN
    first := idem_execute(key, sql);
    again := idem_execute(key, sql);
    stored := idem_lookup(key);
    first_ok := first = stored || '{"replayed": false}' AND first::text = (stored || '{"replayed": false}')::text;
    replay_ok := again = stored || '{"replayed": true}' AND again::text = (stored || '{"replayed": true}')::text;
    -- key lookups walk the JEntries: every key is found, with its value
    lookups_ok := (again -> 'replayed') = 'true' AND (first -> 'replayed') = 'false'
        AND again -> 'rows' = stored -> 'rows' AND again ->> 'command' = stored ->> 'command'
        AND (again -> 'row_count') = (stored -> 'row_count')
        AND (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(again) AS k)
            = '{command,replayed,row_count,rows}'
        AND jsonb_typeof(again) = 'object';
    RETURN NEXT;
END
$$;

SELECT * FROM check_replay('no-rows', 'UPDATE shapes SET n = n WHERE false');
SELECT * FROM check_replay('no-returning', 'UPDATE shapes SET n = n WHERE id = 1');
SELECT * FROM check_replay('one-numeric', 'SELECT n FROM shapes WHERE id = 2');
SELECT * FROM check_replay('all-shapes', 'SELECT * FROM shapes ORDER BY id');
SELECT * FROM check_replay('nested', 'SELECT j, a FROM shapes WHERE id = 2');
SELECT * FROM check_replay('odd-text', 'SELECT s, b FROM shapes WHERE id IN (4, 5) ORDER BY id');
SELECT * FROM check_replay('toasted', 'SELECT * FROM big ORDER BY id');
-- the large result is stored compressed or out of line, and still replays
SELECT pg_column_size(result) < octet_length(result::text) AS compressed
  FROM idempotency_keys WHERE key = 'toasted';
SELECT jsonb_array_length(idem_execute('toasted', 'SELECT * FROM big ORDER BY id') -> 'rows') AS rows,
       idem_execute('toasted', 'SELECT * FROM big ORDER BY id') -> 'rows' -> 399 ->> 'payload' = md5('400') AS last_row;
-- a numeric right after the keys: its padding survives the move
SELECT idem_execute('one-numeric', 'SELECT n FROM shapes WHERE id = 2') #>> '{rows,0,n}' AS n;
DROP FUNCTION check_replay(text, text);
SELECT count(*) FILTER (WHERE idem_forget(k)) AS forgotten
  FROM unnest(ARRAY['no-rows', 'no-returning', 'one-numeric', 'all-shapes', 'nested', 'odd-text', 'toasted']) AS k;
DROP TABLE shapes, big;
