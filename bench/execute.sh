#!/usr/bin/env bash
# Benchmark of idem_execute against what users would write themselves.
#
# The call under test, sent by pgbench -M prepared with every value a
# parameter, as an application would:
#
#   SELECT idem_execute(key, 'INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id',
#                       'cus_1'::text, 100.00::numeric)
#
# Workloads, each against its baselines in the same rounds:
#   1 new key     every call a fresh key:  idem_execute, B0, B1, B2
#   2 replay      keys that already exist (BENCH_REPLAY_KEYS preloaded keys,
#                 one picked at random per call): idem_execute, F, B2
#   3 hot key     BENCH_HOT_CLIENTS clients over BENCH_HOT_KEYS keys, a fresh
#                 set every 100 ms (so they keep racing for keys that do
#                 not exist yet): idem_execute, B1, B2; correctness counted:
#                 payments rows made by the run == keys of the run
#   4 growth      BENCH_GROWTH_KEYS live keys preloaded into idempotency_keys
#                 (and as many rows into B1's table), then workloads 1 and 2
#                 again: 4a new key, the new keys landing at random among the
#                 preloaded ones: idem_execute, B0, B1; 4b replay of keys
#                 picked among the preloaded ones: idem_execute, F; compared
#                 with the runs of 1 and 2
#   (R)           the two-system approach: Redis SET NX EX + the INSERT +
#                 Redis SET of the result, by the C client of bench/redis/
#                 (built, and a private redis-server started, through
#                 bench/redis/common.sh), as one more variant of 1 and 2
#
# Baselines (bench/execute/):
#   B0  INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id:
#       no idempotency at all, the floor
#   B1  INSERT INTO payments_b1(idempotency_key, ...) ... ON CONFLICT
#       (idempotency_key) DO NOTHING RETURNING id: a unique key column, no
#       stored result
#   B2  b2_execute(key, sql, p1, p2), a PL/pgSQL function: key row with ON
#       CONFLICT DO NOTHING, request hash check, EXECUTE ... USING, result
#       stored and returned as jsonb (b2_execute.sql)
#   F   SELECT result FROM idempotency_keys WHERE owner = ... AND scope = '' AND key = ...:
#       a primary-key lookup of the stored result, the floor of a replay
#
# Method: for each workload, BENCH_RUNS rounds; a round runs every variant
# once for BENCH_SECONDS (pgbench -T), in turn, the order reversed every
# other round (A B C, C B A, ...), so drift (other work on the machine,
# table growth, caches) hits all variants alike; a CHECKPOINT before each
# run.  TPS is pgbench's (without connection time); latencies come from
# pgbench's per-transaction log (--log): p50 and p99 of each run.  The table
# shows the median over the rounds of each; a target compares two variants
# by the median of their ratio within each round.  Tables and indexes are
# prewarmed after each preload (pg_prewarm).  After each run the rows it
# made are counted and checked (a wrong count fails the benchmark).
#
# Needs: PGHOST/PGPORT/PGUSER of a superuser on a running server with the
# extension installed, psql and pgbench in PATH.  scripts/bench.sh provides
# all that (`make bench`, or `BENCH=execute make bench`).  Against your own
# server: `bash bench/execute.sh`; use the settings of scripts/bench.sh.
#
# Environment (defaults in brackets; small values make a quick smoke run,
# e.g. BENCH_SECONDS=2 BENCH_RUNS=1 BENCH_GROWTH_KEYS=100000):
#   BENCH_SECONDS       seconds per pgbench run [10]
#   BENCH_RUNS          rounds per workload [5]
#   BENCH_CLIENTS       pgbench clients, workloads 1, 2, 4 [4]
#   BENCH_JOBS          pgbench threads [2]
#   BENCH_HOT_CLIENTS   clients of workload 3 [8]
#   BENCH_HOT_KEYS      keys at a time in workload 3 [50]
#   BENCH_REPLAY_KEYS   keys preloaded for workload 2 [100000]
#   BENCH_GROWTH_KEYS   keys preloaded for workload 4 [10000000]; 0 skips it
#   BENCH_R             0: leave out R (Redis) [1: run it when bench/redis exists]
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

SECS="${BENCH_SECONDS:-10}"
RUNS="${BENCH_RUNS:-5}"
CLIENTS="${BENCH_CLIENTS:-4}"
JOBS="${BENCH_JOBS:-2}"
HOT_CLIENTS="${BENCH_HOT_CLIENTS:-8}"
HOT_KEYS="${BENCH_HOT_KEYS:-50}"
REPLAY_KEYS="${BENCH_REPLAY_KEYS:-100000}"
GROWTH_KEYS="${BENCH_GROWTH_KEYS:-10000000}"
for v in SECS RUNS CLIENTS JOBS HOT_CLIENTS HOT_KEYS REPLAY_KEYS; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done
[[ "$GROWTH_KEYS" =~ ^(0|[1-9][0-9]*)$ ]] || die "BENCH_GROWTH_KEYS must be a non-negative integer, not '$GROWTH_KEYS'"
((JOBS <= CLIENTS && JOBS <= HOT_CLIENTS)) || die "BENCH_JOBS ($JOBS) must not exceed the clients ($CLIENTS, $HOT_CLIENTS)"

DB=idem_bench_execute
HERE="$REPO_ROOT/bench/execute"
# shellcheck disable=SC2016  # $1, $2 are the statement's parameters
SQL_TEXT='INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id'
CUSTOMER=cus_1
AMOUNT=100.00

command -v psql >/dev/null 2>&1 || die "psql not found (run through scripts/bench.sh)"
command -v pgbench >/dev/null 2>&1 || die "pgbench not found (run through scripts/bench.sh)"
psql -X -At -d postgres -c "SELECT 1" >/dev/null 2>&1 \
    || die "cannot connect to the server (PGHOST=${PGHOST:-} PGPORT=${PGPORT:-}); run through scripts/bench.sh"
