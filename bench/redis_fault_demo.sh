#!/usr/bin/env bash
# Fault demo: the same crash against the two-system approach (Redis SET NX +
# PostgreSQL INSERT + Redis SET, bench/redis/redis_idem.c) and against
# idem_execute, and what a retrying user gets from each.
#
# Two systems (Redis key TTL shortened to BENCH_R_DEMO_TTL, default 3 s):
#   1. one payment request; the client dies (injected: --crash-after-commit
#      _exit()s) after the PostgreSQL INSERT committed and before the Redis
#      SET of the result; the user retries every 0.5 s: "in-progress" (409)
#      until the TTL runs out, then the retry claims the key again and runs
#      the INSERT again; one more retry replays the second payment.
#      Expected: 409s, then a second payment: 2 payments for one request.
#   2. the client dies after the SET NX, before the INSERT
#      (--crash-before-commit): 409s until the TTL, then the INSERT runs
#      once.  Expected: stuck for the TTL, 1 payment.
#
# idem_execute, same request (same client, backend idem: BEGIN;
# SELECT idem_execute(K, 'INSERT ...', customer, amount); COMMIT):
#   A. the client dies after idem_execute, before COMMIT (its connection
#      closes, the backend rolls back); retry: runs once; retry: replays;
#   B. the client dies after COMMIT, before answering; retry: replays;
#   C. a psql session runs BEGIN; SELECT idem_execute(...) and sits in the
#      transaction; a retry with idempotency.wait = off meanwhile gets IK002
#      (the 409 of idem_execute, only while the holder is really in flight);
#      its backend is killed with pg_terminate_backend(); retry: runs once.
#   Expected: exactly 1 payment in each case.
#
# Exit status non-zero if the demo did not reproduce the Redis double payment
# (409s, then 2 payments in case 1), or idem_execute ever shows other than 1
# payment, or any step answers other than described above.
#
# Needs: PGHOST/PGPORT/PGUSER of a running superuser connection (for
# pg_terminate_backend of the demo's own session; scripts/bench.sh provides
# it), the extension installed; installs redis-server, libhiredis-dev and
# libpq-dev if missing.  Runs a private redis-server as in redis_execute.sh.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
# shellcheck source=bench/redis/common.sh
. "$REPO_ROOT/bench/redis/common.sh"

TTL="${BENCH_R_DEMO_TTL:-3}"
[[ "$TTL" =~ ^[1-9][0-9]?$ ]] || die "redis_fault_demo: BENCH_R_DEMO_TTL must be 1..99 seconds, not '$TTL'"
DB=idem_bench_redis_fault
AMOUNT=100.00
# shellcheck disable=SC2016
INSERT_SQL='INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id'

redis_bench_init redis_fault_demo

fresh_database "$DB"
r_psql "$DB" <<SQL
SET client_min_messages = warning;
CREATE EXTENSION idempotency;
CREATE TABLE payments(id bigserial primary key, customer text, amount numeric);
SQL

redis_start
CLIENT=("$R_CLIENT" --conninfo "dbname=$DB" "${R_CONN[@]}" --mode once --amount "$AMOUNT")

# payments made for one logical request (each scenario has its own customer)
payments() {
    psql -X -At -d "$DB" -c "SELECT count(*) FROM payments WHERE customer = '$1'"
}
payment_ids() {
    psql -X -At -d "$DB" -c "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '-') FROM payments WHERE customer = '$1'"
}

# attempt LABEL ARGS...: one request through the client; sets $A_RC and
# $A_OUT (its answer, or what the crash printed)
attempt() {
    local label="$1"
    shift
    A_RC=0
    A_OUT="$("${CLIENT[@]}" "$@" 2>"$R_TMP/attempt.err")" || A_RC=$?
    if [[ $A_RC == 3 ]]; then
        A_OUT="CRASHED (exit 3): $(sed 's/^redis_idem: //' "$R_TMP/attempt.err")"
    elif [[ $A_RC != 0 ]]; then
        A_OUT="ERROR (exit $A_RC): $(cat "$R_TMP/attempt.err")"
    fi
    printf '  %-34s %s\n' "$label" "$A_OUT"
}

elapsed() {
    awk -v t0="$1" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", t1 - t0 }'
}

FAIL=()

# ---------------------------------------------------------------------------
# two systems
# ---------------------------------------------------------------------------
echo
echo "== fault demo (bench/redis_fault_demo.sh): a payment request, the client dies mid-request, the user retries =="
echo
echo "-- two systems: Redis SET idem:K in-progress NX EX $TTL; INSERT; Redis SET idem:K <result> EX $TTL"

