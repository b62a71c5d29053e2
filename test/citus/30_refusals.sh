# shellcheck shell=bash
# What cannot be made safe under Citus is refused with 0A000 (sourced after
# 10_coordinator.sh).

# --- calls on a worker --------------------------------------------------------------
for node in w1 w2; do
    is "idem_execute on worker $node: refused" 0A000 \
        "$(sqlstates "$node" -c "$(pay_sql k-on-worker "$CUS_W1")")"
done
is "idem_begin on a worker: refused" 0A000 \
    "$(sqlstates w2 -c "$(request_sql r-on-worker "$CUS_W2")")"
is "refused on a worker: nothing paid" "0 0" "$(payments_of k-on-worker) $(payments_of r-on-worker)"
is "refused on a worker: no key on the worker" 0 \
    "$(nsql w1 -c "SELECT count(*) FROM idempotency_keys")"
out="$(psql -X -q -h "$CITUS_DIR" -p "${NODE_PORT[w1]}" -U postgres -d postgres \
    -c "SELECT idem_execute('k-on-worker', 'SELECT 1')" 2>&1 || true)"
like "refused on a worker: the message says why and where to call" \
    '*cannot be stored on a Citus worker node*HINT:*coordinator*' "$out"

# --- idem_guard on a distributed table ---------------------------------------------
is "idem_guard on a distributed table: refused" 0A000 \
    "$(sqlstates coord -c "SELECT idem_guard('payments', 'ref')")"
nsql coord -c "CREATE TABLE countries (code text PRIMARY KEY)" \
    -c "SELECT create_reference_table('countries')" >/dev/null
is "idem_guard on a reference table: refused" 0A000 \
    "$(sqlstates coord -c "SELECT idem_guard('countries', 'code')")"

# --- the extension's tables turned into Citus tables --------------------------------
# Citus itself refuses the keys table as it is created: its row-level security
# policy has a subquery.  An owner who drops the policy can distribute it; the
# extension must refuse then.  Each case runs in a transaction that rolls back,
# and every function is refused inside it.
is "Citus refuses to distribute the keys table with its policy" 0A000 \
    "$(sqlstates coord -c "SELECT create_distributed_table('idempotency_keys', 'key')")"
is "Citus refuses to make the keys table a reference table with its policy" 0A000 \
    "$(sqlstates coord -c "SELECT create_reference_table('idempotency_keys')")"
nopolicy="DROP POLICY idempotency_keys_own_role ON idempotency_keys"
calls=(
    "$(pay_sql k-dist "$CUS_W1")"
    "SELECT idem_lookup('k-first')"
    "SELECT idem_forget('k-first')"
    "SELECT idem_purge()"
    "INSERT INTO events VALUES ('e-dist')"
    "SELECT idem_unguard('events')"
)
refused_all() {
    local -a args=(-c "SET client_min_messages = warning" -c BEGIN -c "$nopolicy" -c "$1")
    local call
    for call in "${calls[@]}"; do
        args+=(-c "SAVEPOINT s" -c "$call" -c "ROLLBACK TO SAVEPOINT s")
    done
    args+=(-c ROLLBACK)
    sqlstates coord "${args[@]}"
}
all_0A000="0A000 0A000 0A000 0A000 0A000 0A000"
is "keys table distributed: every function refuses" "$all_0A000" \
    "$(refused_all "SELECT create_distributed_table('idempotency_keys', 'key')")"
is "keys table a reference table: every function refuses" "$all_0A000" \
    "$(refused_all "SELECT create_reference_table('idempotency_keys')")"
is "guard registry a reference table: every function refuses" "$all_0A000" \
    "$(refused_all "SELECT create_reference_table('idempotency_guards')")"
out="$(psql -X -q -h "$CITUS_DIR" -p "${NODE_PORT[coord]}" -U postgres -d postgres \
    -c "SET client_min_messages = warning" -c BEGIN -c "$nopolicy" \
    -c "SELECT create_reference_table('idempotency_keys')" \
    -c "SELECT idem_lookup('k-first')" -c ROLLBACK 2>&1 || true)"
