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

# the key's rows in the colocated keys table (through the coordinator), for
# every customer or customer $2
colocated_keys_of() {
    local tenant=tenant
    [[ -n "${2:-}" ]] && tenant="'$2'"
    nsql coord -c "SELECT count(*) FROM $KEYS_TABLE WHERE key = '$1' AND tenant = $tenant"
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
CREATE TABLE colo_apart (id bigint PRIMARY KEY);
SELECT create_distributed_table('colo_apart', 'id', colocate_with => 'none');
SQL
is "the keys table is not readable by other roles" 42501 \
    "$(sqlstates coord -c "SET ROLE colo_other" -c "SELECT count(*) FROM $KEYS_TABLE")"
is "idem_colocate_keys needs the ownership of colocate_with" 42501 \
    "$(sqlstates coord -c "SET ROLE colo_other" -c "SELECT idem_colocate_keys('colo_theirs')")"
is "idem_colocate_keys on a worker: refused" 0A000 \
    "$(sqlstates w1 -c "SELECT idem_colocate_keys('payments')")"
is "idem_colocate_keys of a table Citus does not distribute: refused" 0A000 \
    "$(sqlstates coord -c "CREATE TEMP TABLE colo_local (id int)" -c "SELECT idem_colocate_keys('colo_local')")"
nsql coord >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE DOMAIN colo_dom AS text CHECK (VALUE <> '');
CREATE TABLE colo_by_domain (customer colo_dom PRIMARY KEY);
SELECT create_distributed_table('colo_by_domain', 'customer');
SQL
is "idem_colocate_keys of a table distributed by a domain: refused (its check would run as the extension's owner)" 0A000 \
    "$(sqlstates coord -c "SELECT idem_colocate_keys('colo_by_domain')")"

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
shard="$(shard_of_customer "$CUS_W1")"
is "the shard has the purge's index on expires_at" 1 \
    "$(nsql w1 -c "SELECT count(*) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                   WHERE i.indrelid = '$shard'::regclass AND i.indnatts = 1 AND a.attname = 'expires_at'")"
is "the direct insert filled it: as many keys through it as in the shard" \
    "$(nsql w1 -c "SET enable_indexscan = off" -c "SET enable_indexonlyscan = off" -c "SET enable_bitmapscan = off" \
                -c "SELECT count(*) FROM $shard WHERE expires_at > '-infinity'")" \
    "$(nsql w1 -c "SET enable_seqscan = off" -c "SET enable_bitmapscan = off" \
                -c "SELECT count(*) FROM $shard WHERE expires_at > '-infinity'")"
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
nsql coord >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE FUNCTION pay_no_force(customer text, key text, amount numeric) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    RETURN pay(customer, key, amount);
END
$$;
SELECT create_distributed_function('pay_no_force(text,text,numeric)', 'customer',
                                   colocate_with => 'payments');
SQL
like "a distributed function without force_delegation, outside a block: delegated, pays" \
    '*"replayed": false*' "$(nsql coord -c "SELECT pay_no_force('$CUS_W1', 'c-noforce', 10.00)")"
is "... inside BEGIN ... COMMIT it runs on the coordinator: refused, not paid twice" "0A000 1" \
    "$(sqlstates coord -c BEGIN -c "SELECT pay_no_force('$CUS_W1', 'c-noforce', 10.00)" -c ROLLBACK) $(payments_of c-noforce)"

# --- bad input ------------------------------------------------------------------------------

is "a NULL tenant: 22004" 22004 "$(sqlstates w1 -c "SELECT idem_execute_colocated('payments', NULL::text, 'c-null', 'SELECT 1')")"
is "a tenant over 255 bytes: 22023" 22023 \
    "$(sqlstates w1 -c "SELECT idem_execute_colocated('payments', repeat('x', 256), 'c-long', 'SELECT 1')")"
is "a table without colocated keys: 55000 (call idem_colocate_keys)" 55000 \
    "$(sqlstates w1 -c "SELECT idem_execute_colocated('colo_apart', 7, 'c-nokeys', 'SELECT 1')")"

# --- lookup and forget ---------------------------------------------------------------------

like "idem_lookup_colocated returns the stored result" '{"rows": ?{"ref": "c-first"}?, "command": "INSERT", "row_count": 1}' \
    "$(nsql coord -c "SELECT idem_lookup_colocated('payments', '$CUS_W1'::text, 'c-first')")"
is "idem_lookup_colocated on a worker, for a key on the other worker" t \
    "$(nsql w2 -c "SELECT idem_lookup_colocated('payments', '$CUS_W1'::text, 'c-first') IS NOT NULL")"
is "idem_lookup_colocated: another role does not see it" t \
    "$(nsql coord -c "SET ROLE colo_other" -c "SELECT idem_lookup_colocated('payments', '$CUS_W1'::text, 'c-first') IS NULL")"
is "idem_forget_colocated: another role cannot delete it" f \
    "$(nsql coord -c "SET ROLE colo_other" -c "SELECT idem_forget_colocated('payments', '$CUS_W1'::text, 'c-first')")"
is "idem_forget_colocated deletes the key" "t 0" \
    "$(nsql coord -c "SELECT idem_forget_colocated('payments', '$CUS_W1'::text, 'c-first')") $(colocated_keys_of c-first "$CUS_W1")"
like "after idem_forget_colocated the key runs again" '*"replayed": false*' \
    "$(nsql coord -c "$(colocated_pay c-first "$CUS_W1")")"

# --- concurrent duplicates, on the worker ------------------------------------------------------

hold_key colocated_pay c-conc "$CUS_W1" 2
out="$(nsql coord -c "$(colocated_pay c-conc "$CUS_W1")")"
wait "$HOLDER" || true
like "a concurrent duplicate waits for the holder on the worker, then replays" '*"replayed": true*' "$out"
is "a concurrent duplicate paid once" 1 "$(payments_of c-conc)"

hold_key colocated_pay c-conc-off "$CUS_W1" 2
is "idempotency.wait = off (a client on the worker): IK002 while the holder is in flight" IK002 \
    "$(sqlstates w1 -c "SET idempotency.wait = off" -c "$(colocated_pay c-conc-off "$CUS_W1")")"
wait "$HOLDER" || true
is "idempotency.wait = off: paid once" 1 "$(payments_of c-conc-off)"

# --- crash windows of the local path --------------------------------------------------------------

PAY=colocated_pay

# 1. the worker crashes during the call, before its commit: the INSERT waits
# for a lock on the payments shard, taken by another session
w="colocated, worker crashes before its commit"
lock_payments_shard_of "$CUS_W1"
pay_in_background c-crash-1 "$CUS_W1"
wait_for w1 "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%pay(%c-crash-1%'" t
crash w1
wait "$LOCKER" || true
is "$w: the call fails" failed "$(payer_result)"
node_start w1
is "$w: nothing paid, no key" "0 0" "$(payments_of c-crash-1) $(colocated_keys_of c-crash-1)"
like "$w: the retry pays" '*"replayed": false*' "$(nsql coord -c "$(colocated_pay c-crash-1 "$CUS_W1")")"
like "$w: a second retry replays" '*"replayed": true*' "$(nsql coord -c "$(colocated_pay c-crash-1 "$CUS_W1")")"
is "$w: exactly one payment" "1 1" "$(payments_of c-crash-1) $(colocated_keys_of c-crash-1)"

# 2. the worker crashes after its commit is durable, before the call returns
w="colocated, worker crashes after a durable commit"
pause_node w1
pay_in_background c-crash-2 "$CUS_W1"
waiting_in_syncrep w1 '%pay(%c-crash-2%'
crash w1
unpause_node w1
is "$w: the call fails" failed "$(payer_result)"
node_start w1
is "$w: paid, key stored" "1 1" "$(payments_of c-crash-2) $(colocated_keys_of c-crash-2)"
like "$w: the retry replays" '*"replayed": true*' "$(nsql coord -c "$(colocated_pay c-crash-2 "$CUS_W1")")"
is "$w: exactly one payment" 1 "$(payments_of c-crash-2)"
is "colocated crash windows: no prepared transaction anywhere" "0 0 0" \
    "$(prepared_on coord) $(prepared_on w1) $(prepared_on w2)"

# --- purge ---------------------------------------------------------------------------------------

nsql w1 -c "SET idempotency.ttl = 1" -c "$(colocated_pay c-expiring "$CUS_W1")" >/dev/null
nsql w2 -c "SET idempotency.ttl = 1" -c "$(colocated_pay c-expiring "$CUS_W2")" >/dev/null
is "two short-lived keys stored on both workers" 2 "$(colocated_keys_of c-expiring)"
sleep 1.2
purged="$(nsql coord -c "SELECT idem_purge()")"
is "idem_purge on the coordinator purges expired colocated keys on every worker" "yes 0" \
    "$([[ "$purged" -ge 2 ]] && echo yes || echo "no ($purged)") $(colocated_keys_of c-expiring)"
is "... and leaves the live ones" 1 "$(colocated_keys_of c-tx)"
nsql w2 -c "SET idempotency.ttl = 1" -c "$(colocated_pay c-expiring-2 "$CUS_W2")" >/dev/null
sleep 1.2
node_stop w2 fast
out="$(nsql coord -c "SELECT idem_purge() >= 0" 2>&1)"
like "a worker down: idem_purge warns and still purges the coordinator's keys" \
    "*could not purge the colocated idempotency keys*t" "$(echo "$out" | paste -sd' ' -)"
node_start w2
nsql coord -c "SELECT idem_purge()" >/dev/null
is "the worker back: the next purge removes its expired keys" 0 "$(colocated_keys_of c-expiring-2)"

# --- a tenant of another type -------------------------------------------------------------

# colo_apart is distributed by a bigint; its keys table by a bigint tenant
nsql coord -c "SELECT idem_colocate_keys('colo_apart')" >/dev/null
apart_port="$(nsql coord -c "SELECT nodeport FROM citus_shards
                             WHERE shardid = get_shard_id_for_distribution_column('colo_apart', 7)")"
apart_node=w1
[[ "$apart_port" == "${NODE_PORT[w2]}" ]] && apart_node=w2
apart_sql() {
    echo "SELECT idem_execute_colocated('colo_apart', $1, 'c-apart', 'INSERT INTO colo_apart VALUES (\$1) RETURNING id', 7::bigint)"
}
like "a bigint tenant given as an integer: runs where 7's shard is" '*"replayed": false*' \
    "$(nsql "$apart_node" -c "$(apart_sql 7)")"
like "... given as a bigint, or as text: the same key" '*"replayed": true*"replayed": true*' \
    "$(nsql "$apart_node" -c "$(apart_sql 7::bigint)" -c "$(apart_sql "'7'")" | paste -sd' ' -)"
is "... stored under the tenant 7" "1 7" \
    "$(nsql coord -c "SELECT count(*), min(tenant) FROM $(nsql coord -c "SELECT idem_colocate_keys('colo_apart')") WHERE key = 'c-apart'" | tr '|' ' ')"

# --- shard moves with live keys ------------------------------------------------------------------

payments_shard_w1="$(nsql coord -c "SELECT get_shard_id_for_distribution_column('payments', '$CUS_W1')")"
for k in c-move-1 c-move-2; do
    nsql coord -c "$(colocated_pay "$k" "$CUS_W1")" >/dev/null
done
old_keys_shard="$(shard_of_customer "$CUS_W1")"
# a call in flight on worker 1 as the move starts: the move waits for it
hold_key colocated_pay c-move-inflight "$CUS_W1" 2
# by logical replication, Citus's default: writes go on during the copy
nsql coord -c "SELECT citus_move_shard_placement($payments_shard_w1, '$CITUS_DIR', ${NODE_PORT[w1]},
               '$CITUS_DIR', ${NODE_PORT[w2]}, shard_transfer_mode => 'force_logical')" >/dev/null
