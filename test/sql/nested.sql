--
-- nested: the statement run under a key may itself call idem_execute
-- (directly, through a function or from a trigger) with other keys; the
-- inner keys are recorded in the same transaction.  Calling the same key
-- again from inside the statement run under it is an error, SQLSTATE
-- 55000, and records nothing.
--
\set VERBOSITY terse

CREATE TABLE nest_t (id serial PRIMARY KEY, v text);
-- a function that runs an inner idem_execute
CREATE FUNCTION nest_inner(k text, v text) RETURNS jsonb LANGUAGE sql
	AS $$ SELECT idem_execute(k, 'INSERT INTO nest_t(v) VALUES ($1) RETURNING v', v) $$;

-- an inner call with another key: both keys are recorded, both statements ran
SELECT idem_execute('nest-outer', 'SELECT nest_inner($1, $2) AS inner_result', 'nest-inner', 'x');
SELECT key, result AS rows FROM idempotency_keys ORDER BY key;
SELECT v FROM nest_t ORDER BY id;
-- retrying the outer call replays it; the inner one is not called again
SELECT idem_execute('nest-outer', 'SELECT nest_inner($1, $2) AS inner_result', 'nest-inner', 'x') -> 'replayed' AS replayed;
-- retrying the inner call alone replays it
SELECT idem_execute('nest-inner', 'INSERT INTO nest_t(v) VALUES ($1) RETURNING v', 'x') -> 'replayed' AS replayed;
SELECT count(*) AS rows FROM nest_t;

-- a nested call of an existing key replays inside the outer statement
SELECT idem_execute('nest-outer-2', 'SELECT nest_inner($1, $2) AS inner_result', 'nest-inner', 'x') -> 'rows' AS rows;
SELECT count(*) AS rows FROM nest_t;

-- the same request under the same key, called again inside the statement
-- run under it (nest_self calls itself through idem_execute): 55000
CREATE FUNCTION nest_self(k text) RETURNS jsonb LANGUAGE sql
	AS $$ SELECT idem_execute(k, 'SELECT nest_self($1) AS r', k) $$;
\set VERBOSITY sqlstate
SELECT idem_execute('nest-self', 'SELECT nest_self($1) AS r', 'nest-self');
\set VERBOSITY default
SELECT idem_execute('nest-self', 'SELECT nest_self($1) AS r', 'nest-self');
\set VERBOSITY terse
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'nest-self';
-- a different request under the same key from inside: IK001, as always
SELECT idem_execute('nest-self-2', 'SELECT nest_inner($1, $2) AS inner_result', 'nest-self-2', 'y');
SELECT count(*) AS keys FROM idempotency_keys WHERE key = 'nest-self-2';
SELECT count(*) AS y_rows FROM nest_t WHERE v = 'y';

-- from a trigger fired by the statement: another key works ...
CREATE FUNCTION nest_trig() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.v = 'self' THEN
		-- the very request that inserted this row
		PERFORM idem_execute('self-audit', 'INSERT INTO nest_trig_t VALUES ($1)', NEW.v);
	ELSE
		PERFORM idem_execute(NEW.v || '-audit', 'SELECT $1 AS audited', NEW.v);
	END IF;
	RETURN NEW;
END $$;
CREATE TABLE nest_trig_t (v text);
CREATE TRIGGER nest_trig AFTER INSERT ON nest_trig_t FOR EACH ROW EXECUTE FUNCTION nest_trig();
SELECT idem_execute('nest-trig', 'INSERT INTO nest_trig_t VALUES ($1)', 'order-1') -> 'replayed' AS replayed;
SELECT idem_lookup('order-1-audit') -> 'rows' AS audit_rows;
-- ... the key of the statement itself does not (55000)
\set VERBOSITY sqlstate
SELECT idem_execute('self-audit', 'INSERT INTO nest_trig_t VALUES ($1)', 'self');
\set VERBOSITY terse
SELECT idem_execute('self-audit', 'INSERT INTO nest_trig_t VALUES ($1)', 'self');
SELECT count(*) AS self_rows FROM nest_trig_t WHERE v = 'self';

-- an outer statement that fails after its inner call ran takes the inner
-- key and write with it
SELECT idem_execute('nest-fail',
	'SELECT r, 1 / (random() * 0)::int AS boom FROM (SELECT nest_inner($1, $2) AS r OFFSET 0) s',
	'nest-fail-inner', 'z');
SELECT count(*) AS keys FROM idempotency_keys WHERE key LIKE 'nest-fail%';
SELECT count(*) AS z_rows FROM nest_t WHERE v = 'z';

-- clean up
DROP TABLE nest_trig_t;
DROP FUNCTION nest_trig();
DROP FUNCTION nest_inner(text, text);
DROP FUNCTION nest_self(text);
DROP TABLE nest_t;
DELETE FROM idempotency_keys;