[[ "$(psql -X -At -d postgres -c "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")" == t ]] \
    || die "the benchmark needs a superuser connection (it preloads idempotency_keys directly)"
# the keys of the benchmark's role, in the default tenant
OWN_KEYS="owner = current_user::regrole AND scope = ''"

BENCH_TMP="$(mktemp -d /tmp/idem-bench-execute.XXXXXX)"
add_cleanup "rm -rf '$BENCH_TMP'"
RESULTS="$BENCH_TMP/results.tsv"
: >"$RESULTS"

PSQL=(psql -X -q -v ON_ERROR_STOP=1 -d "$DB")
# one value (or one line of values separated by spaces) from a query
q() {
    "${PSQL[@]}" -At -F ' ' -c "$1"
}

# ---------------------------------------------------------------------------
# setup: database, schema, sanity checks of every variant
# ---------------------------------------------------------------------------
fresh_database "$DB"
"${PSQL[@]}" -f "$HERE/setup.sql" -f "$HERE/b2_execute.sql"

# prewarm: read every table and index of the benchmark into shared_buffers
# after a preload.  A bulk load and VACUUM go through a small ring of
# buffers, so without it the first runs would read the OS page cache, not
# measure the workload; every variant's tables are warmed alike.
"${PSQL[@]}" -c "CREATE EXTENSION pg_prewarm" >/dev/null \
    || die "pg_prewarm (contrib, part of the postgresql-15 package) is missing"
prewarm() {
    q "SELECT sum(pg_prewarm(c.oid))
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i', 't')
           OR c.oid IN (SELECT reltoastrelid FROM pg_class WHERE relnamespace = 'public'::regnamespace)"
}

# Each variant does what it claims: the first call runs the statement, the
# second with the same key replays it (same id back), a different request
# under the same key fails.  (psql variables keep the SQL text out of the
# shell's quoting.)
log "== execute: checking the variants"
"${PSQL[@]}" -At -v sql="$SQL_TEXT" <<'SQL' >"$BENCH_TMP/check.out" \
    || die "sanity check of the variants failed (see the error above)"
SET client_min_messages = warning;
SELECT idem_execute('chk-1', :'sql', 'cus_1'::text, 100.00::numeric) AS i1 \gset
SELECT idem_execute('chk-1', :'sql', 'cus_1'::text, 100.00::numeric) AS i2 \gset
SELECT b2_execute('chk-1', :'sql', 'cus_1'::text, 100.00::numeric) AS b1 \gset
SELECT b2_execute('chk-1', :'sql', 'cus_1'::text, 100.00::numeric) AS b2 \gset
SELECT 'idem ' || (:'i1'::jsonb->>'replayed' = 'false' AND :'i2'::jsonb->>'replayed' = 'true'
        AND :'i1'::jsonb->'rows' = :'i2'::jsonb->'rows' AND (:'i1'::jsonb #>> '{rows,0,id}') IS NOT NULL
        AND :'i1'::jsonb->>'command' = 'INSERT' AND :'i1'::jsonb->>'row_count' = '1');
SELECT 'b2 ' || (:'b1'::jsonb->>'replayed' = 'false' AND :'b2'::jsonb->>'replayed' = 'true'
        AND :'b1'::jsonb->'rows' = :'b2'::jsonb->'rows'
        AND :'b1'::jsonb - 'rows' = :'i1'::jsonb - 'rows'
        AND jsonb_typeof(:'b1'::jsonb #> '{rows,0,id}') = 'number');
-- 1.1 stores an idem_execute result as its command tag and its rows
SELECT 'f ' || (result = :'i1'::jsonb -> 'rows' AND command = 'INSERT 1')
  FROM idempotency_keys WHERE owner = current_user::regrole AND scope = '' AND key = 'chk-1';
WITH a AS (INSERT INTO payments_b1(idempotency_key, customer, amount) VALUES ('chk-1', 'cus_1', 100.00)
           ON CONFLICT (idempotency_key) DO NOTHING RETURNING id)
SELECT count(*) AS b1_first FROM a \gset
WITH a AS (INSERT INTO payments_b1(idempotency_key, customer, amount) VALUES ('chk-1', 'cus_1', 100.00)
           ON CONFLICT (idempotency_key) DO NOTHING RETURNING id)
SELECT count(*) AS b1_again FROM a \gset
SELECT 'b1 ' || (:b1_first = 1 AND :b1_again = 0);
SELECT 'payments ' || (count(*) = 2) FROM payments;
-- a different request under the same key: refused by both
DO $$
DECLARE
    refused boolean;
BEGIN
    refused := false;
    BEGIN
        PERFORM idem_execute('chk-1', 'INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id',
                             'cus_1'::text, 200.00::numeric);
    EXCEPTION WHEN SQLSTATE 'IK001' THEN
        refused := true;
    END;
    IF NOT refused THEN
        RAISE EXCEPTION 'idem_execute accepted a different request under a used key';
    END IF;
    refused := false;
    BEGIN
        PERFORM b2_execute('chk-1', 'INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id',
                           'cus_1'::text, 200.00::numeric);
    EXCEPTION WHEN SQLSTATE 'P0001' THEN
        refused := true;
    END;
    IF NOT refused THEN
        RAISE EXCEPTION 'b2_execute accepted a different request under a used key';
    END IF;
END
$$;
SELECT 'payments after mismatch ' || (count(*) = 2) FROM payments;
DELETE FROM idempotency_keys WHERE key = 'chk-1';
DELETE FROM b2_keys WHERE key = 'chk-1';
DELETE FROM payments_b1 WHERE idempotency_key = 'chk-1';
TRUNCATE payments;
SQL
check_out="$(cat "$BENCH_TMP/check.out")"
for want in "idem true" "b2 true" "f true" "b1 true" "payments true" "payments after mismatch true"; do
    grep -qx "$want" <<<"$check_out" \
        || die "sanity check of the variants failed (want '$want'):"$'\n'"$check_out"
done

# ---------------------------------------------------------------------------
# preload of the replay keys: real calls, so fingerprints and results are
# what the runs will replay
# ---------------------------------------------------------------------------
log "== execute: preloading $REPLAY_KEYS replay keys (idem_execute and B2)"
t0=$SECONDS
"${PSQL[@]}" -v sql="$SQL_TEXT" -v n="$REPLAY_KEYS" <<'SQL'
SET client_min_messages = warning;
SELECT count(idem_execute('rk-' || i, :'sql', 'cus_1'::text, 100.00::numeric))
  FROM generate_series(1, :n) AS i \g /dev/null
SELECT count(b2_execute('rk-' || i, :'sql', 'cus_1'::text, 100.00::numeric))
  FROM generate_series(1, :n) AS i \g /dev/null
VACUUM (FREEZE, ANALYZE);
CHECKPOINT;
SQL
[[ "$(q "SELECT count(*) FROM idempotency_keys WHERE key LIKE 'rk-%'")" == "$REPLAY_KEYS" ]] \
    || die "replay preload: wrong number of keys in idempotency_keys"
prewarm >/dev/null
REPLAY_PRELOAD_S=$((SECONDS - t0))

# ---------------------------------------------------------------------------
# one pgbench run
# ---------------------------------------------------------------------------
# variant -> its pgbench script in bench/execute/
declare -A SCRIPT=(
    [idem_new]=idem_new [idem_pick]=idem_pick
    [B0]=b0
    [idem_hot]=idem_hot [B1_hot]=b1_hot [B2_hot]=b2_hot
    [B1_new]=b1_new
    [B2_new]=b2_new [B2_pick]=b2_pick
    [F]=f_pick
)

# count_keys VARIANT PREFIX: keys made under PREFIX in the variant's table
count_keys() {
    local prefix="$2"
    case "$1" in
        idem_*) q "SELECT count(*) FROM idempotency_keys WHERE $OWN_KEYS AND key LIKE '$prefix%'" ;;
        B1_*) q "SELECT count(*) FROM payments_b1 WHERE idempotency_key LIKE '$prefix%'" ;;
        B2_*) q "SELECT count(*) FROM b2_keys WHERE key LIKE '$prefix%'" ;;
        *) echo 0 ;;
    esac
}