wait "$HOLDER" || true
is "moved: the customer's shards are on worker 2 now" "${NODE_PORT[w2]} ${NODE_PORT[w2]}" \
    "$(keys_node_of "$CUS_W1") $(nsql coord -c "SELECT nodeport FROM citus_shards WHERE shardid = $payments_shard_w1")"
before="$(all_dist_xacts)"
for k in c-move-1 c-move-2 c-move-inflight c-crash-1 c-crash-2 c-conc; do
    like "moved: key $k replays on the new node" '*"replayed": true*' \
        "$(nsql coord -c "$(colocated_pay "$k" "$CUS_W1")")"
done
is "moved: nothing paid twice" "1 1 1 1 1 1" \
    "$(for k in c-move-1 c-move-2 c-move-inflight c-crash-1 c-crash-2 c-conc; do payments_of "$k"; done | paste -sd' ' -)"
is "moved: the old shard is still on worker 1 (dropped later)" t \
    "$(nsql w1 -c "SELECT to_regclass('$old_keys_shard') IS NOT NULL")"
is "moved: a call on worker 1, where the old shard lingers, is refused" 0A000 \
    "$(sqlstates w1 -c "$(direct_sql c-move-1 "$CUS_W1")")"
like "moved: a new key pays on the new node" '*"replayed": false*' \
    "$(nsql coord -c "$(colocated_pay c-move-new "$CUS_W1")")"
