# shellcheck shell=bash
# Keys beside their shard (src/colocated.c): idem_colocate_keys makes a keys
# table colocated with payments, and pay(), a function distributed by its
# customer argument with force_delegation, runs on the worker that owns the
# customer's shard, where idem_execute_colocated stores the key in the local
# shard of the keys table, in the same local transaction as the payment.

. test/citus/helpers.bash

nsql coord >/dev/null <<'SQL'
SET client_min_messages = warning;
SELECT idem_colocate_keys('payments');
-- PL/pgSQL: an SQL function would be inlined on the coordinator, not delegated
CREATE FUNCTION pay(customer text, key text, amount numeric) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    RETURN idem_execute_colocated('payments', customer, key,
        'INSERT INTO payments (customer, amount, ref) VALUES ($1, $2, $3) RETURNING ref',
        customer, amount, key);
END
$$;
SELECT create_distributed_function('pay(text,text,numeric)', 'customer',
                                   colocate_with => 'payments', force_delegation => true);
SQL
KEYS_TABLE="$(nsql coord -c "SELECT idem_colocate_keys('payments')")"

# colocated_pay KEY CUSTOMER [AMOUNT]: the delegated call
colocated_pay() {
    echo "SELECT pay('$2', '$1', ${3:-10.00})"
}

# the key's live rows in the colocated keys table (through the coordinator)
colocated_keys_of() {
    nsql coord -c "SELECT count(*) FROM $KEYS_TABLE WHERE key = '$1'"
}

# the worker (its port) whose shard of the keys table holds customer $1
keys_node_of() {
    nsql coord -c "SELECT nodeport FROM citus_shards
                   WHERE shardid = get_shard_id_for_distribution_column('$KEYS_TABLE', '$1')"
}

# two-phase commits recorded on every node, and prepared transactions left
all_dist_xacts() {
    local node n=0
    for node in coord w1 w2; do
        n=$((n + $(nsql "$node" -c "SELECT count(*) FROM pg_dist_transaction")
               + $(nsql "$node" -c "SELECT count(*) FROM pg_prepared_xacts")))
    done
    echo "$n"
}

# --- the table --------------------------------------------------------------------

like "idem_colocate_keys names the colocated keys table" 'idempotency_keys_colocated_*' "$KEYS_TABLE"
is "idem_colocate_keys a second time: the same table" "$KEYS_TABLE" \
    "$(nsql coord -c "SELECT idem_colocate_keys('payments')")"
is "the keys table is colocated with payments" t \
    "$(nsql coord -c "SELECT (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = '$KEYS_TABLE'::regclass)
                           = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'payments'::regclass)")"
is "the keys table: idempotency_keys' columns in order, then tenant of the distribution column's type" \
    "$(nsql coord -c "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
                      FROM pg_attribute WHERE attrelid = 'idempotency_keys'::regclass AND attnum > 0"), tenant text" \
    "$(nsql coord -c "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
                      FROM pg_attribute WHERE attrelid = '$KEYS_TABLE'::regclass AND attnum > 0")"
nsql coord >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE ROLE colo_other LOGIN;
GRANT ALL ON payments TO colo_other;
CREATE TABLE colo_theirs (customer text PRIMARY KEY);
SELECT create_distributed_table('colo_theirs', 'customer', colocate_with => 'payments');
SQL
is "the keys table is not readable by other roles" 42501 \
    "$(sqlstates coord -c "SET ROLE colo_other" -c "SELECT count(*) FROM $KEYS_TABLE")"
is "idem_colocate_keys needs the ownership of colocate_with" 42501 \
    "$(sqlstates coord -c "SET ROLE colo_other" -c "SELECT idem_colocate_keys('colo_theirs')")"
is "idem_colocate_keys on a worker: refused" 0A000 \
    "$(sqlstates w1 -c "SELECT idem_colocate_keys('payments')")"
is "idem_colocate_keys of a table Citus does not distribute: refused" 0A000 \
    "$(sqlstates coord -c "CREATE TEMP TABLE colo_local (id int)" -c "SELECT idem_colocate_keys('colo_local')")"

# --- one call, delegated ---------------------------------------------------------------

