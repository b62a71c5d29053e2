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
UPDATE idempotency_keys SET result = NULL WHERE key = 'srt-3';
UPDATE idempotency_keys SET result = '[1, 2]' WHERE key = 'srt-1';
UPDATE idempotency_keys SET result = '{"replayed": false, "rows": []}' WHERE key = 'srt-2';
SELECT idem_execute('srt-1', 'SELECT 1 AS one');
SELECT idem_execute('srt-2', 'SELECT 2 AS two');
SELECT idem_execute('srt-3', 'SELECT 3 AS three');
\set VERBOSITY terse
SELECT idem_execute('srt-1', 'SELECT 1 AS one');
SELECT idem_execute('srt-2', 'SELECT 2 AS two');
SELECT idem_execute('srt-3', 'SELECT 3 AS three');

DELETE FROM idempotency_keys;
