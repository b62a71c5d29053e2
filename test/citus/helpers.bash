# shellcheck shell=bash
# Helpers of the Citus suite, sourced by each test/citus/*.sh that needs
# them (so that one file runs alone: scripts/test-citus.sh test/citus/FILE.sh).
# nsql, node_*, is, like, CITUS_DIR and NODE_PORT come from
# scripts/test-citus.sh.  Sets up, once, the extension, the distributed
# table payments and CUS_W1 / CUS_W2 (customers whose shard is on worker 1
# / worker 2).
if [[ -n "${CITUS_HELPERS_LOADED:-}" ]]; then
    return 0
fi
CITUS_HELPERS_LOADED=1

# psql on a node that records every error's SQLSTATE, one per line on
# stdout, instead of stopping: sqlstates NODE -c SQL [-c SQL...]
sqlstates() {
    local node="$1"
    shift
    psql -X -q -A -t -v ON_ERROR_STOP=0 -v VERBOSITY=sqlstate \
        -h "$CITUS_DIR" -p "${NODE_PORT[$node]}" -U postgres -d postgres "$@" 2>&1 >/dev/null |
        sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\)$/\1/p' | paste -sd' ' -
}

# the call that pays: key $1 for customer $2
pay_sql() {
    echo "SELECT idem_execute('$1', 'INSERT INTO payments (customer, amount, ref) VALUES (\$1, \$2, \$3) RETURNING ref', '$2'::text, 10.00::numeric, '$1'::text)"
}

# The request-key way to pay: idem_begin, the INSERT, idem_finish, in one
# transaction; a retry whose idem_begin returns the stored response does
# nothing else.
request_sql() {
    cat <<SQL
DO \$\$
BEGIN
    IF idem_begin('$1', '{"pay": "$2"}') IS NULL THEN
        INSERT INTO payments (customer, amount, ref) VALUES ('$2', 10.00, '$1');
        PERFORM idem_finish('$1', '{"status": 201}');
    END IF;
END
\$\$
SQL
}
payments_of() {
    nsql coord -c "SELECT count(*) FROM payments WHERE ref = '$1'"
}

keys_of() {
    nsql coord -c "SELECT count(*) FROM idempotency_keys WHERE key = '$1'"
}

# two-phase commits the coordinator has recorded (until recovery removes them)
dist_xacts() {
    nsql coord -c "SELECT count(*) FROM pg_dist_transaction"
}

# wait_for NODE SQL EXPECTED: poll (up to 60 s) until SQL returns EXPECTED
wait_for() {
    local i got=""
    for ((i = 0; i < 600; i++)); do
        got="$(nsql "$1" -c "$2" 2>/dev/null || true)"
        [[ "$got" == "$3" ]] && return 0
        sleep 0.1
    done
    echo "# wait_for $1: '$2' returned '$got', not '$3' after 60 s" >&2
    nsql "$1" -c "SELECT pid, backend_type, state, wait_event_type, wait_event, left(query, 80)
                  FROM pg_stat_activity WHERE pid <> pg_backend_pid()" 2>&1 | sed 's/^/#   /' >&2 || true
    return 1
}

# How a node is paused at a point of the commit: pause.conf names a
# synchronous standby that never connects.  A COMMIT or PREPARE TRANSACTION
# on that node then writes its WAL (durable: synchronous_commit = on) and
# waits for the standby, in wait event SyncRep, until pause.conf is removed.
# A statement is paused before its commit by a lock on its shard instead.

pause_node() {
    echo "synchronous_standby_names = 'idem_pause'" >"$(node_data "$1")/pause.conf"
    chown postgres:postgres "$(node_data "$1")/pause.conf"
    nsql "$1" -c "SELECT pg_reload_conf()" >/dev/null
    wait_for "$1" "SHOW synchronous_standby_names" idem_pause
    # Commits wait only once the checkpointer has read the new setting too.
    # A canary commit that writes WAL (a transactional logical message) and
    # waits proves it; it ends with the pause.  One that went through came
    # too early, and another one is sent.
    local i canary
    for ((i = 0; i < 300; i++)); do
        psql -X -q -h "$CITUS_DIR" -p "${NODE_PORT[$1]}" -U postgres -d postgres \
            -c "SELECT pg_catalog.pg_logical_emit_message(true, 'idem_pause_canary', '')" >/dev/null 2>&1 &
        canary=$!
        sleep 0.2
        if kill -0 "$canary" 2>/dev/null; then
            waiting_in_syncrep "$1" '%idem_pause_canary%'
            return
        fi
    done
    echo "# pause_node $1: commits never started to wait" >&2
    return 1
}

