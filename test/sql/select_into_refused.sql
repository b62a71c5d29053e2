--
-- select_into_refused: SELECT ... INTO creates a table, which a replay
-- cannot give back: idem_execute refuses it with 0A000 before it runs,
-- wherever it stands, including inside a UNION, INTERSECT or EXCEPT (which
-- the parser turns into SELECT INTO as well).  Nothing is created and no key
-- is stored; never an internal error (XX000).
--
\set VERBOSITY terse

SELECT idem_execute('sir-1', 'SELECT 1 AS a INTO sir_t');
SELECT idem_execute('sir-2', '(SELECT 1 AS a INTO sir_t) UNION SELECT 2');
SELECT idem_execute('sir-3', 'SELECT 1 AS a INTO sir_t UNION SELECT 2');
SELECT idem_execute('sir-4', 'SELECT 1 AS a UNION (SELECT 2 INTO sir_t)');
SELECT idem_execute('sir-5', '(SELECT 1 AS a INTO sir_t) INTERSECT SELECT 1 EXCEPT SELECT 3');
SELECT idem_execute('sir-6', 'SELECT 1 UNION ALL (SELECT 2 UNION (SELECT 3 INTO sir_t))');
SELECT idem_execute('sir-7', 'SELECT 1 AS a INTO TEMP sir_t UNION SELECT 2');
SELECT idem_execute('sir-8', 'WITH w AS (SELECT 1 AS a) SELECT a INTO sir_t FROM w UNION SELECT 2');
\set VERBOSITY sqlstate
SELECT idem_execute('sir-1', 'SELECT 1 AS a INTO sir_t');
SELECT idem_execute('sir-2', '(SELECT 1 AS a INTO sir_t) UNION SELECT 2');
SELECT idem_execute('sir-4', 'SELECT 1 AS a UNION (SELECT 2 INTO sir_t)');
SELECT idem_execute('sir-6', 'SELECT 1 UNION ALL (SELECT 2 UNION (SELECT 3 INTO sir_t))');
-- with arguments too
SELECT idem_execute('sir-9', '(SELECT $1 AS a INTO sir_t) UNION SELECT $2', 1, 2);
\set VERBOSITY terse

-- INTO inside a subquery or a WITH query is a syntax error of the parser's
-- (42601), also before anything runs
\set VERBOSITY sqlstate
SELECT idem_execute('sir-10', 'SELECT * FROM (SELECT 1 AS a INTO sir_t) s');
SELECT idem_execute('sir-11', 'WITH w AS (SELECT 1 AS a INTO sir_t) SELECT * FROM w');
\set VERBOSITY terse

-- nothing was created, no key stored
SELECT count(*) AS tables FROM pg_class WHERE relname = 'sir_t';
SELECT count(*) AS keys FROM idempotency_keys;

-- a UNION without INTO runs and replays
SELECT idem_execute('sir-ok', '(SELECT 1 AS a) UNION SELECT 2 ORDER BY a');
SELECT idem_execute('sir-ok', '(SELECT 1 AS a) UNION SELECT 2 ORDER BY a');

DELETE FROM idempotency_keys;