like "the refusal names the table and says why" \
    '*idempotency_keys of extension idempotency is a Citus table*DETAIL:*retries would run again*' "$out"
is "after the rollback the keys replay again" \
    t "$(nsql coord -c "SELECT idem_lookup('k-first') IS NOT NULL")"

# --- DDL still works where the extension refuses to run ------------------------------
# The sql_drop event trigger runs on every node; on a worker, deleting from a
# distributed registry would be a distributed query from a shard, and fail
# the DROP.
for how in "create_distributed_table('idempotency_keys', 'key')" \
           "create_reference_table('idempotency_guards')"; do
    is "$how: DROP TABLE of a distributed table still works" "" \
        "$(sqlstates coord -c "SET client_min_messages = warning" -c BEGIN -c "$nopolicy" -c "SELECT $how" \
            -c "CREATE TABLE ddl_probe (id int PRIMARY KEY)" \
            -c "SELECT create_distributed_table('ddl_probe', 'id')" \
            -c "DROP TABLE ddl_probe" -c ROLLBACK)"
done
nsql coord -c "CREATE TABLE ddl_probe (id int PRIMARY KEY)" \
    -c "SELECT create_distributed_table('ddl_probe', 'id')" -c "DROP TABLE ddl_probe" >/dev/null
is "DROP TABLE of a distributed table with local key tables: no error, guard kept" 1 \
    "$(nsql coord -c "SELECT count(*) FROM idempotency_guards")"

# --- a call Citus delegates to a worker ----------------------------------------------
nsql coord >/dev/null <<'SQL'
SET client_min_messages = warning;
-- PL/pgSQL: an SQL function would be inlined on the coordinator, not delegated
CREATE FUNCTION pay_delegated(customer text, key text) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    RETURN idem_execute(key, 'INSERT INTO payments (customer, amount, ref) VALUES ($1, $2, $3)',
                        customer, 10.00::numeric, key);
END
$$;
SELECT create_distributed_function('pay_delegated(text, text)', 'customer',
                                   colocate_with := 'payments', force_delegation := true);
SQL
is "a distributed function delegated to the worker: refused there" 0A000 \
    "$(sqlstates coord -c "SELECT pay_delegated('$CUS_W1', 'k-delegated')")"
is "delegated and refused: nothing paid" 0 "$(payments_of k-delegated)"
is "idem_lookup still answers on a worker (no keys there)" t \
    "$(nsql w1 -c "SELECT idem_lookup('k-first') IS NULL")"

# --- a guarded table distributed afterwards ------------------------------------------
# Citus copies the guard trigger to the shards only with enable_unsafe_triggers;
# the trigger then fires on the workers, where storing a key is refused.
nsql coord -c "CREATE TABLE guarded_late (event_id text)" -c "SELECT idem_guard('guarded_late', 'event_id')" \
    -c "SET citus.enable_unsafe_triggers = on" -c "SET client_min_messages = warning" \
    -c "SELECT create_distributed_table('guarded_late', 'event_id')" >/dev/null
is "a guarded table distributed afterwards: inserts are refused on the workers" 0A000 \
    "$(sqlstates coord -c "SET citus.enable_unsafe_triggers = on" -c "INSERT INTO guarded_late VALUES ('g-1')")"
is "a guarded table distributed afterwards: nothing inserted" 0 \
    "$(nsql coord -c "SELECT count(*) FROM guarded_late")"

# --- a database without the citus extension, on a server that preloads it ------------
nsql w1 -c "CREATE DATABASE no_citus_w" >/dev/null
out="$(psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$CITUS_DIR" -p "${NODE_PORT[w1]}" -U postgres -d no_citus_w \
    -c "CREATE EXTENSION idempotency" -c "SELECT idem_execute('k-plain', 'SELECT 1')" \
    -c "SELECT idem_execute('k-plain', 'SELECT 1')" 2>&1 || true)"
like "a database without citus on a worker's server: keys work as usual" \
    '*"replayed": false*"replayed": true*' "$out"
