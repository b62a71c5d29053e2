-- A replay writes nothing, so it works in a read-only transaction (and on a
-- standby); a new key is a write and is refused there with 25006, before
-- its statement runs.
CREATE TABLE ror_payments (id serial PRIMARY KEY, amount numeric);
SELECT idem_execute('ror-1', 'INSERT INTO ror_payments(amount) VALUES ($1) RETURNING id',
					10::numeric) -> 'replayed' AS replayed;

-- replay inside READ ONLY: the stored result, nothing written
BEGIN READ ONLY;
SELECT idem_execute('ror-1', 'INSERT INTO ror_payments(amount) VALUES ($1) RETURNING id',
					10::numeric);
-- a different request under the key is still IK001, not a write error
\set VERBOSITY sqlstate
SELECT idem_execute('ror-1', 'INSERT INTO ror_payments(amount) VALUES ($1) RETURNING id',
					11::numeric);
ROLLBACK;

-- a new key in READ ONLY: 25006, and its statement did not run
BEGIN READ ONLY;
SELECT idem_execute('ror-2', 'SELECT nextval(''ror_payments_id_seq'') AS n');
ROLLBACK;
\set VERBOSITY terse
BEGIN READ ONLY;
SELECT idem_execute('ror-2', 'SELECT nextval(''ror_payments_id_seq'') AS n');
ROLLBACK;
\set VERBOSITY default
SELECT last_value AS sequence_untouched FROM ror_payments_id_seq;
SELECT idem_lookup('ror-2') IS NULL AS nothing_recorded;
SELECT count(*) AS payments FROM ror_payments;

DROP TABLE ror_payments;
DELETE FROM idempotency_keys;