# run_one WORKLOAD VARIANT RUN CLIENTS PREFIX NKEYS
# Runs pgbench, checks the rows it made, appends a line to $RESULTS.
run_one() {
    local wl="$1" variant="$2" run="$3" clients="$4" prefix="$5" nkeys="$6"
    local script="$HERE/${SCRIPT[$variant]}.pgbench"
    local out="$BENCH_TMP/pgbench.out" logp="$BENCH_TMP/txlog"
    local pay0 pay1 keys0 keys1 tps xacts p50 p99 rc

    # Keys are counted under the run's own prefix where it makes some.
    # Replays must make none: checked through the payments, without counting
    # a big key set twice.  Growth's new keys lie among the preloaded ones,
    # under the same prefix: their total is checked once, after those runs.
    local count=0
    case "$wl:$variant" in new:* | hot:*) count=1 ;; esac
    pay0=$(q "SELECT count(*) FROM payments")
    keys0=0
    ((count)) && keys0=$(count_keys "$variant" "$prefix")
    q "CHECKPOINT" >/dev/null
    rm -f "$logp".*
    rc=0
    pgbench -n -M prepared -c "$clients" -j "$JOBS" -T "$SECS" \
        --log --log-prefix="$logp" \
        -D kp="$prefix" -D nkeys="$nkeys" -D customer="$CUSTOMER" -D amount="$AMOUNT" \
        -f "$script" "$DB" >"$out" 2>&1 || rc=$?
    if ((rc != 0)) || grep -q 'aborted' "$out"; then
        cat "$out" >&2
        die "$wl $variant run $run: pgbench failed (exit status $rc)"
    fi
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$out")
    xacts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
    [[ -n "$xacts" ]] || { cat "$out" >&2; die "$wl $variant run $run: cannot read pgbench's output"; }
    ((xacts > 0)) || die "$wl $variant run $run: no transaction completed in $SECS s (connections slow on a loaded machine? try a longer BENCH_SECONDS)"
    [[ -n "$tps" ]] || { cat "$out" >&2; die "$wl $variant run $run: cannot read pgbench's output"; }
    # per-transaction log: client_id transaction_no latency_us script_no epoch us
    read -r p50 p99 n_logged < <(cat "$logp".* | awk '{ print $3 }' | sort -n | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "0 0 0"; exit }
            i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++;
            i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++;
            printf "%.3f %.3f %d\n", v[i50] / 1000, v[i99] / 1000, NR
        }')
    rm -f "$logp".*
    [[ "$n_logged" == "$xacts" ]] \
        || die "$wl $variant run $run: pgbench logged $n_logged transactions but reported $xacts"

    pay1=$(q "SELECT count(*) FROM payments")
    keys1=0
    ((count)) && keys1=$(count_keys "$variant" "$prefix")
    local dpay=$((pay1 - pay0)) dkeys=$((keys1 - keys0)) note=""
    case "$wl:$variant" in
        new:idem_new | new:B2_new)
            [[ $dpay == "$xacts" && $dkeys == "$xacts" ]] \
                || die "$wl $variant run $run: $xacts calls with fresh keys made $dpay payments and $dkeys keys"
            note="$dpay payments, $dkeys keys" ;;
        growth:idem_new)
            [[ $dpay == "$xacts" ]] || die "$wl $variant run $run: $xacts calls with fresh keys made $dpay payments"
            GROWTH_NEW_CALLS=$((GROWTH_NEW_CALLS + xacts))
            note="$dpay payments (keys counted after the growth runs)" ;;
        growth:B1_new)
            [[ $dpay == 0 ]] || die "$wl $variant run $run: B1 made $dpay payments"
            GROWTH_B1_CALLS=$((GROWTH_B1_CALLS + xacts))
            note="(rows counted after the growth runs)" ;;
        new:B0 | growth:B0)
            [[ $dpay == "$xacts" ]] || die "$wl $variant run $run: $xacts inserts made $dpay payments"
            note="$dpay payments" ;;
        new:B1_new)
            [[ $dkeys == "$xacts" && $dpay == 0 ]] \
                || die "$wl $variant run $run: $xacts inserts with fresh keys made $dkeys rows"
            note="$dkeys rows" ;;
        replay:* | growth:idem_pick | growth:F)
            [[ $dpay == 0 ]] || die "$wl $variant run $run: replays made $dpay payments"
            note="0 payments" ;;
        hot:idem_hot | hot:B2_hot)
            # exactly one payment per key, every key with its result stored
            local no_result
            if [[ $variant == idem_hot ]]; then
                no_result=$(q "SELECT count(*) FROM idempotency_keys WHERE $OWN_KEYS AND key LIKE '$prefix%' AND result IS NULL")
            else
                no_result=$(q "SELECT count(*) FROM b2_keys WHERE key LIKE '$prefix%' AND result IS NULL")
            fi
            HOT_CHECK+=("$(printf '%-8s run %d: %6d calls, %5d keys, %5d payments, %d keys without a result' \
                "$variant" "$run" "$xacts" "$dkeys" "$dpay" "$no_result")")
            [[ $dpay == "$dkeys" && $dkeys -ge 1 && $no_result == 0 ]] \
                || die "$wl $variant run $run: $dkeys keys of the run but $dpay payments ($no_result keys without result)"
            note="$dkeys keys, $dpay payments: rows == keys" ;;
        hot:B1_hot)
            HOT_CHECK+=("$(printf '%-8s run %d: %6d calls, %5d keys, %5d rows (the unique constraint)' \
                "$variant" "$run" "$xacts" "$dkeys" "$dkeys")")
            [[ $dkeys -ge 1 && $dpay == 0 ]] || die "$wl $variant run $run: $dkeys rows, $dpay payments"
            note="$dkeys rows" ;;
        *) die "run_one: no check for $wl:$variant" ;;
    esac
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$wl" "$variant" "$run" "$tps" "$p50" "$p99" "$xacts" >>"$RESULTS"
    log "   $(printf '%-6s %-9s run %d/%d: %9.1f tps, p50 %7.3f ms, p99 %7.3f ms, %7d calls; %s' \
        "$wl" "$variant" "$run" "$RUNS" "$tps" "$p50" "$p99" "$xacts" "$note")"
}

