--
-- begin_finish_basics: idem_begin claims a key for the caller's transaction
-- and returns NULL; any statements do the work; idem_finish stores the
-- response (any jsonb, JSON null included) and returns it.  A retry's
-- idem_begin returns the stored response and claims nothing.  idem_lookup
-- returns the response of a finished key and NULL for a key begun but not
-- yet finished.
--
\set VERBOSITY terse
\pset null '(sql null)'

CREATE TABLE bfb_orders (id int PRIMARY KEY, sku int NOT NULL);
CREATE TABLE bfb_stock (sku int PRIMARY KEY, qty int NOT NULL);
CREATE TABLE bfb_ledger (order_id int NOT NULL, amount numeric NOT NULL);
INSERT INTO bfb_stock VALUES (7, 10);

-- 1. the first request: idem_begin returns NULL (this transaction now holds
-- the key), three statements do the work, idem_finish returns the response
BEGIN;
SELECT idem_begin('bfb-1', '{"method": "POST", "path": "/orders", "body": {"sku": 7}}');
-- not yet finished: idem_lookup sees no response
SELECT idem_lookup('bfb-1');
INSERT INTO bfb_orders VALUES (42, 7);
UPDATE bfb_stock SET qty = qty - 1 WHERE sku = 7;
INSERT INTO bfb_ledger VALUES (42, 9.99);
SELECT idem_finish('bfb-1', '{"status": 201, "body": {"order_id": 42}}');
-- finished: idem_lookup returns the response, in this transaction already
SELECT idem_lookup('bfb-1');
COMMIT;

-- 2. a retry returns the stored response, exactly as finished (no
-- "replayed" member is added); it does no work and claims nothing, so its
-- transaction commits without idem_finish
BEGIN;
SELECT idem_begin('bfb-1', '{"method": "POST", "path": "/orders", "body": {"sku": 7}}');
COMMIT;
-- the same in autocommit mode, and with the request in another spelling
SELECT idem_begin('bfb-1', '{"body":{"sku":7},"path":"/orders","method":"POST"}')
	= '{"status": 201, "body": {"order_id": 42}}' AS replays_response;
SELECT idem_lookup('bfb-1');
-- the work happened once
SELECT (SELECT count(*) FROM bfb_orders) AS orders,
	   (SELECT qty FROM bfb_stock WHERE sku = 7) AS stock,
	   (SELECT count(*) FROM bfb_ledger) AS ledger;
-- one key row, holding the response
SELECT key, result FROM idempotency_keys WHERE key = 'bfb-1';

-- 3. the request defaults to NULL; the response may be any jsonb: an object,
-- an array, a string, a number, a boolean
BEGIN;
SELECT idem_begin('bfb-array');
SELECT idem_finish('bfb-array', '[1, "two", {"three": 3}]');
SELECT idem_begin('bfb-string') IS NULL AS claimed;
SELECT idem_finish('bfb-string', '"accepted"');
SELECT idem_begin('bfb-number') IS NULL AS claimed;
SELECT idem_finish('bfb-number', '402');
SELECT idem_begin('bfb-false') IS NULL AS claimed;
SELECT idem_finish('bfb-false', 'false');
COMMIT;
SELECT idem_begin('bfb-array') AS array, idem_begin('bfb-string') AS string,
	   idem_begin('bfb-number') AS number, idem_begin('bfb-false') AS boolean;

-- a definitive refusal is a response like any other: finished with a 4xx
-- answer, the retry gets the refusal back and nothing runs again
BEGIN;
SELECT idem_begin('bfb-refused', '{"body": {"sku": -1}}') IS NULL AS claimed;
SELECT idem_finish('bfb-refused', '{"status": 422, "error": "invalid sku"}');
COMMIT;
SELECT idem_begin('bfb-refused', '{"body": {"sku": -1}}') AS retry;

-- 4. JSON null is a response, distinct from SQL NULL ("claimed"): the retry
-- gets JSON null back and claims nothing
BEGIN;
SELECT idem_begin('bfb-json-null');
SELECT idem_finish('bfb-json-null', 'null');
COMMIT;
SELECT idem_begin('bfb-json-null') AS response,
	   idem_begin('bfb-json-null') IS NULL AS is_sql_null,
	   idem_begin('bfb-json-null') = 'null'::jsonb AS is_json_null;
SELECT idem_lookup('bfb-json-null') = 'null'::jsonb AS lookup_json_null;
BEGIN;
SELECT idem_begin('bfb-json-null') = 'null'::jsonb AS replayed_json_null;
COMMIT;	-- claimed nothing: no error
SELECT key, result FROM idempotency_keys WHERE key = 'bfb-json-null';

-- 5. the response is stored with many statements between begin and finish:
-- 200 INSERTs, a PL/pgSQL block, a savepoint released and one rolled back
BEGIN;
SELECT idem_begin('bfb-many', '{"batch": 1}');
-- (the 200 generated INSERTs are not echoed)
\set ECHO none
SELECT format('INSERT INTO bfb_ledger VALUES (%s, 1)', g)
FROM generate_series(1000, 1199) AS g \gexec
\set ECHO all
DO $$
BEGIN
	FOR i IN 1200..1249 LOOP
		INSERT INTO bfb_ledger VALUES (i, 1);
	END LOOP;
END $$;
SAVEPOINT s1;
INSERT INTO bfb_ledger VALUES (1250, 1);
RELEASE s1;
SAVEPOINT s2;
INSERT INTO bfb_ledger VALUES (9999, 1);
ROLLBACK TO s2;
SELECT idem_finish('bfb-many', jsonb_build_object('inserted', (SELECT count(*) FROM bfb_ledger WHERE order_id >= 1000)));
COMMIT;
SELECT idem_begin('bfb-many', '{"batch": 1}');
SELECT count(*) AS ledger_rows FROM bfb_ledger WHERE order_id >= 1000;

-- 6. a large response round-trips unchanged
BEGIN;
SELECT idem_begin('bfb-large') IS NULL AS claimed;
SELECT idem_finish('bfb-large', jsonb_build_object('body', repeat('x', 100000))) IS NOT NULL AS finished;
COMMIT;
SELECT idem_begin('bfb-large') = jsonb_build_object('body', repeat('x', 100000)) AS large_replayed;
-- a response larger than idempotency.max_result_size is IK003, as for
-- idem_execute's result, and nothing is stored
SET idempotency.max_result_size = '10kB';
BEGIN;
SELECT idem_begin('bfb-too-large') IS NULL AS claimed;
SELECT idem_finish('bfb-too-large', jsonb_build_object('body', repeat('x', 20000))) IS NOT NULL AS finished;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
RESET idempotency.max_result_size;
SELECT count(*) AS too_large_stored FROM idempotency_keys WHERE key = 'bfb-too-large';

-- 7. lookup: a finished key returns its response; a key never used, or
-- begun and rolled back, returns NULL
SELECT idem_lookup('bfb-array') AS finished, idem_lookup('bfb-never') AS never_used;
BEGIN;
SELECT idem_begin('bfb-rolled-back');
ROLLBACK;
SELECT idem_lookup('bfb-rolled-back') AS rolled_back;

-- 8. a read-only transaction replays a finished key, and cannot claim a
-- new one (25006, as idem_execute)
BEGIN READ ONLY;
SELECT idem_begin('bfb-1') AS read_only_replay;
SELECT idem_begin('bfb-read-only-new');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- every key of this file, once
SELECT key, result IS NOT NULL AS has_response FROM idempotency_keys ORDER BY key;

DROP TABLE bfb_orders, bfb_stock, bfb_ledger;
DELETE FROM idempotency_keys;
