#!/usr/bin/env bash
# Baseline R of the idem_execute benchmarks: the two-system idempotency many
# teams run today, a Redis key in front of the PostgreSQL write, as a small C
# client (bench/redis/redis_idem.c, libpq + hiredis).  Per request with key K:
#
#   1. Redis SET idem:K "in-progress" NX EX 86400; if the key exists, GET it:
#      a stored result is replayed, "in-progress" is a conflict (409)
#   2. INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id
#      (prepared, autocommit)
#   3. Redis SET idem:K '{"rows":[{"id":N}],"command":"INSERT","row_count":1}' EX 86400
#
# Workloads, like the pgbench ones in bench/execute.sh (-c 4 -j 2 -M prepared):
#   new     every request a fresh key: SET NX, INSERT, SET (3 round trips)
#   replay  keys drawn at random from BENCH_R_KEYS keys stored beforehand:
#           SET NX (nil), GET (2 Redis round trips, PostgreSQL not touched)
# BENCH_R_CLIENTS threads (default 4), each with its own PostgreSQL and Redis
# connection, for BENCH_R_SECONDS (default 10) per run; BENCH_R_RUNS runs
# (default 3) interleaved new, replay, new, replay, ...  with
# a CHECKPOINT before each.  Latency = time of one whole request in the
# client, all requests kept and sorted: median and p99 (nearest rank).  The
# report gives the median over the runs of TPS, median and p99.
#
# Checked after every run (a mismatch fails the benchmark): new answered
# every request with "created" and the payments table grew by exactly that
# many rows; replay answered every request with a stored result and inserted
# nothing; no conflicts, no errors.
#
# Redis: redis-server from Debian, started for this run from a temp dir, on
# a unix socket only (BENCH_R_TCP=1: 127.0.0.1 and a free port), appendonly
# yes + appendfsync everysec, no RDB snapshots: the counterpart of
# PostgreSQL's synchronous_commit = off (both may lose about the last second
# in a crash, neither waits for a disk flush per request).  It is stopped
# with `redis-cli shutdown nosave` (then a kill of its own pid) on exit.
#
# Needs: PGHOST/PGPORT/PGUSER of a running server (scripts/bench.sh, i.e.
# `make bench`, provides it); installs redis-server, libhiredis-dev and
# libpq-dev from apt if missing (as root); builds the client with gcc.
#
# Environment:
#   BENCH_R_SECONDS  seconds per run (default BENCH_SECONDS, else 10)
#   BENCH_R_CLIENTS  client threads (default BENCH_CLIENTS, else 4)
#   BENCH_R_RUNS     runs of each workload (default BENCH_RUNS, else 3)
#   BENCH_R_KEYS     replay key set size (default 10000)
#   BENCH_R_DB       an existing database to use (its payments table,
#                    created if missing); default: a database of its own,
#                    idem_bench_redis, dropped at the end
#   BENCH_R_TCP=1    Redis over TCP on 127.0.0.1 instead of a unix socket
#   BENCH_R_IDEM=1   also run the same client through idem_execute (backend
#                    idem: SELECT idem_execute($1, '<the INSERT>', $2, $3)),
#                    interleaved, for a same-harness comparison
#
# Output: a report on stdout (progress on stderr) whose last two lines are,
# for bench/execute.sh, the medians over the runs:
#   R-extra p50_new_ms=<float> p50_replay_ms=<float> new_requests=<int> replay_requests=<int> runs=<int> seconds=<int> clients=<int>
#   R new_key_tps=<float> replay_tps=<float> p99_new_ms=<float> p99_replay_ms=<float>
# (requests: median number of requests of one run)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
# shellcheck source=bench/redis/common.sh
. "$REPO_ROOT/bench/redis/common.sh"

SECS="${BENCH_R_SECONDS:-${BENCH_SECONDS:-10}}"
CLIENTS="${BENCH_R_CLIENTS:-${BENCH_CLIENTS:-4}}"
RUNS="${BENCH_R_RUNS:-${BENCH_RUNS:-3}}"
KEYS="${BENCH_R_KEYS:-10000}"
WITH_IDEM="${BENCH_R_IDEM:-0}"
for v in SECS CLIENTS RUNS KEYS; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "redis_execute: $v must be a positive integer, not '${!v}'"
done