# run_workload WORKLOAD "VARIANT..." : BENCH_RUNS rounds, alternating order
run_workload() {
    local wl="$1" variants run v clients prefix nkeys
    read -r -a variants <<<"$2"
    log "== execute: workload $wl: $RUNS rounds of ${variants[*]}, $SECS s each"
    "${PSQL[@]}" -c "VACUUM ANALYZE" >/dev/null
    for ((run = 1; run <= RUNS; run++)); do
        local -a order=("${variants[@]}")
        if ((run % 2 == 0)); then
            local -a rev=()
            for ((i = ${#order[@]} - 1; i >= 0; i--)); do rev+=("${order[i]}"); done
            order=("${rev[@]}")
        fi
        for v in "${order[@]}"; do
            clients=$CLIENTS
            case "$wl:$v" in
                new:*)
                    # fresh keys: a prefix per run and variant
                    prefix="n${run}${v%%_*}-"; nkeys=1 ;;
                replay:*) prefix="rk-"; nkeys=$REPLAY_KEYS ;;
                growth:*)
                    # new keys too: 'g-' || random || '-' || client lands
                    # among the preloaded 'g-1' .. 'g-N'
                    prefix="g-"; nkeys=$GROWTH_KEYS ;;
                hot:*) prefix="h${run}${v%%_*}-"; nkeys=$HOT_KEYS; clients=$HOT_CLIENTS ;;
            esac
            if [[ "$v" == R ]]; then
                run_r "$wl" "$run"
            else
                run_one "$wl" "$v" "$run" "$clients" "$prefix" "$nkeys"
            fi
        done
    done
}

# ---------------------------------------------------------------------------
# (R) Redis SET NX EX + PostgreSQL INSERT + Redis SET of the result: the
# client of bench/redis/ (redis_idem.c, built and its redis-server started
# by bench/redis/common.sh), run as one more variant of workloads 1 and 2,
# in the same rounds; it writes the same payments table.  BENCH_R=0 skips it.
# ---------------------------------------------------------------------------
R_HOOK=""
if [[ "${BENCH_R:-1}" != 0 && -f "$REPO_ROOT/bench/redis/common.sh" ]]; then
    # shellcheck source=bench/redis/common.sh
    . "$REPO_ROOT/bench/redis/common.sh"
    log "== execute: building the Redis client (bench/redis) and starting redis-server"
    redis_bench_init execute
    redis_start
    R_HOOK="bench/redis/redis_idem.c, $CLIENTS threads, redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on $R_WHERE"
    R_CMD=("$R_CLIENT" --conninfo "dbname=$DB" "${R_CONN[@]}" --threads "$CLIENTS"
           --customer "$CUSTOMER" --amount "$AMOUNT")
    log "== execute: preloading $REPLAY_KEYS replay keys (R)"
    out="$("${R_CMD[@]}" --mode preload --prefix rk- --keys "$REPLAY_KEYS")" \
        || die "R preload failed: $out"
    [[ "$out" == *" created=$REPLAY_KEYS "* ]] || die "R preload: not $REPLAY_KEYS keys created: $out"
