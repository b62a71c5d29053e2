-- Schema of the idem_execute benchmark (bench/execute.sh): the extension, the
-- table every variant writes its payment to, and B1's table.  The B2
-- baseline (keys table and PL/pgSQL function) is in b2_execute.sql.
SET client_min_messages = warning;

CREATE EXTENSION idempotency;

-- The write under test: one payment row, id returned.  idem_execute, B0 and
-- B2 all insert here, so all three pay for the same heap and index work.
CREATE TABLE payments (
    id       bigserial PRIMARY KEY,
    customer text NOT NULL,
    amount   numeric NOT NULL
);

-- B1: the minimal hand-written approach: the key is a unique column of the
-- payments table itself, INSERT ... ON CONFLICT (idempotency_key) DO
-- NOTHING RETURNING id.  It stores no result: a retry gets zero rows back,
-- not the id of the first attempt.
CREATE TABLE payments_b1 (
    id              bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    customer        text NOT NULL,
    amount          numeric NOT NULL
);
