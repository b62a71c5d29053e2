--
-- bad_input: bad input gets a clear error and records nothing.
--   NULL key or sql                                  22004
--   empty key, key longer than max_key_length bytes,
--   empty sql (or sql without a statement)           22023
--   more than one statement, transaction control and
--   other non-DML statements                         0A000
-- Nothing runs and no key is recorded.
--
\set VERBOSITY terse

CREATE TABLE bad_input_t (v text);

-- bad_try(key, sql) calls idem_execute and returns 'ok' or the error's
-- SQLSTATE and message, so each case shows both on one line
CREATE FUNCTION bad_try(k text, q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM idem_execute(k, q);
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- NULL key, NULL sql: 22004, in both forms of idem_execute
SELECT bad_try(NULL, 'INSERT INTO bad_input_t VALUES (''null key'')');
SELECT bad_try('bi-null-sql', NULL);
\set VERBOSITY sqlstate
SELECT idem_execute(NULL, 'INSERT INTO bad_input_t VALUES ($1)', 'null key');
SELECT idem_execute('bi-null-sql', NULL, 'x');
SELECT idem_execute(NULL, NULL);
\set VERBOSITY terse
-- the NULL key is reported first when both are NULL
SELECT idem_execute(NULL, NULL);
SELECT idem_execute(NULL, 'INSERT INTO bad_input_t VALUES ($1)', 'null key');
SELECT idem_execute('bi-null-sql', NULL, 'x');

-- empty key: 22023
SELECT bad_try('', 'INSERT INTO bad_input_t VALUES (''empty key'')');

-- key length: at most idempotency.max_key_length bytes (default 255)
SELECT bad_try(repeat('k', 255), 'SELECT 1 AS at_limit');
SELECT bad_try(repeat('k', 256), 'INSERT INTO bad_input_t VALUES (''too long'')');
-- the full error, with its detail and hint
\set VERBOSITY default
SELECT idem_execute(repeat('k', 256), 'INSERT INTO bad_input_t VALUES (''too long'')');
\set VERBOSITY terse
-- with a smaller limit: 10 bytes pass, 11 bytes fail
SET idempotency.max_key_length = 10;
SELECT bad_try('0123456789', 'SELECT 10 AS bytes');
SELECT bad_try('0123456789a', 'INSERT INTO bad_input_t VALUES (''11 bytes'')');
-- the limit counts bytes, not characters (this database is UTF8):
-- five 2-byte characters are 10 bytes, six are 12
SELECT getdatabaseencoding();
SELECT octet_length('ééééé') AS bytes, bad_try('ééééé', 'SELECT 5 AS chars');
SELECT octet_length('éééééé') AS bytes, bad_try('éééééé', 'INSERT INTO bad_input_t VALUES (''6 chars'')');
-- 10 characters but 11 bytes
SELECT length('aaaaaaaaaé') AS chars, octet_length('aaaaaaaaaé') AS bytes,
	   bad_try('aaaaaaaaaé', 'INSERT INTO bad_input_t VALUES (''10 chars'')');
-- a 4-byte emoji counts 4
SELECT octet_length('123456😀') AS bytes, bad_try('123456😀', 'SELECT 10 AS emoji_bytes');
SELECT octet_length('1234567😀') AS bytes, bad_try('1234567😀', 'INSERT INTO bad_input_t VALUES (''emoji'')');
RESET idempotency.max_key_length;
-- the largest setting, 2048 bytes: a key that long (and incompressible) is
-- recorded and replays
SET idempotency.max_key_length = 2048;
SELECT string_agg(md5(g::text), '') AS long_key FROM generate_series(1, 64) g \gset
SELECT octet_length(:'long_key') AS bytes,
	   idem_execute(:'long_key', 'SELECT 2048 AS bytes') -> 'replayed' AS replayed;
SELECT idem_execute(:'long_key', 'SELECT 2048 AS bytes') -> 'replayed' AS replayed;
SELECT bad_try(:'long_key' || 'x', 'INSERT INTO bad_input_t VALUES (''2049'')');
RESET idempotency.max_key_length;

-- empty sql: 22023; sql with no statement (blanks, comments, a lone
-- semicolon): 22023 too
SELECT bad_try('bi-empty-sql', '');
SELECT bad_try('bi-blank-sql', '   ');
SELECT bad_try('bi-blank-sql', E'\n\t ');
SELECT bad_try('bi-comment-sql', '-- just a comment');
SELECT bad_try('bi-comment-sql', '/* a block comment */');
SELECT bad_try('bi-semicolon-sql', ';');
SELECT bad_try('bi-semicolon-sql', ' ; ; ');

-- more than one statement: 0A000, and neither statement runs
SELECT bad_try('bi-two', 'INSERT INTO bad_input_t VALUES (''one''); INSERT INTO bad_input_t VALUES (''two'')');
SELECT bad_try('bi-two', 'SELECT 1; SELECT 2');
SELECT bad_try('bi-two', 'SELECT 1; COMMIT');
\set VERBOSITY default
SELECT idem_execute('bi-two', 'INSERT INTO bad_input_t VALUES (''one''); INSERT INTO bad_input_t VALUES (''two'')');
\set VERBOSITY terse
-- one statement with a trailing semicolon, or surrounded by comments and
-- empty statements, is one statement
SELECT bad_try('bi-one-semicolon', 'SELECT 1;');
SELECT bad_try('bi-one-commented', E'/* c */ SELECT 1 -- c\n ;;');

-- transaction control: 0A000, naming the command
SELECT bad_try('bi-txn', 'COMMIT');
SELECT bad_try('bi-txn', 'ROLLBACK');
SELECT bad_try('bi-txn', 'BEGIN');
SELECT bad_try('bi-txn', 'START TRANSACTION');
SELECT bad_try('bi-txn', 'SAVEPOINT x');
SELECT bad_try('bi-txn', 'RELEASE SAVEPOINT x');
SELECT bad_try('bi-txn', 'ROLLBACK TO SAVEPOINT x');
SELECT bad_try('bi-txn', 'PREPARE TRANSACTION ''x''');
SELECT bad_try('bi-txn', 'COMMIT PREPARED ''x''');
\set VERBOSITY default
SELECT idem_execute('bi-txn', 'COMMIT');
\set VERBOSITY terse
-- and other statements that are not SELECT, INSERT, UPDATE, DELETE or
-- MERGE: 0A000
SELECT bad_try('bi-utility', 'VACUUM bad_input_t');
SELECT bad_try('bi-utility', 'ANALYZE bad_input_t');
SELECT bad_try('bi-utility', 'CREATE TABLE bi_new (v int)');
SELECT bad_try('bi-utility', 'CREATE TABLE bi_new AS SELECT 1 AS v');
-- SELECT INTO creates a table: it is not the SELECT that idem_execute runs,
-- and the message says so
SELECT bad_try('bi-utility', 'SELECT 1 AS v INTO bi_new');
SELECT bad_try('bi-utility', 'DROP TABLE bad_input_t');
SELECT bad_try('bi-utility', 'TRUNCATE bad_input_t');
SELECT bad_try('bi-utility', 'ALTER TABLE bad_input_t ADD COLUMN w int');
SELECT bad_try('bi-utility', 'SET work_mem = ''1MB''');
SELECT bad_try('bi-utility', 'COPY bad_input_t FROM STDIN');
SELECT bad_try('bi-utility', 'EXPLAIN SELECT 1');
SELECT bad_try('bi-utility', 'DO $$ BEGIN END $$');
SELECT bad_try('bi-utility', 'LOCK TABLE bad_input_t');
SELECT bad_try('bi-utility', 'NOTIFY bi_channel');
SELECT bad_try('bi-utility', 'GRANT SELECT ON bad_input_t TO PUBLIC');
-- the table is still there, unchanged
SELECT count(*) AS bad_input_t_rows FROM bad_input_t;
SELECT to_regclass('bi_new') IS NULL AS bi_new_absent;

-- SQLSTATEs alone, for the record
\set VERBOSITY sqlstate
SELECT idem_execute('', 'SELECT 1');
SELECT idem_execute(repeat('k', 256), 'SELECT 1');
SELECT idem_execute('bi-empty-sql', '');
SELECT idem_execute('bi-blank-sql', '  -- nothing');
SELECT idem_execute('bi-two', 'SELECT 1; SELECT 2');
SELECT idem_execute('bi-txn', 'SAVEPOINT x');
SELECT idem_execute('bi-utility', 'VACUUM');
\set VERBOSITY terse

-- in an explicit transaction, bad input aborts it as any error does, and
-- the transaction's keys and writes go with it
BEGIN;
SELECT idem_execute('bi-in-xact', 'INSERT INTO bad_input_t VALUES ($1) RETURNING v', 'kept?') -> 'rows';
SELECT idem_execute('bi-in-xact-2', 'COMMIT');
ROLLBACK;
SELECT count(*) AS bad_input_t_rows FROM bad_input_t;

-- no bad call recorded a key: only the good ones are there
SELECT octet_length(key) AS key_bytes, result AS rows
FROM idempotency_keys ORDER BY octet_length(key), result::text;

-- clean up
DROP FUNCTION bad_try(text, text);
DROP TABLE bad_input_t;
DELETE FROM idempotency_keys;