is "moved: the new key is in worker 2's shard" 1 \
    "$(nsql w2 -c "SELECT count(*) FROM $(shard_of_customer "$CUS_W1") WHERE key = 'c-move-new'")"
is "moved: replays and the new key used no two-phase commit" "$before" "$(all_dist_xacts)"

# A call that has claimed its key and is still running its statement as a
# move starts (a client on worker 2, where the shard is now): the statement
# sleeps before it writes anything, so nothing but the call's shard lock
# holds the move back.  The move must wait for the call's commit, which takes
# its key along; without that lock the move would copy the shard without the
# key, the key would go into the old shard, and the retry would pay again.
nsql coord >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE FUNCTION pay_slowly(customer text, amount numeric, ref text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(2);
    INSERT INTO payments (customer, amount, ref) VALUES (customer, amount, ref);
    RETURN ref;
END
$$;
SQL
is "pay_slowly exists on the workers (Citus propagates functions)" "t t" \
    "$(nsql w1 -c "SELECT to_regproc('pay_slowly') IS NOT NULL") $(nsql w2 -c "SELECT to_regproc('pay_slowly') IS NOT NULL")"
slow_sql="SELECT idem_execute_colocated('payments', '$CUS_W1'::text, 'c-move-slow',
    'SELECT pay_slowly(\$1, \$2, \$3) AS ref', '$CUS_W1'::text, 10.00::numeric, 'c-move-slow'::text)"