# redis_case TAG CRASH-FLAG CUSTOMER: the crashing request, then a retry every
# 0.5 s until one is not a 409, then one more; sets R_N409, R_FIRST409,
# R_LAST409 (seconds after the crash), R_CREATED_AT, R_N (payments)
redis_case() {
    local tag="$1" flag="$2" cust="$3" key t0 ts i
    key="pay-redis-$tag-$(date +%s)-$$"
    t0=$(date +%s.%N)
    attempt "request ($flag):" --key "$key" --customer "$cust" --ttl "$TTL" "--$flag"
    [[ $A_RC == 3 ]] || FAIL+=("Redis $tag: the request did not crash where injected ($A_OUT)")
    echo "  redis idem:$key = \"$("${R_CLI[@]}" get "idem:$key")\", ttl $("${R_CLI[@]}" ttl "idem:$key") s;" \
        "payments for the request: $(payments "$cust")"
    R_N409=0 R_FIRST409="" R_LAST409="" R_CREATED_AT=""
    for ((i = 1; i <= TTL * 2 + 20; i++)); do
        ts="$(elapsed "$t0")"
        attempt "retry $i at +$ts s:" --key "$key" --customer "$cust" --ttl "$TTL"
        if [[ "$A_OUT" == "status=409"* ]]; then
            R_N409=$((R_N409 + 1))
            [[ -n "$R_FIRST409" ]] || R_FIRST409="$ts"
            R_LAST409="$ts"
            sleep 0.5
        else
            [[ "$A_OUT" == "status=201"* ]] && R_CREATED_AT="$ts"
            break
        fi
    done
    attempt "retry again:" --key "$key" --customer "$cust" --ttl "$TTL"
    [[ "$A_OUT" == "status=200"* ]] || FAIL+=("Redis $tag: the last retry did not replay ($A_OUT)")
    R_N="$(payments "$cust")"
    echo "  payments for the one request: $R_N (ids $(payment_ids "$cust"))"
    ((R_N409 > 0)) || FAIL+=("Redis $tag: no retry got 409 in-progress")
    [[ -n "$R_CREATED_AT" ]] || FAIL+=("Redis $tag: no retry ran the INSERT after the TTL")
}

echo " 1. the client dies after the INSERT committed, before the Redis SET of the result"
redis_case after crash-after-commit cus_redis_after_commit
ra_n409=$R_N409 ra_first=$R_FIRST409 ra_last=$R_LAST409 ra_created=$R_CREATED_AT ra_n=$R_N
[[ "$ra_n" == 2 ]] || FAIL+=("Redis after commit: $ra_n payments, the demo expected the double payment (2)")

echo " 2. the client dies after the SET NX, before the INSERT"
redis_case before crash-before-commit cus_redis_before_commit
rb_n409=$R_N409 rb_first=$R_FIRST409 rb_last=$R_LAST409 rb_created=$R_CREATED_AT rb_n=$R_N
[[ "$rb_n" == 1 ]] || FAIL+=("Redis before commit: $rb_n payments, want 1")

# ---------------------------------------------------------------------------
# idem_execute
# ---------------------------------------------------------------------------
echo
echo "-- idem_execute: BEGIN; SELECT idem_execute(K, '$INSERT_SQL', customer, amount); COMMIT"

echo " A. the client dies after idem_execute, before COMMIT"
KA="pay-idem-a-$(date +%s)-$$"
CA="cus_idem_before_commit"
attempt "request (crash before COMMIT):" --backend idem --key "$KA" --customer "$CA" --crash-before-commit
[[ $A_RC == 3 ]] || FAIL+=("idem A: the request did not crash where injected ($A_OUT)")
echo "  payments for the request after the crash: $(payments "$CA")"
attempt "retry:" --backend idem --key "$KA" --customer "$CA"
a_first="$A_OUT"
attempt "retry again:" --backend idem --key "$KA" --customer "$CA"
a_n="$(payments "$CA")"
echo "  payments for the one request: $a_n (ids $(payment_ids "$CA"))"
[[ "$a_first" == "status=201"* ]] || FAIL+=("idem A: the retry did not run the request ($a_first)")
[[ "$A_OUT" == "status=200"* ]] || FAIL+=("idem A: the second retry did not replay ($A_OUT)")

echo " B. the client dies after COMMIT, before answering"
KB="pay-idem-b-$(date +%s)-$$"
CB="cus_idem_after_commit"
attempt "request (crash after COMMIT):" --backend idem --key "$KB" --customer "$CB" --crash-after-commit
[[ $A_RC == 3 ]] || FAIL+=("idem B: the request did not crash where injected ($A_OUT)")
attempt "retry:" --backend idem --key "$KB" --customer "$CB"
b_n="$(payments "$CB")"
echo "  payments for the one request: $b_n (ids $(payment_ids "$CB"))"
[[ "$A_OUT" == "status=200"* ]] || FAIL+=("idem B: the retry did not replay ($A_OUT)")

