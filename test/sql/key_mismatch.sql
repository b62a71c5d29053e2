--
-- key_mismatch: the same key with a different request (sql text, argument
-- values, argument types, number of arguments, NULL vs a value) raises
-- SQLSTATE IK001 naming the key, and nothing runs.  A request is the same
-- when the sql text is identical and the arguments are equal and of the
-- same types; an untyped literal binds as text, so 'x' and 'x'::text are
-- the same request.
--
\set VERBOSITY terse

CREATE TABLE mismatch_log (id serial PRIMARY KEY, v text);

-- the first request under the key
SELECT idem_execute('km-1', 'INSERT INTO mismatch_log(v) VALUES ($1) RETURNING id, v', 'a');

-- SQLSTATE IK001 (shown alone) ...
\set VERBOSITY sqlstate
SELECT idem_execute('km-1', 'INSERT INTO mismatch_log(v) VALUES ($1) RETURNING id, v', 'b');
-- ... and the full message, detail and hint
\set VERBOSITY default
SELECT idem_execute('km-1', 'INSERT INTO mismatch_log(v) VALUES ($1) RETURNING id, v', 'b');
\set VERBOSITY terse

-- different sql text, even by one space or the case of a keyword
SELECT idem_execute('km-1', 'INSERT INTO mismatch_log(v) VALUES ($1) RETURNING v', 'a');
SELECT idem_execute('km-1', 'INSERT INTO mismatch_log(v)  VALUES ($1) RETURNING id, v', 'a');
SELECT idem_execute('km-1', 'insert INTO mismatch_log(v) VALUES ($1) RETURNING id, v', 'a');
-- different argument value
SELECT idem_execute('km-1', 'INSERT INTO mismatch_log(v) VALUES ($1) RETURNING id, v', 'A');
-- different argument type, same text form ('a'::varchar vs untyped 'a')
SELECT idem_execute('km-1', 'INSERT INTO mismatch_log(v) VALUES ($1) RETURNING id, v', 'a'::varchar);
-- more arguments, and none at all
SELECT idem_execute('km-1', 'INSERT INTO mismatch_log(v) VALUES ($1) RETURNING id, v', 'a', 'a');
SELECT idem_execute('km-1', 'INSERT INTO mismatch_log(v) VALUES ($1) RETURNING id, v');
-- NULL instead of a value
SELECT idem_execute('km-1', 'INSERT INTO mismatch_log(v) VALUES ($1) RETURNING id, v', NULL);
-- a statement that would fail if it ran gets IK001, not its own error
SELECT idem_execute('km-1', 'SELECT 1/0 AS boom');
-- none of these ran: still one row, and the key still holds the first result
SELECT * FROM mismatch_log ORDER BY id;
SELECT idem_lookup('km-1');

-- the same request still replays after the mismatches
SELECT idem_execute('km-1', 'INSERT INTO mismatch_log(v) VALUES ($1) RETURNING id, v', 'a');
-- an untyped literal binds as text: 'a'::text is the same request as 'a'
SELECT idem_execute('km-1', 'INSERT INTO mismatch_log(v) VALUES ($1) RETURNING id, v', 'a'::text);

-- argument types: 1::int and 1::bigint are different requests
SELECT idem_execute('km-int', 'SELECT $1 AS n', 1::int);
SELECT idem_execute('km-int', 'SELECT $1 AS n', 1::bigint);
SELECT idem_execute('km-int', 'SELECT $1 AS n', 1::smallint);
SELECT idem_execute('km-int', 'SELECT $1 AS n', 1::numeric);
-- an integer literal is an int: the same request as 1::int
SELECT idem_execute('km-int', 'SELECT $1 AS n', 1);
-- an untyped literal '1' is text, not int
SELECT idem_execute('km-int', 'SELECT $1 AS n', '1');

-- number of arguments: one vs two
SELECT idem_execute('km-nargs', 'SELECT $1::int AS a', 1);
SELECT idem_execute('km-nargs', 'SELECT $1::int AS a', 1, 2);
-- a statement first run without arguments, retried with one
SELECT idem_execute('km-noargs', 'SELECT 1 AS a');
SELECT idem_execute('km-noargs', 'SELECT 1 AS a', 1);

-- NULL vs a value, and NULLs of different types
SELECT idem_execute('km-null', 'SELECT $1::text AS v', NULL::text);
SELECT idem_execute('km-null', 'SELECT $1::text AS v', '');
SELECT idem_execute('km-null', 'SELECT $1::text AS v', 'NULL');
SELECT idem_execute('km-null', 'SELECT $1::text AS v', NULL::int);
-- an untyped NULL binds as a NULL text: the same request as NULL::text
SELECT idem_execute('km-null', 'SELECT $1::text AS v', NULL);
-- and a value first, NULL on retry
SELECT idem_execute('km-value', 'SELECT $1::int AS v', 5);
SELECT idem_execute('km-value', 'SELECT $1::int AS v', NULL::int);

-- the argument order counts
SELECT idem_execute('km-order', 'SELECT $1::text || $2::text AS v', 'x', 'y');
SELECT idem_execute('km-order', 'SELECT $1::text || $2::text AS v', 'y', 'x');

-- argument boundaries count: ('ab', 'c') is not ('a', 'bc')
SELECT idem_execute('km-split', 'SELECT $1::text || $2::text AS v', 'ab', 'c');
SELECT idem_execute('km-split', 'SELECT $1::text || $2::text AS v', 'a', 'bc');

-- VARIADIC ARRAY[...] binds the same typed arguments as listing them
SELECT idem_execute('km-variadic', 'SELECT $1::int + $2::int AS s', 1, 2);
SELECT idem_execute('km-variadic', 'SELECT $1::int + $2::int AS s', VARIADIC ARRAY[1, 2]);
SELECT idem_execute('km-variadic', 'SELECT $1::int + $2::int AS s', VARIADIC ARRAY[2, 1]);

-- the key named in the message is the caller's key, verbatim
SELECT idem_execute('km "quoted" key', 'SELECT 1 AS a');
SELECT idem_execute('km "quoted" key', 'SELECT 2 AS a');

-- inside a transaction, IK001 aborts it as any error does: the earlier
-- work of the transaction is rolled back
BEGIN;
INSERT INTO mismatch_log(v) VALUES ('in xact');
SELECT idem_execute('km-1', 'INSERT INTO mismatch_log(v) VALUES ($1) RETURNING id, v', 'z');
SELECT 1;
ROLLBACK;
SELECT * FROM mismatch_log ORDER BY id;

-- one key row per key; every mismatching call left the stored result alone
SELECT key, result AS rows FROM idempotency_keys ORDER BY key;

-- clean up
DROP TABLE mismatch_log;
DELETE FROM idempotency_keys;