fi

# r_field NAME LINE: the value of NAME=... in the R client's output line
r_field() {
    local kv
    for kv in $2; do
        if [[ "$kv" == "$1="* ]]; then
            echo "${kv#*=}"
            return 0
        fi
    done
    die "R: no $1= in the client's output: $2"
}

# run_r WORKLOAD RUN: one timed run of the R client, checked like run_one
run_r() {
    local wl="$1" run="$2" mode out pay0 pay1 requests created replayed
    mode=new
    [[ "$wl" == replay ]] && mode=replay
    q "CHECKPOINT" >/dev/null
    pay0=$(q "SELECT count(*) FROM payments")
    out="$("${R_CMD[@]}" --mode "$mode" --seconds "$SECS" --prefix rk- --keys "$REPLAY_KEYS")" \
        || die "$wl R run $run: the client failed: $out"
    pay1=$(q "SELECT count(*) FROM payments")
    requests=$(r_field requests "$out")
    created=$(r_field created "$out")
    replayed=$(r_field replayed "$out")
    [[ "$(r_field conflicts "$out")" == 0 && "$(r_field errors "$out")" == 0 ]] \
        || die "$wl R run $run: conflicts or errors: $out"
    if [[ $mode == new ]]; then
        [[ $created == "$requests" && $((pay1 - pay0)) == "$created" ]] \
            || die "$wl R run $run: $requests requests, $created created, $((pay1 - pay0)) payments: $out"
    else
        [[ $replayed == "$requests" && $pay1 == "$pay0" ]] \
            || die "$wl R run $run: $requests requests, $replayed replayed, $((pay1 - pay0)) payments: $out"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$wl" R "$run" "$(r_field tps "$out")" \
        "$(r_field median_ms "$out")" "$(r_field p99_ms "$out")" "$requests" >>"$RESULTS"
    log "   $(printf '%-6s %-9s run %d/%d: %9.1f tps, p50 %7.3f ms, p99 %7.3f ms, %7d calls; %s' \
        "$wl" R "$run" "$RUNS" "$(r_field tps "$out")" "$(r_field median_ms "$out")" \
        "$(r_field p99_ms "$out")" "$requests" "$((pay1 - pay0)) payments")"
}

declare -a HOT_CHECK=()
load_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
t_runs=$SECONDS

R_VARIANT=""
[[ -n "$R_HOOK" ]] && R_VARIANT=" R"
run_workload new "idem_new B0 B1_new B2_new$R_VARIANT"
run_workload replay "idem_pick F B2_pick$R_VARIANT"

# The in-server cost of a replay (bench_replay_loop in setup.sql): the same
# replays as workload 2 from a PL/pgSQL loop, no client round trip, 5 rounds
# alternating; median microseconds per call.
log "== execute: in-server replay cost, 5 rounds of 200000 calls each"
inserver_runs=$(for ((i = 1; i <= 5; i++)); do
    q "SELECT 'idem_execute', round(bench_replay_loop('idem_execute', 200000, $REPLAY_KEYS)::numeric, 3)"
    q "SELECT 'F', round(bench_replay_loop('F', 200000, $REPLAY_KEYS)::numeric, 3)"
done)
# median_of VARIANT: the median of that variant's rounds
median_of() {
    awk -v v="$1" '$1 == v { print $2 }' <<<"$inserver_runs" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}
rounds_of() {
    awk -v v="$1" '$1 == v { printf "%s%s", sep, $2; sep = " " }' <<<"$inserver_runs"
}
INSERVER=$(awk -v i="$(median_of idem_execute)" -v f="$(median_of F)" -v ri="$(rounds_of idem_execute)" -v rf="$(rounds_of F)" \
    'BEGIN { printf "idem_execute %.2f us per call, F %.2f us: idem_execute / F time = %.2f (rounds: idem_execute %s; F %s)", i, f, i / f, ri, rf }')
log "   $INSERVER"
run_workload hot "idem_hot B1_hot B2_hot"

# ---------------------------------------------------------------------------
# growth: preload BENCH_GROWTH_KEYS live keys, as idem_execute would have
# stored them (the fingerprint of this very request, so they replay), then
# workloads 1 and 2 again.  B1's table gets as many rows with the same keys:
# B1 in 4a shows what a random insert into a unique index of that size costs
# by itself, as F in 4b shows it for a lookup.
# ---------------------------------------------------------------------------
GROWTH_PRELOAD=""
GROWTH_PRELOAD_B1=""
if ((GROWTH_KEYS > 0)); then
    log "== execute: preloading $GROWTH_KEYS keys into idempotency_keys (and payments_b1)"
    t0=$(date +%s.%N)
    "${PSQL[@]}" -v n="$GROWTH_KEYS" <<'SQL'
SET client_min_messages = warning;
INSERT INTO idempotency_keys (owner, scope, key, fingerprint, result, created_at, expires_at)
SELECT current_user::regrole, '', 'g-' || i, f.fingerprint,
       ('{"rows": [{"id": ' || i || '}], "command": "INSERT", "row_count": 1}')::jsonb,
       now(), now() + interval '1 day'
  FROM (SELECT fingerprint FROM idempotency_keys
         WHERE owner = current_user::regrole AND scope = '' AND key = 'rk-1') AS f,
       generate_series(1, :n) AS i;
