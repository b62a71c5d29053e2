#!/usr/bin/env bash
# `make test-citus`: the Citus suite.  Builds and installs the extension,
# installs Citus if it is missing (from the vendored source tarball), starts
# a Citus cluster of three servers (a coordinator and two workers, each its
# own PostgreSQL server run as OS user postgres, reachable only on a unix
# socket in a private temp dir) and runs test/citus/*.sh against it.
#
# When Citus is neither installed nor available as the tarball, it says how
# to get it and exits 0 with a SKIP line: Citus is a test dependency only.
#
# The last line is `citus: N passed, M failed`; the exit status is non-zero
# when a check failed.
#
# Run as root.  Environment:
#   CITUS_TARBALL    Citus source to build when Citus is missing
#                    (default ../shared/vendor/citus-13.0.5.tar.gz)
#   IDEM_KEEP_TMP=1  keep the cluster's dir (data dirs, logs) afterwards
# Usage: scripts/test-citus.sh [test/citus/FILE.sh...]   (default: all)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

CITUS_VERSION=13.0.5
CITUS_TARBALL="${CITUS_TARBALL:-$REPO_ROOT/../shared/vendor/citus-$CITUS_VERSION.tar.gz}"
# what Citus's configure and build need beyond ensure_deps' base packages
CITUS_BUILD_DEPS=(liblz4-dev libzstd-dev libkrb5-dev libselinux1-dev
                  libxslt1-dev libpam0g-dev libreadline-dev libssl-dev libpq-dev)

