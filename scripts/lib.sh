#!/usr/bin/env bash
# Shared helpers for scripts/demo.sh, scripts/test.sh and friends.
#
# Source it from a bash script that runs `set -euo pipefail`:
#
#     . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# It defines:
#   ensure_deps [pkg...]     install missing Debian packages (apt, as root)
#   build_and_install        make && make install in the repo root
#   start_cluster [line...]  throwaway PostgreSQL cluster, unix socket only
#                            (also 127.0.0.1 with IDEM_PG_TCP=1, for clients
#                            without unix sockets), extra postgresql.conf
#                            lines as arguments; exports PGHOST PGPORT PGUSER
#                            PGDATABASE
#   free_tcp_port            print a TCP port free on 127.0.0.1
#   stop_cluster             stop it (idempotent; also run on exit)
#   as_postgres DIR CMD...   run CMD as OS user postgres in DIR, passing the
#                            PG*/PATH environment through
#   add_cleanup 'CMD'        run CMD on exit (last added runs first); never
#                            set your own EXIT trap, it would replace this one
#   fresh_database NAME      (re)create database NAME on the server in PG*,
#                            dropped again on exit (the benchmarks use it)
#   log / die                messages on stderr
#   IDEM_BENCH_SETTINGS      postgresql.conf lines of every benchmark server
#                            (scripts/bench.sh's, bench/citus.sh's nodes)
#
# Variables it sets: REPO_ROOT, PG_CONFIG, PG_BINDIR, and after start_cluster
# IDEM_PG_DIR (temp dir, also the socket dir), IDEM_PG_DATA, IDEM_PG_LOG.
# Set IDEM_KEEP_TMP=1 to keep temp dirs (data dir, test copy) for debugging.

if [[ -n "${_IDEM_LIB_LOADED:-}" ]]; then
    return 0
fi
_IDEM_LIB_LOADED=1

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

# Called from `make test` / `make demo`: the makes we run ourselves should
# behave like top-level ones (no "Entering directory", no inherited -n/-k/-j
# jobserver).  Variables given on make's command line stay in the environment.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES

log() {
    printf '%s\n' "$*" >&2
}

die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------
# cleanups: a list of commands run on EXIT, last registered first.
# INT/TERM/HUP turn into an exit so the EXIT trap runs.
# ---------------------------------------------------------------------------
declare -a _IDEM_CLEANUPS=()

_idem_run_cleanups() {
    local rc=$? i
    set +e
    for ((i = ${#_IDEM_CLEANUPS[@]} - 1; i >= 0; i--)); do
        eval "${_IDEM_CLEANUPS[i]}"
    done
    _IDEM_CLEANUPS=()
    return "$rc"
}

add_cleanup() {
    _IDEM_CLEANUPS+=("$1")
}

trap _idem_run_cleanups EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# PostgreSQL location
# ---------------------------------------------------------------------------
_idem_set_pg_paths() {
    PG_CONFIG="${PG_CONFIG:-pg_config}"
    export PG_CONFIG
    if ! command -v "$PG_CONFIG" >/dev/null 2>&1; then
        return 1
    fi
    PG_BINDIR="$("$PG_CONFIG" --bindir)"
    export PG_BINDIR
    case ":$PATH:" in
        ":$PG_BINDIR:"*) ;;
        *) PATH="$PG_BINDIR:$PATH" ;;
    esac
    export PATH
}

# If pg_config is already there (the usual case), set the paths right away;
# otherwise ensure_deps does it after installing postgresql-server-dev-15.
_idem_set_pg_paths || true

# ---------------------------------------------------------------------------
# ensure_deps [extra packages...]
# ---------------------------------------------------------------------------
IDEM_BASE_PACKAGES=(
    make
    gcc
    perl
    postgresql-15
    postgresql-client-15
    postgresql-server-dev-15
    postgresql-15-pgtap
    libtap-parser-sourcehandler-pgtap-perl
    libipc-run-perl
)

_idem_pkg_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

ensure_deps() {
    local pkg out
    local -a missing=()
    for pkg in "${IDEM_BASE_PACKAGES[@]}" "$@"; do
        if ! _idem_pkg_installed "$pkg"; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} > 0)); then
        log "ensure_deps: installing ${missing[*]}"
        if [[ $(id -u) -ne 0 ]]; then
            die "ensure_deps: missing packages (${missing[*]}); run as root or install them"
        fi
        out="$(mktemp /tmp/idem-apt.XXXXXX)"
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-get update -qq >"$out" 2>&1; then
            cat "$out" >&2
            rm -f "$out"
            die "ensure_deps: apt-get update failed"
        fi
        if ! apt-get install -y -qq --no-install-recommends \
                -o Dpkg::Use-Pty=0 "${missing[@]}" >"$out" 2>&1; then
            cat "$out" >&2
            rm -f "$out"
            die "ensure_deps: apt-get install ${missing[*]} failed"
        fi
        rm -f "$out"
        for pkg in "${missing[@]}"; do
            _idem_pkg_installed "$pkg" || die "ensure_deps: $pkg is still not installed"
        done
    fi
    command -v make >/dev/null 2>&1 || die "ensure_deps: make not found"
    command -v gcc >/dev/null 2>&1 || die "ensure_deps: gcc not found"
    _idem_set_pg_paths || die "ensure_deps: ${PG_CONFIG:-pg_config} not found"
}