redis_bench_init redis_execute

if [[ -n "${BENCH_R_DB:-}" ]]; then
    DB="$BENCH_R_DB"
else
    DB=idem_bench_redis
    fresh_database "$DB"
fi
r_psql "$DB" -c "CREATE TABLE IF NOT EXISTS payments(id bigserial primary key, customer text, amount numeric)"
if [[ "$WITH_IDEM" == 1 ]]; then
    r_psql "$DB" -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS idempotency"
fi
SUPER="$(psql -X -At -d "$DB" -c "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")"

redis_start
CLIENT=("$R_CLIENT" --conninfo "dbname=$DB" "${R_CONN[@]}" --threads "$CLIENTS")

payments() {
    psql -X -At -d "$DB" -c "SELECT count(*) FROM payments"
}

# field NAME LINE: the value of NAME=... in the client's output line
field() {
    local name="$1" line="$2" kv
    for kv in $line; do
        if [[ "$kv" == "$name="* ]]; then
            echo "${kv#*=}"
            return 0
        fi
    done
    die "redis_execute: no $name= in the client's output: $line"
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
        END { if (NR % 2) printf "%.3f\n", a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# preload the replay key sets (a run of the new-key path over each key)
RUN_ID="$(date +%s).$$"
R_PREFIX="r$RUN_ID:"
I_PREFIX="i$RUN_ID:"
log "== redis_execute: storing $KEYS keys for replay"
out="$("${CLIENT[@]}" --mode preload --prefix "$R_PREFIX" --keys "$KEYS")" \
    || die "redis_execute: preload failed: $out"
[[ "$(field created "$out")" == "$KEYS" ]] || die "redis_execute: preload stored $(field created "$out") keys, want $KEYS: $out"
if [[ "$WITH_IDEM" == 1 ]]; then
    out="$("${CLIENT[@]}" --backend idem --mode preload --prefix "$I_PREFIX" --keys "$KEYS")" \
        || die "redis_execute: preload (idem) failed: $out"
    [[ "$(field created "$out")" == "$KEYS" ]] || die "redis_execute: preload (idem) stored $(field created "$out") keys, want $KEYS: $out"
fi

# run_one BACKEND MODE: one timed run, checked; prints the client's line
run_one() {
    local backend="$1" mode="$2" before after out requests created replayed conflicts errors prefix
    prefix="$R_PREFIX"
    [[ "$backend" == idem ]] && prefix="$I_PREFIX"
    if [[ "$SUPER" == t ]]; then
        psql -X -q -d "$DB" -c CHECKPOINT
    fi
    before="$(payments)"
    if ! out="$("${CLIENT[@]}" --backend "$backend" --mode "$mode" --seconds "$SECS" \
            --prefix "$prefix" --keys "$KEYS")"; then
        die "redis_execute: $backend $mode run failed: $out"
    fi
    after="$(payments)"
    requests="$(field requests "$out")"
    created="$(field created "$out")"
    replayed="$(field replayed "$out")"
    conflicts="$(field conflicts "$out")"
    errors="$(field errors "$out")"
    ((requests > 0)) || die "redis_execute: $backend $mode: no request completed: $out"
    [[ "$conflicts" == 0 && "$errors" == 0 ]] \
        || die "redis_execute: $backend $mode: $conflicts conflicts, $errors errors: $out"
    if [[ "$mode" == new ]]; then
        [[ "$created" == "$requests" ]] || die "redis_execute: $backend new: $created of $requests requests created: $out"
        ((after - before == created)) \
            || die "redis_execute: $backend new: payments grew by $((after - before)), want $created: $out"
    else
        [[ "$replayed" == "$requests" ]] || die "redis_execute: $backend replay: $replayed of $requests requests replayed: $out"
        ((after == before)) \
            || die "redis_execute: $backend replay: payments grew by $((after - before)), want 0: $out"
    fi
    echo "$out"
}

declare -A TPS=() MED=() P99=() REQ=()
WORKLOADS=("redis new" "redis replay")
if [[ "$WITH_IDEM" == 1 ]]; then
    WORKLOADS=("redis new" "idem new" "redis replay" "idem replay")
fi
LINES=()
load_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
log "== redis_execute: $RUNS run(s) of ${#WORKLOADS[@]} workloads, $SECS s each, $CLIENTS clients, interleaved"
for ((run = 1; run <= RUNS; run++)); do
    for wl in "${WORKLOADS[@]}"; do
        read -r backend mode <<<"$wl"
        out="$(run_one "$backend" "$mode")"
        log "   run $run/$RUNS $backend $mode: $out"
        LINES+=("run $run: $out")
        TPS[$wl]+="$(field tps "$out") "
        MED[$wl]+="$(field median_ms "$out") "
        P99[$wl]+="$(field p99_ms "$out") "
        REQ[$wl]+="$(field requests "$out") "
    done
done
load_end=$(cut -d ' ' -f 1-3 /proc/loadavg)

# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------
redis_version="$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
redis_persist="$("${R_CLI[@]}" config get appendonly | tail -n 1), appendfsync $("${R_CLI[@]}" config get appendfsync | tail -n 1), save '$("${R_CLI[@]}" config get save | tail -n 1)'"
pg_settings="$(psql -X -At -d "$DB" -c "
    SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY ord)
      FROM unnest(ARRAY['synchronous_commit', 'fsync', 'full_page_writes',
                        'shared_buffers', 'wal_buffers', 'autovacuum'])
           WITH ORDINALITY AS s(name, ord)")"
cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)

