-- Schema of the Citus benchmark (bench/citus.sh), run on the coordinator of
-- each layout's database: the extension (Citus creates it on the workers),
-- payments distributed by customer, and Pd's wrapper: a plain INSERT with
-- no key, delegated to the worker that owns the customer's shard.
SET client_min_messages = warning;

CREATE EXTENSION idempotency;

CREATE TABLE payments (
    id       bigserial,
    customer text NOT NULL,
    amount   numeric NOT NULL,
    PRIMARY KEY (customer, id)
);
SELECT create_distributed_table('payments', 'customer');

-- Pd: what delegation itself costs (no key); L's wrapper without the key.
-- PL/pgSQL, as L's: a LANGUAGE sql wrapper whose body is one SELECT would be
-- inlined into the caller's query, and Citus would not delegate it.
CREATE FUNCTION pay_plain(customer text, amount numeric) RETURNS bigint
LANGUAGE plpgsql AS $f$
DECLARE
    v bigint;
BEGIN
    INSERT INTO payments (customer, amount) VALUES (customer, amount) RETURNING id INTO v;
    RETURN v;
END
$f$;
SELECT create_distributed_function('pay_plain(text,numeric)', 'customer',
                                   colocate_with => 'payments', force_delegation => true);