SQL
    t1=$(date +%s.%N)
    "${PSQL[@]}" -c "VACUUM (FREEZE, ANALYZE) idempotency_keys" -c "CHECKPOINT"
    t2=$(date +%s.%N)
    read -r n_live keys_mb <<<"$(q "SELECT count(*), round(pg_total_relation_size('idempotency_keys') / 1048576.0)
                                      FROM idempotency_keys")"
    GROWTH_PRELOAD=$(awk -v a="$t0" -v b="$t1" -v c="$t2" -v n="$GROWTH_KEYS" \
        'BEGIN { printf "INSERT ... SELECT of %d keys %.1f s (%.0f rows/s), VACUUM (FREEZE, ANALYZE) + CHECKPOINT %.1f s", n, b - a, n / (b - a), c - b }')
    GROWTH_PRELOAD="$GROWTH_PRELOAD; table then $n_live keys, $keys_mb MiB with its index"
    log "   $GROWTH_PRELOAD"
    t0=$(date +%s.%N)
    "${PSQL[@]}" -v n="$GROWTH_KEYS" <<'SQL'
INSERT INTO payments_b1 (idempotency_key, customer, amount)
SELECT 'g-' || i, 'cus_1', 100.00 FROM generate_series(1, :n) AS i;
VACUUM (FREEZE, ANALYZE) payments_b1;
CHECKPOINT;
SQL
    t1=$(date +%s.%N)
    read -r n_b1 b1_mb <<<"$(q "SELECT count(*), round(pg_total_relation_size('payments_b1') / 1048576.0)
                                  FROM payments_b1")"
    GROWTH_PRELOAD_B1=$(awk -v a="$t0" -v b="$t1" -v n="$GROWTH_KEYS" -v r="$n_b1" -v m="$b1_mb" \
        'BEGIN { printf "payments_b1: %d rows in %.1f s with VACUUM and CHECKPOINT; then %d rows, %d MiB with its indexes", n, b - a, r, m }')
    log "   $GROWTH_PRELOAD_B1"
    t0=$(date +%s.%N)
    pages=$(prewarm)
    t1=$(date +%s.%N)
    GROWTH_PREWARM=$(awk -v a="$t0" -v b="$t1" -v p="$pages" \
        'BEGIN { printf "pg_prewarm of every table and index: %d pages (%.0f MiB) in %.1f s", p, p * 8 / 1024, b - a }')
    log "   $GROWTH_PREWARM"
    # a preloaded key replays with its own result
    [[ "$(q "SELECT idem_execute('g-$GROWTH_KEYS', '${SQL_TEXT}', 'cus_1'::text, 100.00::numeric)
             = jsonb_build_object('rows', jsonb_build_array(jsonb_build_object('id', $GROWTH_KEYS)),
                                  'command', 'INSERT', 'row_count', 1, 'replayed', true)")" == t ]] \
        || die "growth preload: key g-$GROWTH_KEYS does not replay its stored result"
    GROWTH_NEW_CALLS=0
    GROWTH_B1_CALLS=0
    run_workload growth "idem_new B0 B1_new idem_pick F"
    n_after=$(q "SELECT count(*) FROM idempotency_keys")
    [[ $n_after == $((n_live + GROWTH_NEW_CALLS)) ]] \
        || die "growth: idempotency_keys has $n_after keys, want $n_live + $GROWTH_NEW_CALLS new ones"
    n_b1_after=$(q "SELECT count(*) FROM payments_b1")
    [[ $n_b1_after == $((n_b1 + GROWTH_B1_CALLS)) ]] \
        || die "growth: payments_b1 has $n_b1_after rows, want $n_b1 + $GROWTH_B1_CALLS new ones"
    log "   growth: $GROWTH_NEW_CALLS new keys made, $n_after keys in the table; $GROWTH_B1_CALLS B1 inserts," \
        "$n_b1_after rows in payments_b1: as many as calls"
fi
load_end=$(cut -d ' ' -f 1-3 /proc/loadavg)
t_runs=$((SECONDS - t_runs))

# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------
cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_gb=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
settings=$(q "
    SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY ord)
      FROM unnest(ARRAY['shared_buffers', 'synchronous_commit', 'fsync',
                        'full_page_writes', 'wal_level', 'max_wal_size',
                        'checkpoint_timeout', 'wal_buffers', 'huge_pages', 'autovacuum',
                        'work_mem', 'jit', 'max_connections'])
           WITH ORDINALITY AS s(name, ord)")

echo
echo "== idem_execute benchmark (bench/execute.sh) =="
echo "call:     SELECT idem_execute(key, '$SQL_TEXT', \$customer::text, \$amount::numeric)"
echo "          (pgbench -M prepared, every value a parameter; key = prefix || random bigint, ~25 bytes)"
echo "variants: idem_execute          the call above (variants idem_new, idem_pick, idem_hot: see the workloads)"
echo "          B0                    INSERT INTO payments(customer, amount) VALUES (\$1, \$2) RETURNING id: the floor"
echo "          B1                    INSERT INTO payments_b1(idempotency_key, customer, amount) ... ON CONFLICT"
echo "                                (idempotency_key) DO NOTHING RETURNING id: unique key column, no stored result"
echo "          B2                    b2_execute(key, sql, p1, p2): PL/pgSQL, keys table + ON CONFLICT DO NOTHING,"
echo "                                sha256 request hash, EXECUTE ... USING, result stored as jsonb (bench/execute/b2_execute.sql)"
echo "          F                     SELECT result FROM idempotency_keys WHERE owner = \$1 AND scope = '' AND key = \$2 (primary key)"
if [[ -n "$R_HOOK" ]]; then
    echo "          R                     Redis SET NX EX + PostgreSQL INSERT + Redis SET of the result, one request ="
    echo "                                one call (latency measured in the client): $R_HOOK"
else
    echo "          R                     (Redis + PostgreSQL: not run; BENCH_R=0 or no bench/redis/common.sh)"
