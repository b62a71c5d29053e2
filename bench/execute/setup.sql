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

-- The in-server cost of a replay, without the client round trip: n replays
-- of the preloaded keys 'rk-1' .. 'rk-<nkeys>' from a PL/pgSQL loop (which
-- keeps both statements' plans), as idem_execute or as F's primary-key
-- SELECT; returns microseconds per call.
CREATE FUNCTION bench_replay_loop(variant text, n int, nkeys int) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
    t0    timestamptz := clock_timestamp();
    r     jsonb;
    v_owner regrole := current_user::regrole;
BEGIN
    FOR i IN 1..n LOOP
        IF variant = 'idem_execute' THEN
            r := idem_execute('rk-' || (i % nkeys + 1),
                              'INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id',
                              'cus_1'::text, 100.00::numeric);
        ELSE
            SELECT k.result INTO r FROM idempotency_keys k
             WHERE k.owner = v_owner AND k.scope = '' AND k.key = 'rk-' || (i % nkeys + 1);
        END IF;
        IF r IS NULL THEN
            RAISE EXCEPTION 'no stored result for key rk-%', i % nkeys + 1;
        END IF;
    END LOOP;
    RETURN extract(epoch FROM clock_timestamp() - t0) * 1e6 / n;
END
$$;
