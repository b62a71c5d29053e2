#!/usr/bin/env bash
# Benchmark of a whole request under one key (idem_begin / idem_finish)
# against the same request unprotected and against a hand-written keys table.
#
# The request: BEGIN; insert an order; update the stock of its sku; insert a
# ledger row; COMMIT (bench/request/plain.pgbench).  Variants, in the same
# rounds (order reversed every other round), pgbench -M prepared:
#   new key   P  the request alone, no idempotency (the ceiling)
#             I  idem_begin(fresh key, request) ... idem_finish(key, response)
#             H  the same with hand_begin / hand_finish: a Stripe-style keys
#                table in PL/pgSQL (claim row first, response stored last)
#   replay    I  BEGIN; idem_begin(existing key) returns the response; COMMIT
#             H  the same with hand_begin
#             (compared with P of the same rounds: a retry must cost much
#             less than doing the request again)
# Targets (issue 9), by the median of the per-round ratios: new key I >= 0.75
# P and I >= 1.2 H; replay I >= 3 P.  Every run is checked: a new-key run
# makes one order and one key per transaction, a replay run makes none.
#
# Needs a superuser connection in PG* with the extension installed (run it
# through scripts/bench.sh: `BENCH=request make bench`).
# Environment: BENCH_SECONDS [10], BENCH_RUNS [5], BENCH_CLIENTS [4],
# BENCH_JOBS [2], BENCH_REPLAY_KEYS [100000].
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

SECS="${BENCH_SECONDS:-10}"
RUNS="${BENCH_RUNS:-5}"
CLIENTS="${BENCH_CLIENTS:-4}"
JOBS="${BENCH_JOBS:-2}"
REPLAY_KEYS="${BENCH_REPLAY_KEYS:-100000}"
DB=idem_bench_request
HERE="$REPO_ROOT/bench/request"
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -d "$DB")
q() { "${PSQL[@]}" -At -F ' ' -c "$1"; }

BENCH_TMP="$(mktemp -d /tmp/idem-bench-request.XXXXXX)"
add_cleanup "rm -rf '$BENCH_TMP'"
RESULTS="$BENCH_TMP/results.tsv"
: >"$RESULTS"

fresh_database "$DB"
"${PSQL[@]}" -f "$HERE/setup.sql"

# Both keyed variants do what they claim before anything is timed.
log "== request: checking the variants"
"${PSQL[@]}" <<'SQL' || die "sanity check of the variants failed"
SET client_min_messages = warning;
DO $$
DECLARE
    v jsonb;
BEGIN
    FOR i IN 1..2 LOOP
        v := idem_begin('chk', '{"sku": 1}');
        IF (i = 1) <> (v IS NULL) THEN
            RAISE EXCEPTION 'idem_begin call %: %', i, v;
        END IF;
        v := hand_begin('chk', '{"sku": 1}');
        IF (i = 1) <> (v IS NULL) THEN
            RAISE EXCEPTION 'hand_begin call %: %', i, v;
        END IF;
        IF i = 1 THEN
            PERFORM idem_finish('chk', '{"order_id": 1}');
            PERFORM hand_finish('chk', '{"order_id": 1}');
        ELSIF v <> '{"order_id": 1}' OR idem_begin('chk', '{"sku": 1}') <> v THEN
            RAISE EXCEPTION 'replayed responses differ: %', v;
        END IF;
    END LOOP;
END
$$;
DELETE FROM idempotency_keys WHERE key = 'chk';
DELETE FROM hand_keys WHERE key = 'chk';
SQL

# Keys for the replay runs, stored by real requests so they replay as
# application retries would.
log "== request: preloading $REPLAY_KEYS finished keys for each keyed variant"
"${PSQL[@]}" -v n="$REPLAY_KEYS" <<'SQL'
SET client_min_messages = warning;
SET bench.n = :'n';
DO $$
BEGIN
    FOR i IN 1..current_setting('bench.n')::int LOOP
        PERFORM idem_begin('rk-' || i, '{"sku": 1}');
        PERFORM idem_finish('rk-' || i, jsonb_build_object('order_id', i));
        PERFORM hand_begin('rk-' || i, '{"sku": 1}');
        PERFORM hand_finish('rk-' || i, jsonb_build_object('order_id', i));
        IF i % 10000 = 0 THEN
            COMMIT;
        END IF;
    END LOOP;
END
$$;
VACUUM (FREEZE, ANALYZE);
SQL
[[ "$(q "SELECT count(*) FROM idempotency_keys WHERE key LIKE 'rk-%'")" == "$REPLAY_KEYS" ]] \
    || die "replay preload: wrong number of keys"

