# shellcheck shell=bash
# Shared by bench/redis/redis_execute.sh and bench/redis_fault_demo.sh (sourced,
# after scripts/lib.sh): packages, the client build, a private redis-server.
#
#   redis_bench_init NAME   ensure_deps redis-server libhiredis-dev libpq-dev,
#                           check the PostgreSQL connection (PG* environment),
#                           make a temp dir ($R_TMP, removed on exit) and build
#                           the client into it ($R_CLIENT)
#   redis_start             start redis-server from the temp dir; sets
#                           $R_PID and $R_CLI (redis-cli command array) and
#                           $R_CONN (the client's connection options)
#   redis_stop              `redis-cli shutdown nosave`, then kill of $R_PID
#                           if it is still there (registered with add_cleanup)
#   r_psql DB ARGS...       psql -X -q -v ON_ERROR_STOP=1 -d DB ARGS...
#
# The server: redis-server from Debian, persistence as the fair counterpart
# of PostgreSQL with synchronous_commit = off: append-only file with
# `appendfsync everysec` (a crash loses at most about a second of writes, as
# synchronous_commit = off loses at most 3 x wal_writer_delay), no RDB
# snapshots (--save ''), so no fork in the middle of a run.  It listens on a
# unix socket in the temp dir only (--port 0: no TCP), like the benchmarks'
# PostgreSQL; BENCH_R_TCP=1 makes it listen on 127.0.0.1 at a free port
# instead and the client connect over TCP.

redis_bench_init() {
    local name="$1"
    ensure_deps redis-server libhiredis-dev libpq-dev
    command -v redis-server >/dev/null 2>&1 || die "$name: redis-server not found"
    command -v redis-cli >/dev/null 2>&1 || die "$name: redis-cli not found"
    command -v psql >/dev/null 2>&1 || die "$name: psql not found (run through scripts/bench.sh)"
    psql -X -At -d postgres -c "SELECT 1" >/dev/null 2>&1 \
        || die "$name: cannot connect to PostgreSQL (PGHOST=${PGHOST:-} PGPORT=${PGPORT:-}); run through scripts/bench.sh (make bench)"

    R_TMP="$(mktemp -d /tmp/idem-redis.XXXXXX)"
    add_cleanup "rm -rf '$R_TMP'"
    chmod 700 "$R_TMP"
    R_CLIENT="$R_TMP/bin/redis_idem"
    if ! make -s -C "$REPO_ROOT/bench/redis" BUILD_DIR="$R_TMP/bin" >"$R_TMP/build.log" 2>&1; then
        cat "$R_TMP/build.log" >&2
        die "$name: building bench/redis/redis_idem.c failed"
    fi
    [[ -x "$R_CLIENT" ]] || die "$name: $R_CLIENT was not built"
}

# a TCP port on 127.0.0.1 that nothing listens on (bash's /dev/tcp: a
# refused connection means free); redis_start retries if it is taken after all
_r_free_port() {
    local port i
    for ((i = 0; i < 100; i++)); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 9<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

R_PID=""
# R_CLI, R_CONN and R_WHERE are for the scripts that source this file
# shellcheck disable=SC2034
redis_start() {
    local attempt port
    local -a listen
    add_cleanup redis_stop
    for ((attempt = 1; attempt <= 5; attempt++)); do
        rm -rf "$R_TMP/redis"
        mkdir -p "$R_TMP/redis"
        if [[ "${BENCH_R_TCP:-0}" == 1 ]]; then
            port="$(_r_free_port)" || die "redis_start: no free port on 127.0.0.1"
            listen=(--bind 127.0.0.1 --port "$port")
            R_CLI=(redis-cli -h 127.0.0.1 -p "$port")
            R_CONN=(--redis-host 127.0.0.1 --redis-port "$port")
            R_WHERE="127.0.0.1:$port (TCP)"
        else
            listen=(--port 0 --unixsocket "$R_TMP/redis.sock" --unixsocketperm 700)
            R_CLI=(redis-cli -s "$R_TMP/redis.sock")
            R_CONN=(--redis-socket "$R_TMP/redis.sock")
            R_WHERE="unix socket $R_TMP/redis.sock"
        fi
        # stdin/stdout/stderr away from ours: a pipe held open by the server
        # would keep the caller's tee (scripts/bench.sh) waiting
        redis-server "${listen[@]}" \
            --save '' --appendonly yes --appendfsync everysec \
            --dir "$R_TMP/redis" --logfile "$R_TMP/redis/redis.log" \
            --daemonize no --protected-mode yes \
            </dev/null >>"$R_TMP/redis-stdout.log" 2>&1 &
        R_PID=$!
        local i
        for ((i = 0; i < 100; i++)); do
            if [[ "$("${R_CLI[@]}" ping 2>/dev/null)" == PONG ]]; then
                return 0
            fi
            kill -0 "$R_PID" 2>/dev/null || break
            sleep 0.1
        done
        # did not come up (port taken between the check and the start?)
        redis_stop
        if [[ "${BENCH_R_TCP:-0}" != 1 ]]; then
            break
        fi
    done
    tail -n 20 "$R_TMP/redis/redis.log" >&2 2>/dev/null || true
    die "redis_start: redis-server did not start"
}

redis_stop() {
    [[ -n "$R_PID" ]] || return 0
    local pid="$R_PID" i
    R_PID=""
    timeout 10 "${R_CLI[@]}" shutdown nosave >/dev/null 2>&1 || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        sleep 1
        kill -9 "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

r_psql() {
    local db="$1"
    shift
    psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"
}