if (($# > 0)); then
    TEST_FILES=("$@")
else
    mapfile -t TEST_FILES < <(compgen -G 'test/citus/*.sh' | LC_ALL=C sort)
fi

ensure_deps

citus_installed() {
    [[ -f "$("$PG_CONFIG" --pkglibdir)/citus.so" &&
       -f "$("$PG_CONFIG" --sharedir)/extension/citus.control" ]]
}

# Build Citus from the tarball into the PostgreSQL of $PG_CONFIG, without the
# LLVM bitcode (it takes minutes and the tests do not use JIT).
install_citus() {
    local build
    log "== citus: not installed in $("$PG_CONFIG" --pkglibdir); building $CITUS_TARBALL (about 2 minutes)"
    ensure_deps "${CITUS_BUILD_DEPS[@]}"
    build="$(mktemp -d /tmp/idem-citus-build.XXXXXX)"
    add_cleanup "rm -rf '$build'"
    tar -C "$build" -xzf "$CITUS_TARBALL"
    (
        cd "$build"/citus-*/
        ./configure --without-libcurl PG_CONFIG="$PG_CONFIG" >"$build/configure.log" 2>&1 ||
            { tail -n 30 "$build/configure.log" >&2; exit 1; }
        make -j "$(nproc 2>/dev/null || echo 2)" with_llvm=no >"$build/make.log" 2>&1 ||
            { tail -n 30 "$build/make.log" >&2; exit 1; }
        make install with_llvm=no >"$build/install.log" 2>&1 ||
            { tail -n 30 "$build/install.log" >&2; exit 1; }
    ) || die "citus: building $CITUS_TARBALL failed"
    citus_installed || die "citus: installed, but citus.so or citus.control is still missing"
}

if ! citus_installed; then
    if [[ ! -f "$CITUS_TARBALL" ]]; then
        echo "=== citus: SKIP: Citus is not installed in $("$PG_CONFIG" --pkglibdir) and there is no source tarball at $CITUS_TARBALL."
        echo "    To run this suite, install Citus 13 for PostgreSQL 15 (Debian/Ubuntu: the postgresql-15-citus-13.0"
        echo "    package from https://packagecloud.io/citusdata/community), or set CITUS_TARBALL to a source tarball"
        echo "    of Citus $CITUS_VERSION (git archive --prefix=citus-$CITUS_VERSION/ v$CITUS_VERSION of github.com/citusdata/citus)."
        echo "citus: 0 passed, 0 failed (SKIPPED: no Citus)"
        exit 0
    fi
    install_citus
fi

build_and_install

# --- the cluster ----------------------------------------------------------------
#
# One temp dir holds the three data dirs, their logs and their unix sockets;
# the nodes find each other through the socket dir as "host".  Each data dir
# includes pause.conf if it exists: the crash tests write one that names a
# synchronous standby that never comes, so that a commit (or PREPARE) on that
# node becomes durable and then waits; the test stops the node right there.

# a test file that stops on an error still ends with the summary line
SUMMARY_DONE=0
summary_if_aborted() {
    if [[ "$SUMMARY_DONE" == 0 && -n "${PASSED:-}" ]]; then
        echo
        echo "citus: $PASSED passed, $((FAILED + 1)) failed (aborted: a step of the suite failed, see above)"
    fi
}
add_cleanup summary_if_aborted

CITUS_DIR="$(mktemp -d /tmp/idem-citus.XXXXXX)"
chown postgres:postgres "$CITUS_DIR"
chmod 700 "$CITUS_DIR"
export CITUS_DIR
declare -A NODE_PORT=([coord]=5432 [w1]=5433 [w2]=5434)
declare -A NODE_UP=()

node_data() { echo "$CITUS_DIR/$1"; }

node_pg_ctl() {
    local node="$1"
    shift
    as_postgres "$CITUS_DIR" "$PG_BINDIR/pg_ctl" -D "$(node_data "$node")" "$@"
}

node_init() {
    local node="$1" data
    data="$(node_data "$node")"
    if ! as_postgres "$CITUS_DIR" "$PG_BINDIR/initdb" -D "$data" -A trust -U postgres \
            -E UTF8 --locale=C --no-sync >"$CITUS_DIR/$node.initdb.log" 2>&1; then
        cat "$CITUS_DIR/$node.initdb.log" >&2
        die "citus: initdb of $node failed"
    fi
    cat >>"$data/postgresql.conf" <<CONF

# Citus test node $node (scripts/test-citus.sh)
listen_addresses = ''
unix_socket_directories = '$CITUS_DIR'
port = ${NODE_PORT[$node]}
shared_preload_libraries = 'citus'
max_prepared_transactions = 50
max_connections = 60
shared_buffers = 32MB
# no fsync: the tests crash processes, never the machine.  A commit still
# writes its WAL before it returns (synchronous_commit = on), so an
# immediate stop keeps every commit that was acknowledged or is waiting.
fsync = off
full_page_writes = off
synchronous_commit = on
citus.node_conninfo = 'sslmode=disable'
# how a node connects to itself (shard moves and splits do): its socket dir
citus.local_hostname = '$CITUS_DIR'
# shard moves by logical replication (the default transfer mode) need it
wal_level = logical
# the tests recover prepared transactions themselves, when they choose
citus.recover_2pc_interval = -1
log_line_prefix = '%m [%p] %q%a '
log_min_messages = warning
include_if_exists = 'pause.conf'
CONF
}

node_start() {
    local node="$1"
    if ! node_pg_ctl "$node" -l "$CITUS_DIR/$node.log" -w -t 60 start >/dev/null; then
        tail -n 30 "$CITUS_DIR/$node.log" >&2 || true
        die "citus: starting $node failed"
    fi
    NODE_UP[$node]=1
}

# node_stop NODE [fast|immediate]
node_stop() {
    node_pg_ctl "$1" -m "${2:-fast}" -w -t 60 stop >/dev/null
    NODE_UP[$1]=0
}

stop_citus_cluster() {
    local node
    for node in "${!NODE_UP[@]}"; do
        if [[ "${NODE_UP[$node]}" == 1 ]]; then
            node_stop "$node" fast 2>/dev/null || node_stop "$node" immediate 2>/dev/null || true
        fi
    done
    if [[ -n "${CITUS_DIR:-}" && -d "$CITUS_DIR" ]]; then
        if [[ "${IDEM_KEEP_TMP:-0}" == 1 ]]; then
            log "keeping $CITUS_DIR (IDEM_KEEP_TMP=1)"
        else
            rm -rf "$CITUS_DIR"
        fi
    fi
    CITUS_DIR=""
}
add_cleanup stop_citus_cluster

# psql on a node, unaligned and tuples only, stopping at the first error
nsql() {
    local node="$1"
    shift
    psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$CITUS_DIR" -p "${NODE_PORT[$node]}" \
        -U postgres -d postgres "$@"
}

for node in coord w1 w2; do
    node_init "$node"
    node_start "$node"
done
for node in coord w1 w2; do
    nsql "$node" -c 'SET client_min_messages = warning' -c 'CREATE EXTENSION citus'
done
nsql coord <<SQL >/dev/null
SELECT citus_set_coordinator_host('$CITUS_DIR', ${NODE_PORT[coord]});
SELECT citus_add_node('$CITUS_DIR', ${NODE_PORT[w1]});
SELECT citus_add_node('$CITUS_DIR', ${NODE_PORT[w2]});
SQL
log "== citus: $(nsql coord -c 'SELECT citus_version()' | cut -d, -f1) cluster in $CITUS_DIR:" \
    "coordinator :${NODE_PORT[coord]}, workers :${NODE_PORT[w1]} :${NODE_PORT[w2]}"

# --- assertions ------------------------------------------------------------------

PASSED=0
FAILED=0
declare -a FAILED_NAMES=()

pass() {
    PASSED=$((PASSED + 1))
    echo "ok $((PASSED + FAILED)) - $1"
}

fail() {
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("$1")
    echo "not ok $((PASSED + FAILED)) - $1"
    shift
    local line
    for line in "$@"; do
        echo "#   $line"
    done
}

# is NAME EXPECTED ACTUAL
is() {
    if [[ "$2" == "$3" ]]; then
        pass "$1"
    else
        fail "$1" "expected: $2" "got:      $3"
    fi
}

# like NAME PATTERN ACTUAL   (bash glob)
like() {
    # shellcheck disable=SC2053
    if [[ "$3" == $2 ]]; then
        pass "$1"
    else
        fail "$1" "expected to match: $2" "got: $3"
    fi
}

# --- run the test files ------------------------------------------------------------

t0=$EPOCHREALTIME
for f in "${TEST_FILES[@]}"; do
    echo
    echo "=== $f"
    # shellcheck disable=SC1090
    . "$f"
done
secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')

if ((FAILED > 0)); then
    echo
    echo "=== failed checks:"
    printf '  %s\n' "${FAILED_NAMES[@]}"
    for node in coord w1 w2; do
        echo "----- $node server log, last 30 lines -----"
        tail -n 30 "$CITUS_DIR/$node.log" || true
    done
    echo "----- end of server logs -----"
fi
stop_citus_cluster
SUMMARY_DONE=1
echo
echo "citus: $PASSED passed, $FAILED failed (${secs}s)"
((FAILED == 0))