# ---------------------------------------------------------------------------
# build_and_install: make && make install in the repo root
# ---------------------------------------------------------------------------
build_and_install() {
    _idem_set_pg_paths || die "build_and_install: ${PG_CONFIG:-pg_config} not found (run ensure_deps)"
    log "== build: make -C $REPO_ROOT (PG_CONFIG=$PG_CONFIG, $("$PG_CONFIG" --version))"
    if ! make -C "$REPO_ROOT" -j "$(nproc 2>/dev/null || echo 2)" PG_CONFIG="$PG_CONFIG"; then
        die "build failed: make in $REPO_ROOT"
    fi
    log "== install: make install"
    if ! make -C "$REPO_ROOT" install PG_CONFIG="$PG_CONFIG" >/dev/null; then
        # run again with output visible so the reason is in the log
        make -C "$REPO_ROOT" install PG_CONFIG="$PG_CONFIG" >&2 || true
        die "install failed: make install in $REPO_ROOT"
    fi
}

# ---------------------------------------------------------------------------
# as_postgres DIR CMD [ARGS...]
# Run CMD as OS user postgres with working directory DIR, passing through the
# connection environment and PATH (runuser alone would not keep cwd, and PATH
# handling differs between su implementations).
# ---------------------------------------------------------------------------
as_postgres() {
    local dir="$1"
    shift
    local -a envs=("PATH=$PATH" "LANG=C.UTF-8" "TMPDIR=/tmp")
    local v
    for v in PGHOST PGPORT PGUSER PGDATABASE PG_CONFIG PG_BINDIR \
             PG_TEST_EXTRA PG_TEST_TIMEOUT_DEFAULT IDEM_PG_DIR \
             IDEM_FUZZ_SEED IDEM_FUZZ_ITERATIONS IDEM_FUZZ_MAX_SECONDS; do
        if [[ -n "${!v:-}" ]]; then
            envs+=("$v=${!v}")
        fi
    done
    if [[ "$(id -un)" == postgres ]]; then
        env -C "$dir" "${envs[@]}" "$@"
    elif [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- env -C "$dir" "${envs[@]}" "$@"
    else
        die "as_postgres: run as root (or as postgres)"
    fi
}

# free_tcp_port: a port nothing listens on at 127.0.0.1 now (the kernel's pick)
free_tcp_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------------------
# start_cluster [extra postgresql.conf lines...]
# ---------------------------------------------------------------------------
IDEM_PG_DIR=""
IDEM_PG_DATA=""
IDEM_PG_LOG=""
_IDEM_PG_RUNNING=0

start_cluster() {
    [[ -z "$IDEM_PG_DIR" ]] || die "start_cluster: a cluster is already running in $IDEM_PG_DIR"
    _idem_set_pg_paths || die "start_cluster: ${PG_CONFIG:-pg_config} not found (run ensure_deps)"
    id postgres >/dev/null 2>&1 || die "start_cluster: no OS user postgres"
    local port=5432 listen=""
    if [[ "${IDEM_PG_TCP:-0}" == 1 ]]; then
        port="$(free_tcp_port)"
        listen=127.0.0.1
    fi

    # Short path in /tmp: it is the unix socket dir (socket paths max ~107 chars)
    # and user postgres must be able to reach it.
    IDEM_PG_DIR="$(mktemp -d /tmp/idem-pg.XXXXXX)"
    IDEM_PG_DATA="$IDEM_PG_DIR/data"
    IDEM_PG_LOG="$IDEM_PG_DIR/postgres.log"
    export IDEM_PG_DIR IDEM_PG_DATA IDEM_PG_LOG
    add_cleanup stop_cluster
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres:postgres "$IDEM_PG_DIR"
    fi
    chmod 700 "$IDEM_PG_DIR"

    if ! as_postgres "$IDEM_PG_DIR" "$PG_BINDIR/initdb" -D "$IDEM_PG_DATA" \
            -A trust -U postgres -E UTF8 --locale=C --no-sync \
            >"$IDEM_PG_DIR/initdb.log" 2>&1; then
        cat "$IDEM_PG_DIR/initdb.log" >&2
        die "start_cluster: initdb failed"
    fi

    {
        echo ""
        echo "# throwaway cluster for tests and the demo (scripts/lib.sh)"
        echo "listen_addresses = '$listen'"
        echo "unix_socket_directories = '$IDEM_PG_DIR'"
        echo "port = $port"
        echo "fsync = off"
        echo "synchronous_commit = off"
        echo "full_page_writes = off"
        echo "max_prepared_transactions = 10"
        echo "log_line_prefix = '%m [%p] %q%a '"
        local line
        for line in "$@"; do
            echo "$line"
        done
    } >>"$IDEM_PG_DATA/postgresql.conf"

    if ! as_postgres "$IDEM_PG_DIR" "$PG_BINDIR/pg_ctl" -D "$IDEM_PG_DATA" \
            -l "$IDEM_PG_LOG" -w -t 60 start >/dev/null; then
        tail -n 50 "$IDEM_PG_LOG" >&2 || true
        die "start_cluster: pg_ctl start failed (log: $IDEM_PG_LOG)"
    fi
    _IDEM_PG_RUNNING=1

    unset PGHOSTADDR PGSERVICE PGSERVICEFILE PGPASSWORD PGOPTIONS PGSSLMODE
    export PGHOST="$IDEM_PG_DIR" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
    log "== cluster: $("$PG_BINDIR/postgres" -V) running as OS user postgres, socket dir $PGHOST${listen:+ and $listen:$port}, log $IDEM_PG_LOG"
}

# fresh_database NAME: an empty database NAME, dropped again on exit.
fresh_database() {
    local db="$1"
    psql -X -q -v ON_ERROR_STOP=1 -d postgres <<SQL
SET client_min_messages = warning;
DROP DATABASE IF EXISTS $db;
CREATE DATABASE $db;
SQL
    add_cleanup "psql -X -q -d postgres -c 'DROP DATABASE IF EXISTS $db' >/dev/null 2>&1"
}

# stop_cluster: stop the server (fast, then immediate) and remove its dir.
# Idempotent and quiet, so it can run from the EXIT trap after a script's
# last line of output.
stop_cluster() {
    local keep=0
    if [[ "$_IDEM_PG_RUNNING" == 1 ]]; then
        if ! as_postgres "$IDEM_PG_DIR" "$PG_BINDIR/pg_ctl" -D "$IDEM_PG_DATA" \
                -m fast -w -t 60 stop >/dev/null 2>&1; then
            if ! as_postgres "$IDEM_PG_DIR" "$PG_BINDIR/pg_ctl" -D "$IDEM_PG_DATA" \
                    -m immediate -w -t 60 stop >/dev/null 2>&1; then
                log "stop_cluster: could not stop the server in $IDEM_PG_DATA; leaving $IDEM_PG_DIR"
                keep=1
            fi
        fi
        _IDEM_PG_RUNNING=0
    fi
    if [[ -n "$IDEM_PG_DIR" ]]; then
        if [[ $keep == 1 ]]; then
            :
        elif [[ "${IDEM_KEEP_TMP:-0}" == 1 ]]; then
            log "stop_cluster: keeping $IDEM_PG_DIR (IDEM_KEEP_TMP=1)"
        else
            rm -rf "$IDEM_PG_DIR"
        fi
        IDEM_PG_DIR=""
    fi
}

# Server settings of every benchmark (scripts/bench.sh explains them; the
# Citus nodes of bench/citus.sh get them too): durable writes except
# synchronous_commit, checkpoints kept out of the runs, no autovacuum.
# shellcheck disable=SC2034  # used by the scripts that source this one
IDEM_BENCH_SETTINGS=(
    "synchronous_commit = off"
    "fsync = on"
    "full_page_writes = on"
    "max_wal_size = 4GB"
    "checkpoint_timeout = 30min"
    "wal_buffers = 64MB"
    "autovacuum = off"
)
