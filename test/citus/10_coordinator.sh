# shellcheck shell=bash
# Sourced by scripts/test-citus.sh: nsql, node_*, is, like, CITUS_DIR and
# NODE_PORT come from there.  Sets up what the later files use too:
# the distributed table payments, CUS_W1 / CUS_W2 (customers whose shard is
# on worker 1 / worker 2) and the helpers below.
#
# Through the coordinator: a key is stored on the coordinator, the payment
# on a worker, and the two commit together (two-phase commit).

. test/citus/helpers.bash

is "a customer on each worker ($CUS_W1, $CUS_W2)" yes \
    "$([[ -n "$CUS_W1" && -n "$CUS_W2" ]] && echo yes || echo no)"

# --- one call ------------------------------------------------------------------

before="$(dist_xacts)"
out="$(nsql coord -c "$(pay_sql k-first "$CUS_W1")")"
like "first call pays on the worker" '*"replayed": false*' "$out"
is "the key's remote write was committed with two-phase commit" "$((before + 1))" "$(dist_xacts)"
out="$(nsql coord -c "$(pay_sql k-first "$CUS_W1")")"
like "retry replays" '*"replayed": true*' "$out"
is "retry paid nothing" 1 "$(payments_of k-first)"
is "the key is on the coordinator" 1 "$(keys_of k-first)"

before="$(dist_xacts)"
nsql coord -c "INSERT INTO payments (customer, amount, ref) VALUES ('$CUS_W1', 1, 'plain')" >/dev/null
is "a plain distributed INSERT still commits in one phase" "$before" "$(dist_xacts)"

before="$(dist_xacts)"
nsql coord -c "$(pay_sql k-first "$CUS_W1")" >/dev/null
is "a replay does not ask for two-phase commit" "$before" "$(dist_xacts)"

is "a different request under the key is IK001" IK001 \
    "$(sqlstates coord -c "$(pay_sql k-first "$CUS_W2")")"

# --- transaction blocks ----------------------------------------------------------

before="$(dist_xacts)"
nsql coord -c BEGIN -c "$(pay_sql k-tx1 "$CUS_W1")" -c "$(pay_sql k-tx2 "$CUS_W2")" -c COMMIT >/dev/null
is "two keys in one block: both payments" "1 1" "$(payments_of k-tx1) $(payments_of k-tx2)"
is "two keys in one block: both workers prepared" "$((before + 2))" "$(dist_xacts)"

before="$(dist_xacts)"
nsql coord -c BEGIN \
    -c "INSERT INTO payments (customer, amount, ref) VALUES ('$CUS_W2', 1, 'k-tx3-extra')" \
    -c "$(pay_sql k-tx3 "$CUS_W1")" -c COMMIT >/dev/null
is "a remote write before the key: two-phase commit for both workers" "$((before + 2))" "$(dist_xacts)"

nsql coord -c BEGIN -c "$(pay_sql k-rollback "$CUS_W2")" -c ROLLBACK >/dev/null
is "rolled back: no payment, no key" "0 0" "$(payments_of k-rollback) $(keys_of k-rollback)"
out="$(nsql coord -c "$(pay_sql k-rollback "$CUS_W2")")"
like "rolled back: the retry runs" '*"replayed": false*' "$out"

nsql coord -c BEGIN -c "SAVEPOINT s" -c "$(pay_sql k-savepoint "$CUS_W2")" \
    -c "ROLLBACK TO SAVEPOINT s" -c "$(pay_sql k-savepoint "$CUS_W2")" -c COMMIT >/dev/null
is "rollback to savepoint forgets key and payment; the second call pays once" \
    "1 1" "$(payments_of k-savepoint) $(keys_of k-savepoint)"

# --- request keys: idem_begin ... idem_finish around a distributed write ------------

before="$(dist_xacts)"
nsql coord -c "$(request_sql r-first "$CUS_W2")" >/dev/null
is "idem_begin/idem_finish: paid once, two-phase commit" "1 $((before + 1))" \
    "$(payments_of r-first) $(dist_xacts)"
is "idem_begin on retry returns the stored response" '{"status": 201}' \
    "$(nsql coord -c "SELECT idem_begin('r-first', '{\"pay\": \"$CUS_W2\"}')")"
nsql coord -c "$(request_sql r-first "$CUS_W2")" >/dev/null
is "idem_begin/idem_finish retried: still one payment" 1 "$(payments_of r-first)"

# --- the guard on a local table, beside a remote write -----------------------------

nsql coord -c "CREATE TABLE events (event_id text)" -c "SELECT idem_guard('events', 'event_id')" >/dev/null
before="$(dist_xacts)"
nsql coord -c BEGIN -c "INSERT INTO events VALUES ('e-1')" \
    -c "INSERT INTO payments (customer, amount, ref) VALUES ('$CUS_W1', 1, 'e-1')" -c COMMIT >/dev/null
is "a guard key beside a remote write: two-phase commit" "$((before + 1))" "$(dist_xacts)"
nsql coord -c "INSERT INTO events VALUES ('e-1')" >/dev/null
is "the guard skips the duplicate" 1 "$(nsql coord -c "SELECT count(*) FROM events")"

# --- concurrent duplicates through the coordinator ---------------------------------

hold_key pay_sql k-conc "$CUS_W2" 2
out="$(nsql coord -c "$(pay_sql k-conc "$CUS_W2")")"
wait "$HOLDER" || true
like "a concurrent duplicate waits for the holder, then replays" '*"replayed": true*' "$out"
is "a concurrent duplicate paid once" 1 "$(payments_of k-conc)"

hold_key pay_sql k-conc-off "$CUS_W1" 2
is "idempotency.wait = off: IK002 while the holder is in flight" IK002 \
    "$(sqlstates coord -c "SET idempotency.wait = off" -c "$(pay_sql k-conc-off "$CUS_W1")")"
wait "$HOLDER" || true
is "idempotency.wait = off: paid once" 1 "$(payments_of k-conc-off)"

hold_key pay_sql k-conc-rr "$CUS_W1" 2
is "REPEATABLE READ duplicate of a holder that commits: 40001" 40001 \
    "$(sqlstates coord -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT 1" -c "$(pay_sql k-conc-rr "$CUS_W1")" -c ROLLBACK)"
wait "$HOLDER" || true
is "REPEATABLE READ duplicate: paid once" 1 "$(payments_of k-conc-rr)"