psql -X -q -A -t -h "$CITUS_DIR" -p "${NODE_PORT[w2]}" -U postgres -d postgres \
    -c "$slow_sql" >"$CITUS_DIR/slow.out" 2>&1 &
SLOW=$!
wait_for w2 "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE '%c-move-slow%'" 1
# blocking writes from its start
nsql coord -c "SELECT citus_move_shard_placement($payments_shard_w1, '$CITUS_DIR', ${NODE_PORT[w2]},
               '$CITUS_DIR', ${NODE_PORT[w1]}, shard_transfer_mode => 'block_writes')" >/dev/null
like "moved back during a call: the call completed" '*"replayed": false*' \
    "$(wait "$SLOW"; cat "$CITUS_DIR/slow.out")"
is "moved back: on worker 1 again" "${NODE_PORT[w1]}" "$(keys_node_of "$CUS_W1")"
like "moved back: the key of the call in flight replays on the new node" '*"replayed": true*' \
    "$(nsql w1 -c "$slow_sql")"
is "moved back: paid once" 1 "$(payments_of c-move-slow)"

# --- a shard split with live keys ----------------------------------------------------------------

split_shard="$(nsql coord -c "SELECT get_shard_id_for_distribution_column('payments', '$CUS_W2')")"
mapfile -t split_customers < <(nsql coord -c "SELECT c FROM generate_series(1, 300) g, LATERAL (SELECT 'cus_' || g AS c) x
    WHERE get_shard_id_for_distribution_column('payments', x.c) = $split_shard ORDER BY g LIMIT 12")
for c in "${split_customers[@]}"; do
    nsql coord -c "$(colocated_pay c-split "$c")" >/dev/null
done
split_point="$(nsql coord -c "SELECT ((shardminvalue::bigint + shardmaxvalue::bigint) / 2)::int
                              FROM pg_dist_shard WHERE shardid = $split_shard")"
nsql coord -c "SET client_min_messages = warning" \
    -c "SELECT citus_split_shard_by_split_points($split_shard, ARRAY['$split_point'],
        ARRAY[(SELECT nodeid FROM pg_dist_node WHERE nodeport = ${NODE_PORT[w1]}),
              (SELECT nodeid FROM pg_dist_node WHERE nodeport = ${NODE_PORT[w2]})],
        shard_transfer_mode => 'block_writes')" >/dev/null
is "split: the customers' keys are on both workers now" 2 \
    "$(for c in "${split_customers[@]}"; do keys_node_of "$c"; done | sort -u | wc -l)"
replayed=0
for c in "${split_customers[@]}"; do
    out="$(nsql coord -c "$(colocated_pay c-split "$c")")"
    [[ "$out" == *'"replayed": true'* ]] && replayed=$((replayed + 1))
done
is "split: every old key replays (${#split_customers[@]} customers)" "${#split_customers[@]}" "$replayed"
is "split: nothing paid twice" "${#split_customers[@]}" "$(payments_of c-split)"
like "split: a new key pays" '*"replayed": false*' \
    "$(nsql coord -c "$(colocated_pay c-split-new "${split_customers[0]}")")"
