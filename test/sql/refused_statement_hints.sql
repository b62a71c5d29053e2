--
-- refused_statement_hints: a statement idem_execute does not run (0A000)
-- comes with a hint that fits it: transaction control belongs to the
-- caller; CALL and DO (procedural code) go into a function run with SELECT
-- or a data-modifying WITH; SELECT INTO becomes INSERT INTO ... SELECT;
-- other commands run outside idem_execute.
--
\set VERBOSITY default

CREATE PROCEDURE rsh_proc() LANGUAGE sql AS $$ SELECT 1 $$;

SELECT idem_execute('rsh-commit', 'COMMIT');
SELECT idem_execute('rsh-savepoint', 'SAVEPOINT s');
SELECT idem_execute('rsh-call', 'CALL rsh_proc()');
SELECT idem_execute('rsh-do', 'DO $$ BEGIN END $$');
SELECT idem_execute('rsh-into', 'SELECT 1 AS a INTO rsh_t');
SELECT idem_execute('rsh-into-union', '(SELECT 1 AS a INTO rsh_t) UNION SELECT 2');
SELECT idem_execute('rsh-ddl', 'CREATE TABLE rsh_t (a int)');
SELECT idem_execute('rsh-vacuum', 'VACUUM');

\set VERBOSITY terse
SELECT count(*) AS keys FROM idempotency_keys;
DROP PROCEDURE rsh_proc();