# run_one WORKLOAD VARIANT RUN: one pgbench run, checked, appended to RESULTS
run_one() {
    local wl="$1" v="$2" run="$3" script prefix out orders0 orders1 keys0 keys1 tps xacts rc=0
    case "$wl:$v" in
        new:P) script=plain ;;
        new:I) script=idem_new ;;
        new:H) script=hand_new ;;
        replay:P) script=plain ;;
        replay:I) script=idem_replay ;;
        replay:H) script=hand_replay ;;
    esac
    prefix="n$run$v-"
    orders0=$(q "SELECT count(*) FROM orders")
    keys0=$(q "SELECT (SELECT count(*) FROM idempotency_keys) + (SELECT count(*) FROM hand_keys)")
    q "CHECKPOINT" >/dev/null
    out="$BENCH_TMP/pgbench.out"
    pgbench -n -M prepared -c "$CLIENTS" -j "$JOBS" -T "$SECS" \
        -D kp="$prefix" -D nkeys="$REPLAY_KEYS" -f "$HERE/$script.pgbench" "$DB" >"$out" 2>&1 || rc=$?
    if ((rc != 0)) || grep -q aborted "$out"; then
        cat "$out" >&2
        die "$wl $v run $run: pgbench failed (exit status $rc)"
    fi
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$out")
    xacts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
    [[ -n "$tps" && -n "$xacts" && "$xacts" -gt 0 ]] || { cat "$out" >&2; die "$wl $v run $run: no result"; }
    orders1=$(q "SELECT count(*) FROM orders")
    keys1=$(q "SELECT (SELECT count(*) FROM idempotency_keys) + (SELECT count(*) FROM hand_keys)")
    local dorders=$((orders1 - orders0)) dkeys=$((keys1 - keys0))
    case "$wl:$v" in
        *:P) [[ $dorders == "$xacts" && $dkeys == 0 ]] ;;
        new:*) [[ $dorders == "$xacts" && $dkeys == "$xacts" ]] ;;
        replay:*) [[ $dorders == 0 && $dkeys == 0 ]] ;;
    esac || die "$wl $v run $run: $xacts transactions made $dorders orders and $dkeys keys"
    printf '%s\t%s\t%s\t%s\n' "$wl" "$v" "$run" "$tps" >>"$RESULTS"
    log "   $(printf '%-6s %s run %d/%d: %9.1f tps, %7d transactions, %d orders, %d keys' \
        "$wl" "$v" "$run" "$RUNS" "$tps" "$xacts" "$dorders" "$dkeys")"
}

for wl in new replay; do
    variants=(P I H)
    log "== request: workload $wl: $RUNS rounds of ${variants[*]}, $SECS s each"
    for ((run = 1; run <= RUNS; run++)); do
        order=("${variants[@]}")
        ((run % 2 == 0)) && order=(H I P)
        for v in "${order[@]}"; do
            run_one "$wl" "$v" "$run"
        done
    done
done

# median TPS of each variant, and the median of per-round ratios A/B
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
tps_median() { awk -F '\t' -v w="$1" -v v="$2" '$1 == w && $2 == v { print $4 }' "$RESULTS" | median; }
ratio() {
    awk -F '\t' -v w="$1" -v a="$2" -v b="$3" '
        $1 == w && $2 == a { x[$3] = $4 } $1 == w && $2 == b { y[$3] = $4 }
        END { for (r in x) if (y[r] > 0) printf "%.4f\n", x[r] / y[r] }' "$RESULTS" | median
}
rounds() {
    awk -F '\t' -v w="$1" -v a="$2" -v b="$3" '
        $1 == w && $2 == a { x[$3] = $4 } $1 == w && $2 == b { y[$3] = $4 }
        END { for (r = 1; r in x; r++) printf "%.2f ", x[r] / y[r] }' "$RESULTS"
}
target() {
    local wl="$1" a="$2" b="$3" want="$4" r
    r=$(ratio "$wl" "$a" "$b")
    printf '%-8s %s/%s  %6.2f  (target >= %s: %s; rounds %s)\n' "$wl" "$a" "$b" "$r" "$want" \
        "$(awk -v r="$r" -v t="$want" 'BEGIN { print (r >= t) ? "MET" : "MISSED" }')" "$(rounds "$wl" "$a" "$b")"
}

echo
echo "== request: $CLIENTS clients, $RUNS rounds x $SECS s, pgbench -M prepared, median tps"
printf '%-8s %12s %12s %12s\n' workload P I H
for wl in new replay; do
    printf '%-8s %12.1f %12.1f %12.1f\n' "$wl" "$(tps_median "$wl" P)" "$(tps_median "$wl" I)" "$(tps_median "$wl" H)"
done
echo
target new I P 0.75
target new I H 1.2
target replay I P 3