before="$(all_dist_xacts)"
out1="$(nsql coord -c "$(colocated_pay c-first "$CUS_W1")")"
like "first call pays" '*"replayed": false*' "$out1"
is "the key is in the colocated keys table, not the coordinator's" "1 0" \
    "$(colocated_keys_of c-first) $(keys_of c-first)"
is "the key's shard is on the worker that owns the customer" "${NODE_PORT[w1]}" "$(keys_node_of "$CUS_W1")"
# shard_of_customer CUSTOMER: the shard of the keys table that holds it
shard_of_customer() {
    nsql coord -c "SELECT shard_name('$KEYS_TABLE', get_shard_id_for_distribution_column('$KEYS_TABLE', '$1'))"
}
is "the key row is in the worker's local shard" 1 \
    "$(nsql w1 -c "SELECT count(*) FROM $(shard_of_customer "$CUS_W1") WHERE key = 'c-first'")"
out2="$(nsql coord -c "$(colocated_pay c-first "$CUS_W1")")"
is "retry replays byte for byte" "${out1/\"replayed\": false/\"replayed\": true}" "$out2"
is "retry paid nothing" 1 "$(payments_of c-first)"
is "a different request under the key is IK001" IK001 \
    "$(sqlstates coord -c "$(colocated_pay c-first "$CUS_W1" 20.00)")"
is "a key of another customer is another key" '*"replayed": false*' \
    "$(nsql coord -c "$(colocated_pay c-first "$CUS_W2")" | sed 's/.*"replayed": false.*/*"replayed": false*/')"
is "no two-phase commit anywhere, no prepared transaction" "$before" "$(all_dist_xacts)"

# --- transaction blocks --------------------------------------------------------------------

nsql coord -c BEGIN -c "$(colocated_pay c-tx "$CUS_W2")" -c COMMIT >/dev/null
is "in BEGIN ... COMMIT (force_delegation): paid once, key beside the shard" "1 1" \
    "$(payments_of c-tx) $(colocated_keys_of c-tx)"
like "in BEGIN ... COMMIT: the retry replays" '*"replayed": true*' \
    "$(nsql coord -c BEGIN -c "$(colocated_pay c-tx "$CUS_W2")" -c COMMIT)"
nsql coord -c BEGIN -c "$(colocated_pay c-rollback "$CUS_W1")" -c ROLLBACK >/dev/null
is "rolled back: no payment, no key" "0 0" "$(payments_of c-rollback) $(colocated_keys_of c-rollback)"
is "no two-phase commit for transaction blocks of one worker" "$before" "$(all_dist_xacts)"

# --- where the shard is not ----------------------------------------------------------------

direct_sql() {
    echo "SELECT idem_execute_colocated('payments', '$2'::text, '$1',
          'INSERT INTO payments (customer, amount, ref) VALUES (\$1, \$2, \$3) RETURNING ref',
          '$2'::text, 10.00::numeric, '$1'::text)"
}
is "called on the coordinator, not delegated: refused" 0A000 \
    "$(sqlstates coord -c "$(direct_sql c-direct "$CUS_W1")")"
is "called on the worker without the shard: refused" 0A000 \
    "$(sqlstates w2 -c "$(direct_sql c-direct "$CUS_W1")")"
is "refused: nothing paid, no key" "0 0" "$(payments_of c-direct) $(colocated_keys_of c-direct)"
out="$(psql -X -q -h "$CITUS_DIR" -p "${NODE_PORT[coord]}" -U postgres -d postgres \
    -c "$(direct_sql c-direct "$CUS_W1")" 2>&1 || true)"
like "the refusal says where the shard is and how to get there" \
    "*is not on this node*DETAIL:*:${NODE_PORT[w1]} (group*HINT:*create_distributed_function*force_delegation*" "$out"
like "called on the worker that has the shard (a client connected there): runs" '*"replayed": false*' \
    "$(nsql w1 -c "$(direct_sql c-direct "$CUS_W1")")"
like "... and the delegated retry replays it" '*"replayed": true*' \
    "$(nsql coord -c "$(colocated_pay c-direct "$CUS_W1")")"
is "... once paid" 1 "$(payments_of c-direct)"
is "a statement inside a transaction block without force_delegation is not delegated: refused" 0A000 \
    "$(sqlstates coord -c BEGIN -c "$(direct_sql c-block "$CUS_W2")" -c ROLLBACK)"