echo " C. a session's backend is terminated after idem_execute, before COMMIT"
KC="pay-idem-c-$(date +%s)-$$"
CC="cus_idem_terminated"
APP="idem_fault_demo_$$"
# the session: idem_execute, then it stays in the transaction (pg_sleep)
PGAPPNAME="$APP" psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >"$R_TMP/session_c.out" 2>&1 <<SQL &
BEGIN;
SELECT idem_execute('$KC', '$INSERT_SQL', '$CC'::text, $AMOUNT::numeric);
SELECT pg_sleep(300);
COMMIT;
SQL
SESSION_PID=$!
# shellcheck disable=SC2016
add_cleanup '[[ -z "$SESSION_PID" ]] || kill "$SESSION_PID" 2>/dev/null'
backend=""
for ((i = 0; i < 100; i++)); do
    backend="$(psql -X -At -d "$DB" -c "SELECT pid FROM pg_stat_activity
        WHERE application_name = '$APP' AND state = 'active' AND query LIKE '%pg_sleep%'")"
    [[ -z "$backend" ]] || break
    sleep 0.1
done
if [[ -z "$backend" ]]; then
    cat "$R_TMP/session_c.out" >&2
    die "redis_fault_demo: the psql session did not reach pg_sleep"
fi
printf '  %-34s %s\n' "session (backend $backend):" "idem_execute done, transaction open"
c_busy="$(psql -X -q -At -d "$DB" 2>&1 <<SQL || true
\\set VERBOSITY terse
SET idempotency.wait = off;
SELECT idem_execute('$KC', '$INSERT_SQL', '$CC'::text, $AMOUNT::numeric);
\\echo SQLSTATE :LAST_ERROR_SQLSTATE
SQL
)"
printf '  %-34s %s\n' "retry meanwhile (wait = off):" "$(echo "$c_busy" | tr '\n' ' ')"
[[ "$c_busy" == *"SQLSTATE IK002"* ]] || FAIL+=("idem C: a retry while the session is in flight did not get IK002 ($c_busy)")
term="$(psql -X -At -d "$DB" -c "SELECT pg_terminate_backend($backend)")"
session_rc=0
wait "$SESSION_PID" || session_rc=$?
SESSION_PID=""
printf '  %-34s %s\n' "pg_terminate_backend($backend):" "$term; psql exit status $session_rc: $(grep -m1 -i 'terminat' "$R_TMP/session_c.out" || echo '?')"
echo "  payments for the request after the kill: $(payments "$CC")"
attempt "retry:" --backend idem --key "$KC" --customer "$CC"
c_first="$A_OUT"
attempt "retry again:" --backend idem --key "$KC" --customer "$CC"
c_n="$(payments "$CC")"
echo "  payments for the one request: $c_n (ids $(payment_ids "$CC"))"
[[ "$c_first" == "status=201"* ]] || FAIL+=("idem C: the retry did not run the request ($c_first)")
[[ "$A_OUT" == "status=200"* ]] || FAIL+=("idem C: the second retry did not replay ($A_OUT)")

for n in "$a_n" "$b_n" "$c_n"; do
    [[ "$n" == 1 ]] || FAIL+=("idem_execute: $n payments for one request, want 1")
done

# ---------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------
echo
echo "== summary: one payment request, the client crashes, the user retries =="
row() {
    printf '%-22s | %-50s | %s\n' "$1" "$2" "$3" | sed 's/ *$//'
}
row "crash" "two systems (Redis SET NX + INSERT + SET)" "idem_execute (key and write in one transaction)"
row "----------------------" "--------------------------------------------------" "-----------------------------------------------"
row "after COMMIT, before" "retries: 409 in-progress x$ra_n409 (+$ra_first..+$ra_last s)," "retry: 200, replays the committed payment"
row "  the result is stored" "then at +${ra_created:-?} s (TTL over): 201, INSERT again" ""
row "  payments" "$ra_n  <- DOUBLE PAYMENT" "$b_n"
row "before COMMIT" "retries: 409 in-progress x$rb_n409 (+$rb_first..+$rb_last s)," "retry: 201 at once (the aborted attempt left"
row "  (client exits)" "then at +${rb_created:-?} s (TTL over): 201" "  nothing), then 200 replays"
row "  payments" "$rb_n" "$a_n"
row "before COMMIT" "" "IK002 while it is in flight (wait = off), then"
row "  (backend terminated)" "" "  retry: 201 once, then 200 replays"
row "  payments" "" "$c_n"
echo "(the Redis key TTL is $TTL s for the demo; with a usual 24 h TTL the retries get 409 for a day, then the payment runs again)"
echo
if ((${#FAIL[@]} > 0)); then
    printf 'FAILED: %s\n' "${FAIL[@]}"
    exit 1
fi
echo "OK: the two-system approach paid twice for one request; idem_execute paid once in every case"
