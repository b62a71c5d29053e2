--
-- stored_result_tampered: a stored result that is not what idem_execute
-- wrote (a keys table edited by hand, by its owner or a superuser) makes a
-- replay fail with data_corrupted (XX001), never with an internal error
-- (XX000).
--
\set VERBOSITY sqlstate

SELECT idem_execute('srt-1', 'SELECT 1 AS one') ->> 'replayed' AS replayed;
SELECT idem_execute('srt-2', 'SELECT 2 AS two') ->> 'replayed' AS replayed;
SELECT idem_execute('srt-3', 'SELECT 3 AS three') ->> 'replayed' AS replayed;
SELECT idem_execute('srt-4', 'SELECT 4 AS four') ->> 'replayed' AS replayed;
SELECT idem_execute('srt-5', 'SELECT 5 AS five') ->> 'replayed' AS replayed;
UPDATE idempotency_keys SET result = NULL WHERE key = 'srt-3';
-- a result without a command is a whole object (as 1.0 stored them)
UPDATE idempotency_keys SET command = NULL, result = '[1, 2]' WHERE key = 'srt-1';
UPDATE idempotency_keys SET command = NULL, result = '{"replayed": false, "rows": []}' WHERE key = 'srt-2';
-- a command that is not a command word and a row count, or rows that are
-- not an array
UPDATE idempotency_keys SET command = 'SELECT' WHERE key = 'srt-4';
UPDATE idempotency_keys SET result = '{"a": 1}' WHERE key = 'srt-5';
SELECT idem_execute('srt-1', 'SELECT 1 AS one');
SELECT idem_execute('srt-2', 'SELECT 2 AS two');
SELECT idem_execute('srt-3', 'SELECT 3 AS three');
SELECT idem_execute('srt-4', 'SELECT 4 AS four');
SELECT idem_execute('srt-5', 'SELECT 5 AS five');
SELECT idem_lookup('srt-4');
\set VERBOSITY terse
SELECT idem_execute('srt-1', 'SELECT 1 AS one');
SELECT idem_execute('srt-2', 'SELECT 2 AS two');
SELECT idem_execute('srt-3', 'SELECT 3 AS three');
SELECT idem_execute('srt-4', 'SELECT 4 AS four');
SELECT idem_execute('srt-5', 'SELECT 5 AS five');
SELECT idem_lookup('srt-5');

DELETE FROM idempotency_keys;