# release a paused node (if it is up) and keep it from pausing on restart
unpause_node() {
    rm -f "$(node_data "$1")/pause.conf"
    if [[ "${NODE_UP[$1]}" == 1 ]]; then
        nsql "$1" -c "SELECT pg_reload_conf()" >/dev/null
        wait_for "$1" "SHOW synchronous_standby_names" ""
    fi
}

# waiting_in_syncrep NODE PATTERN: a backend whose query is LIKE PATTERN waits
waiting_in_syncrep() {
    wait_for "$1" "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event = 'SyncRep' AND query LIKE '$2'" t
}

prepared_on() {
    nsql "$1" -c "SELECT count(*) FROM pg_prepared_xacts"
}

crash() {
    node_stop "$1" immediate
}

# lock_payments_shard_of CUSTOMER: a session on w1 holds the payments shard
# of CUSTOMER (on w1) in ACCESS EXCLUSIVE mode for a minute, so that a write
# to it waits; LOCKER is its pid
lock_payments_shard_of() {
    local shard
    shard="$(nsql coord -c "SELECT shard_name FROM citus_shards WHERE shardid = get_shard_id_for_distribution_column('payments', '$1')")"
    psql -X -q -h "$CITUS_DIR" -p "${NODE_PORT[w1]}" -U postgres -d postgres \
        -c BEGIN -c "SET LOCAL citus.enable_manual_changes_to_shards = on" \
        -c "LOCK TABLE $shard IN ACCESS EXCLUSIVE MODE" -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
    LOCKER=$!
    wait_for w1 "SELECT count(*) FROM pg_locks WHERE relation = '$shard'::regclass AND granted" 1
}

# hold_key PAYFN KEY CUSTOMER SECONDS: in the background, pay under KEY with
# the SQL that PAYFN prints (pay_sql: the coordinator path; colocated_pay:
# delegated, the key held on the worker) in a transaction block kept open for
# SECONDS; returns once the key is held.  HOLDER is its pid.
hold_key() {
    PGAPPNAME=idem_holder psql -X -q -h "$CITUS_DIR" -p "${NODE_PORT[coord]}" -U postgres -d postgres \
        -c BEGIN -c "$("$1" "$2" "$3")" -c "SELECT pg_sleep($4)" -c COMMIT >/dev/null 2>&1 &
    HOLDER=$!
    wait_for coord "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'idem_holder' AND query LIKE '%pg_sleep%'" 1
}

# pay in the background on the coordinator; PAYER is its pid
pay_in_background() {
    psql -X -q -A -t -h "$CITUS_DIR" -p "${NODE_PORT[coord]}" -U postgres -d postgres \
        -c "$("$PAY" "$1" "$2")" >"$CITUS_DIR/payer.out" 2>&1 &
    PAYER=$!
}

# payer_result: ok if the background payment returned, failed otherwise
# (then what the payer said goes to stderr, as a TAP comment, so that a
# failure can be told apart from a timing problem of the test)
payer_result() {
    if wait "$PAYER"; then
        echo ok
    else
        echo failed
        sed 's/^/# payer: /' "$CITUS_DIR/payer.out" >&2
    fi
}

recover() {
    nsql coord -c "SELECT recover_prepared_transactions()" >/dev/null
}

# --- set-up, once ---------------------------------------------------------------

nsql coord >/dev/null <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION idempotency;
CREATE TABLE payments (
    id bigserial,
    customer text NOT NULL,
    amount numeric NOT NULL,
    ref text,
    PRIMARY KEY (customer, id)
);
SELECT create_distributed_table('payments', 'customer', shard_count := 4);
SQL

# a customer whose shard is on the worker at port $1
customer_on() {
    nsql coord -c "SELECT c FROM generate_series(1, 100) g, LATERAL (SELECT 'cus_' || g AS c) x
                   WHERE (SELECT nodeport FROM citus_shards
                          WHERE shardid = get_shard_id_for_distribution_column('payments', x.c)) = $1
                   ORDER BY g LIMIT 1"
}
CUS_W1="$(customer_on "${NODE_PORT[w1]}")"
CUS_W2="$(customer_on "${NODE_PORT[w2]}")"