fi
echo "workloads: 1 new key: $CLIENTS clients, a fresh key per call"
echo "          2 replay: $CLIENTS clients, keys picked at random among $REPLAY_KEYS preloaded ones (${REPLAY_PRELOAD_S} s to preload)"
echo "          3 hot key: $HOT_CLIENTS clients, keys picked at random among $HOT_KEYS, a fresh set of $HOT_KEYS every 100 ms"
echo "            (so calls race for new keys all along: the first runs, in-flight duplicates wait, later ones replay);"
echo "            checked after each run: payments rows == keys of the run, each key with its result"
if ((GROWTH_KEYS > 0)); then
    echo "          4 growth: 1 and 2 again with $GROWTH_KEYS more live keys 'g-1' .. 'g-$GROWTH_KEYS' in idempotency_keys:"
    echo "            4a's new keys 'g-' || random || '-' || client land at random among them (as UUID-like keys would),"
    echo "            4b picks one of them at random (uniform over the whole table, which may not fit in shared_buffers)"
    echo "            B1's table gets the same keys, so B1 in 4a makes random inserts into a unique index of that size"
    echo "            preload: $GROWTH_PRELOAD"
    echo "                     $GROWTH_PRELOAD_B1"
    echo "                     $GROWTH_PREWARM"
else
    echo "          4 growth: skipped (BENCH_GROWTH_KEYS=0)"
fi
echo "method:   $RUNS rounds per workload, each variant $SECS s per round (pgbench -T $SECS -j $JOBS -M prepared),"
echo "          order reversed every other round; CHECKPOINT before each run; tables and indexes prewarmed"
echo "          after each preload; table = median over the rounds of each run's TPS and of its p50/p99"
echo "          latency (per-transaction log); total $t_runs s of runs"
echo "server:   $(q 'SHOW server_version'), extension $(q "SELECT extversion FROM pg_extension WHERE extname = 'idempotency'")"
echo "settings: $settings"
echo "machine:  $(nproc) CPUs ($cpu_model), ${mem_gb} GiB RAM, $(uname -sr); pgbench on the same machine"
[[ -n "${HUGE_PAGES_NOTE:-}" ]] && echo "memory:   $HUGE_PAGES_NOTE"
echo "load avg: $load_start at the start, $load_end at the end (1/5/15 min; other work on the machine skews numbers)"
sync_commit=$(q "SHOW synchronous_commit")
[[ "$sync_commit" == off ]] || echo "WARNING:  synchronous_commit = $sync_commit, not off as in scripts/bench.sh: the targets assume off"
echo

# The results go in through COPY FROM STDIN, ahead of the report's SQL.
{
    echo "CREATE TEMP TABLE r (wl text, variant text, run int, tps numeric, p50 numeric, p99 numeric, calls bigint);"
    echo "COPY r FROM STDIN;"
    cat "$RESULTS"
    echo '\.'
    cat <<'SQL'
CREATE TEMP VIEW m AS
SELECT wl, variant,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY tps)::numeric AS tps,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY p50)::numeric AS p50,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY p99)::numeric AS p99,
       string_agg(round(tps)::text, ' ' ORDER BY run) AS runs
  FROM r GROUP BY wl, variant;
CREATE TEMP VIEW labels (wl, variant, wl_label, v_label, ord) AS VALUES
    ('new', 'idem_new', '1 new key', 'idem_execute', 1),
    ('new', 'B0', '1 new key', 'B0 plain INSERT', 2),
    ('new', 'B1_new', '1 new key', 'B1 ON CONFLICT DO NOTHING', 3),
    ('new', 'B2_new', '1 new key', 'B2 PL/pgSQL', 4),
    ('new', 'R', '1 new key', 'R Redis + PostgreSQL', 5),
    ('replay', 'idem_pick', '2 replay', 'idem_execute', 6),
    ('replay', 'F', '2 replay', 'F primary-key SELECT', 7),
    ('replay', 'B2_pick', '2 replay', 'B2 PL/pgSQL', 8),
    ('replay', 'R', '2 replay', 'R Redis + PostgreSQL', 9),
    ('hot', 'idem_hot', '3 hot key', 'idem_execute', 10),
    ('hot', 'B1_hot', '3 hot key', 'B1 ON CONFLICT DO NOTHING', 11),
    ('hot', 'B2_hot', '3 hot key', 'B2 PL/pgSQL', 12),
    ('growth', 'idem_new', '4a growth: new key', 'idem_execute', 13),
    ('growth', 'B0', '4a growth: new key', 'B0 plain INSERT', 14),
    ('growth', 'B1_new', '4a growth: new key', 'B1 ON CONFLICT DO NOTHING', 15),
    ('growth', 'idem_pick', '4b growth: replay', 'idem_execute', 16),
    ('growth', 'F', '4b growth: replay', 'F primary-key SELECT', 17);

-- the table; vs B0 = TPS / median TPS of B0 in workload 1
SELECT l.wl_label AS workload, l.v_label AS variant,
       to_char(m.tps, 'FM999G990') AS "median TPS",
       to_char(m.p50, 'FM990.000') AS "p50 ms",
       to_char(m.p99, 'FM990.000') AS "p99 ms",
       to_char(m.tps / b0.tps, 'FM90.00') AS "vs B0",
       m.runs AS "TPS of each round"
  FROM m JOIN labels l USING (wl, variant)
  LEFT JOIN m b0 ON b0.wl = 'new' AND b0.variant = 'B0'
 ORDER BY l.ord;

-- targets of issue 4: within a workload, the ratio of the two variants in
-- each round (run back to back, so drift of the machine cancels out) and its
-- median, which decides; the ratio of median TPS is shown beside it
CREATE TEMP VIEW per_round AS
SELECT a.wl, a.variant AS a, b.variant AS b,
       string_agg(to_char(a.tps / b.tps, 'FM90.00'), ' ' ORDER BY a.run) AS rounds,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY a.tps / b.tps)::numeric AS median_ratio
  FROM r a JOIN r b ON a.wl = b.wl AND a.run = b.run
 GROUP BY a.wl, a.variant, b.variant;