echo
echo "== two-system baseline R: Redis SET NX + PostgreSQL INSERT + Redis SET (bench/redis/redis_execute.sh) =="
echo "client:   bench/redis/redis_idem.c (libpq $(pkg-config --modversion libpq 2>/dev/null || echo '?'), hiredis $(pkg-config --modversion hiredis 2>/dev/null || echo '?')), $CLIENTS threads, one PostgreSQL + one Redis connection each,"
echo "          prepared INSERT INTO payments(customer, amount) VALUES (\$1, \$2) RETURNING id, autocommit; key TTL 86400 s"
echo "redis:    $redis_version, $R_WHERE, appendonly $redis_persist"
echo "postgres: $(psql -X -At -d "$DB" -c 'SHOW server_version') over ${PGHOST:-?}; $pg_settings"
echo "method:   $RUNS run(s) x $SECS s of each workload, interleaved ${WORKLOADS[*]}; replay over $KEYS stored keys"
echo "machine:  $(nproc) CPUs ($cpu_model); load avg $load_start at the start, $load_end at the end"
printf '%s\n' "${LINES[@]}" | sed 's/^/          /'
echo
printf '%-22s %12s %12s %12s  %s\n' workload "median TPS" "median ms" "p99 ms" "TPS of each run"
for wl in "${WORKLOADS[@]}"; do
    # shellcheck disable=SC2086
    printf '%-22s %12.1f %12.3f %12.3f  %s\n' "$wl" \
        "$(median ${TPS[$wl]})" "$(median ${MED[$wl]})" "$(median ${P99[$wl]})" "${TPS[$wl]% }"
done
if [[ "$WITH_IDEM" == 1 ]]; then
    echo "(idem: the same client calling idem_execute instead of Redis + INSERT + Redis)"
fi
echo
# shellcheck disable=SC2086
printf 'R-extra p50_new_ms=%.3f p50_replay_ms=%.3f new_requests=%.0f replay_requests=%.0f runs=%d seconds=%d clients=%d\n' \
    "$(median ${MED["redis new"]})" "$(median ${MED["redis replay"]})" \
    "$(median ${REQ["redis new"]})" "$(median ${REQ["redis replay"]})" "$RUNS" "$SECS" "$CLIENTS"
# shellcheck disable=SC2086
printf 'R new_key_tps=%.1f replay_tps=%.1f p99_new_ms=%.3f p99_replay_ms=%.3f\n' \
    "$(median ${TPS["redis new"]})" "$(median ${TPS["redis replay"]})" \
    "$(median ${P99["redis new"]})" "$(median ${P99["redis replay"]})"
