-- The colocated path of the Citus benchmark (bench/citus.sh), run on the
-- coordinator of each layout's database after setup.sql, when the extension
-- has the colocated API: the keys table distributed with payments, and L's
-- wrapper, delegated like pay_plain to the worker that owns the customer's
-- shard, where key and payment commit in one local transaction (PL/pgSQL:
-- a LANGUAGE sql body of one SELECT would be inlined, and not delegated).
SET client_min_messages = warning;

SELECT idem_colocate_keys('payments') AS keys_table \gset

-- the benchmark counts the keys each run made through this view
CREATE VIEW bench_colocated_keys AS SELECT key FROM :keys_table;

CREATE FUNCTION pay(customer text, key text, amount numeric) RETURNS jsonb
LANGUAGE plpgsql AS $f$
BEGIN
    RETURN idem_execute_colocated('payments', customer, key,
        'INSERT INTO payments (customer, amount) VALUES ($1, $2) RETURNING id',
        customer, amount);
END
$f$;
SELECT create_distributed_function('pay(text,text,numeric)', 'customer',
                                   colocate_with => 'payments', force_delegation => true);