CREATE TEMP VIEW targets (ord, target, wl_a, v_a, wl_b, v_b, goal, norm) AS VALUES
    (1, 'new key: idem_execute >= 0.85 x B1',     'new', 'idem_new', 'new', 'B1_new', 0.85, false),
    (2, 'new key: idem_execute >= 2 x B2',        'new', 'idem_new', 'new', 'B2_new', 2.0, false),
    (3, 'new key: idem_execute >= 1 x R',         'new', 'idem_new', 'new', 'R', 1.0, false),
    (4, 'replay: idem_execute >= 0.85 x F',       'replay', 'idem_pick', 'replay', 'F', 0.85, false),
    (5, 'replay: idem_execute >= 1.4 x B2',       'replay', 'idem_pick', 'replay', 'B2_pick', 1.4, false),
    (6, 'replay: idem_execute >= 1 x R',          'replay', 'idem_pick', 'replay', 'R', 1.0, false),
    (7, 'growth, new key: >= 0.85 x 1 new key',   'growth', 'idem_new', 'new', 'idem_new', 0.85, true),
    (8, 'growth, replay: >= 0.85 x 2 replay',     'growth', 'idem_pick', 'replay', 'idem_pick', 0.85, true);
SELECT t.target AS "target (issue 4)",
       CASE WHEN a.tps IS NULL OR b.tps IS NULL THEN 'not run'
            WHEN t.norm THEN to_char((a.tps / n.tps) / (b.tps / n0.tps), 'FM90.00')
            ELSE to_char(pr.median_ratio, 'FM90.00') END AS measured,
       CASE WHEN a.tps IS NULL OR b.tps IS NULL THEN ''
            ELSE to_char(a.tps / b.tps, 'FM90.00') END AS "of medians",
       coalesce(pr.rounds, '') AS "in each round",
       CASE WHEN a.tps IS NULL OR b.tps IS NULL THEN '-'
            WHEN CASE WHEN t.norm THEN (a.tps / n.tps) / (b.tps / n0.tps) ELSE pr.median_ratio END >= t.goal
            THEN 'PASS' ELSE 'MISS' END AS result
  FROM targets t
  LEFT JOIN m a ON a.wl = t.wl_a AND a.variant = t.v_a
  LEFT JOIN m b ON b.wl = t.wl_b AND b.variant = t.v_b
  LEFT JOIN m n ON n.wl = 'growth' AND n.variant = 'B0'
  LEFT JOIN m n0 ON n0.wl = 'new' AND n0.variant = 'B0'
  LEFT JOIN per_round pr ON pr.wl = t.wl_a AND pr.wl = t.wl_b AND pr.a = t.v_a AND pr.b = t.v_b
 ORDER BY t.ord;

-- context for growth: what the machine, a bare insert and a bare lookup did meanwhile
SELECT format(E'growth context: B0 4a / B0 1 = %s: the machine''s drift between the phases (B0 writes no keys);\n'
              '          B1 4a / B1 1 = %s: what the big unique index costs a bare insert of a random key;\n'
              '          F 4b / F 2 = %s: what the big table costs a bare primary-key lookup of a random key;\n'
              '          idem_execute / B1 = %s in 4a, %s in 1; idem_execute / F = %s in 4b, %s in 2:\n'
              '          the extension''s cost on top of those, with the big and the small table',
              to_char(b0g.tps / b0.tps, 'FM90.00'), to_char(b1g.tps / b1.tps, 'FM90.00'),
              to_char(fg.tps / f.tps, 'FM90.00'),
              to_char(ng.tps / b1g.tps, 'FM90.00'), to_char(n.tps / b1.tps, 'FM90.00'),
              to_char(ig.tps / fg.tps, 'FM90.00'), to_char(i.tps / f.tps, 'FM90.00')) AS " "
  FROM m b0g, m b0, m b1g, m b1, m fg, m f, m ng, m n, m ig, m i
 WHERE b0g.wl = 'growth' AND b0g.variant = 'B0' AND b0.wl = 'new' AND b0.variant = 'B0'
   AND b1g.wl = 'growth' AND b1g.variant = 'B1_new' AND b1.wl = 'new' AND b1.variant = 'B1_new'
   AND fg.wl = 'growth' AND fg.variant = 'F' AND f.wl = 'replay' AND f.variant = 'F'
   AND ng.wl = 'growth' AND ng.variant = 'idem_new' AND n.wl = 'new' AND n.variant = 'idem_new'
   AND ig.wl = 'growth' AND ig.variant = 'idem_pick' AND i.wl = 'replay' AND i.variant = 'idem_pick'
\g (format=unaligned tuples_only=on)
SQL
} | "${PSQL[@]}" -P footer=off
echo
echo "measured: the median over the rounds of the ratio within each round (both variants run back to back,"
echo "          so the machine's drift cancels out); it decides PASS/MISS.  of medians: ratio of median TPS."
echo "growth:   of medians = median TPS with the big table / median TPS of workload 1 or 2 (an earlier phase);"
echo "          measured divides each by B0's median TPS in its own phase (B0 writes no keys: its change is"
echo "          the machine's drift) and decides PASS/MISS."
echo "in-server replay (no client round trip; PL/pgSQL loop, bench_replay_loop in bench/execute/setup.sql):"
echo "          $INSERVER"
echo "hot key:  rows == keys in every run ($HOT_KEYS keys at a time, a fresh set every 100 ms):"
for line in "${HOT_CHECK[@]}"; do
    echo "          $line"
done
echo
