# shellcheck shell=bash
# Crash windows of a payment through the coordinator (sourced after
# 10_coordinator.sh).  In each, a node is stopped with pg_ctl -m immediate
# at a chosen point of the commit, started again, Citus recovers its
# prepared transactions, the client retries the key, and there must be
# exactly one payment.
#

. test/citus/helpers.bash

# after_crash WINDOW KEY: the client's retry, and exactly one payment
after_crash() {
    nsql coord -c "$("$PAY" "$2" "$CUS_W1")" >/dev/null
    is "$1: exactly one payment after the retry" 1 "$(payments_of "$2")"
    is "$1: the key is stored" 1 "$(keys_of "$2")"
    nsql coord -c "$("$PAY" "$2" "$CUS_W1")" >/dev/null
    is "$1: a second retry pays nothing" 1 "$(payments_of "$2")"
    is "$1: no prepared transaction left on the worker" 0 "$(prepared_on w1)"
    WINDOW_RESULTS+=("$1: payments=$(payments_of "$2")")
}
declare -a WINDOW_RESULTS=()

PAY=pay_sql

# --- 1. the worker crashes before it commits -----------------------------------------
w="window 1 (worker, before its commit)"
lock_payments_shard_of "$CUS_W1"
pay_in_background crash-1 "$CUS_W1"
wait_for w1 "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO public.payments%'" t
crash w1
wait "$LOCKER" || true
is "$w: the call fails" failed "$(payer_result)"
node_start w1
recover
is "$w: nothing was paid, no key" "0 0" "$(payments_of crash-1) $(keys_of crash-1)"
after_crash "$w" crash-1

# --- 2. the worker crashes after its PREPARE is durable --------------------------------
w="window 2 (worker, after a durable PREPARE)"
pause_node w1
pay_in_background crash-2 "$CUS_W1"
waiting_in_syncrep w1 'PREPARE TRANSACTION%'
crash w1
unpause_node w1
is "$w: the call fails" failed "$(payer_result)"
node_start w1
is "$w: the worker kept the prepared transaction" 1 "$(prepared_on w1)"
recover
is "$w: recovery rolled it back: nothing paid, no key" "0 0" "$(payments_of crash-2) $(keys_of crash-2)"
after_crash "$w" crash-2

# --- 3. the coordinator crashes after the worker prepared, before its own commit -----
window_3() {
    local w="window 3 (coordinator, after the worker prepared)$1" k="$2"
    pause_node w1
    pay_in_background "$k" "$CUS_W1"
    waiting_in_syncrep w1 'PREPARE TRANSACTION%'
    crash coord
    unpause_node w1
    payer_result >/dev/null
    node_start coord
    is "$w: the worker holds the prepared payment" 1 "$(prepared_on w1)"
    recover
    is "$w: recovery rolled it back: nothing paid, no key" "0 0" "$(payments_of "$k") $(keys_of "$k")"
    after_crash "$w" "$k"
}

# --- 4. the coordinator crashes after its own commit, before the worker's -------------
window_4() {
    local w="window 4 (coordinator, after its commit, before COMMIT PREPARED)$1" k="$2"
    pause_node coord
    pay_in_background "$k" "$CUS_W1"
    waiting_in_syncrep coord "%$k%"
    is "$w: the worker has prepared" 1 "$(prepared_on w1)"
    crash coord
    unpause_node coord
    payer_result >/dev/null
    node_start coord
    is "$w: the key survived, the payment is still prepared" "1 0" "$(keys_of "$k") $(payments_of "$k")"
    recover
    is "$w: recovery committed the payment" 1 "$(payments_of "$k")"
    after_crash "$w" "$k"
}

window_3 "" crash-3
window_4 "" crash-4
PAY=request_sql
window_3 ", idem_begin/idem_finish" crash-3r
window_4 ", idem_begin/idem_finish" crash-4r
PAY=pay_sql

# --- 5. the worker crashes after its COMMIT PREPARED is durable ------------------------
w="window 5 (worker, after a durable COMMIT PREPARED)"
pause_node coord
pay_in_background crash-5 "$CUS_W1"
waiting_in_syncrep coord '%crash-5%'
pause_node w1
unpause_node coord
waiting_in_syncrep w1 'COMMIT PREPARED%'
crash w1
unpause_node w1
is "$w: the call returns (the coordinator had committed)" ok "$(payer_result)"
node_start w1
recover
is "$w: committed once, key stored" "1 1" "$(payments_of crash-5) $(keys_of crash-5)"
after_crash "$w" crash-5

# --- control: the same crash as window 3 without two-phase commit ---------------------
# A hand-made keys table beside the payment, in one transaction: Citus
# commits the worker first and in one phase.  The crash leaves the payment
# without its key, and the client's retry (key absent) would pay again.
# This is what idem_execute did before it asked for two-phase commit.
w="control (local key row, one-phase commit)"
nsql coord -c "CREATE TABLE hand_keys (key text PRIMARY KEY)" >/dev/null
pause_node w1
psql -X -q -h "$CITUS_DIR" -p "${NODE_PORT[coord]}" -U postgres -d postgres \
    -c BEGIN -c "INSERT INTO hand_keys VALUES ('crash-c')" \
    -c "INSERT INTO payments (customer, amount, ref) VALUES ('$CUS_W1', 10, 'crash-c')" \
    -c COMMIT >/dev/null 2>&1 &
PAYER=$!
waiting_in_syncrep w1 'COMMIT%'
is "$w: the worker committed in one phase (nothing prepared)" 0 "$(prepared_on w1)"
crash coord
unpause_node w1
payer_result >/dev/null
node_start coord
recover
is "$w: the crash left the payment without its key" "1 0" \
    "$(payments_of crash-c) $(nsql coord -c "SELECT count(*) FROM hand_keys WHERE key = 'crash-c'")"

echo "# crash windows:"
printf '#   %s\n' "${WINDOW_RESULTS[@]}"
