#!/usr/bin/env bash
# A throwaway Citus cluster on one machine, for scripts/test-citus.sh (the
# Citus suite) and bench/citus.sh (the Citus benchmark).  Source it after
# scripts/lib.sh:
#
#     . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#     . "$(dirname "${BASH_SOURCE[0]}")/citus-cluster.sh"
#
# It defines:
#   ensure_citus WHO          0 when Citus is installed in $PG_CONFIG's
#                             PostgreSQL, building it from $CITUS_TARBALL when
#                             it is missing; 1, after saying why and how to
#                             get Citus ("=== WHO: SKIP: ..."), when neither
#                             Citus nor the tarball is there
#   citus_cluster_start NODE...  one PostgreSQL server per node name (coord,
#                             w1, w2: ports in NODE_PORT), each run as OS
#                             user postgres, reachable only on a unix socket
#                             in a private temp dir ($CITUS_DIR, also the
#                             nodes' "host"), citus preloaded and created in
#                             database postgres; postgresql.conf lines in the
#                             array CITUS_NODE_CONF are appended to each node's
#                             own (set it before the call); stopped on exit
#   citus_cluster_register DB WORKER...  in database DB: the coordinator's
#                             host and the workers, from the coordinator
#   node_start / node_stop NODE [fast|immediate] / node_pg_ctl / node_data
#   nsql NODE [psql args...]  psql on NODE (database postgres unless -d),
#                             unaligned, tuples only, ON_ERROR_STOP
#   stop_citus_cluster        stop every node, remove $CITUS_DIR (unless
#                             IDEM_KEEP_TMP=1); idempotent
#
# Environment:
#   CITUS_TARBALL  Citus source to build when Citus is missing
#                  (default ../shared/vendor/citus-13.0.5.tar.gz)

CITUS_VERSION=13.0.5
CITUS_TARBALL="${CITUS_TARBALL:-$REPO_ROOT/../shared/vendor/citus-$CITUS_VERSION.tar.gz}"
# what Citus's configure and build need beyond ensure_deps' base packages
CITUS_BUILD_DEPS=(liblz4-dev libzstd-dev libkrb5-dev libselinux1-dev
                  libxslt1-dev libpam0g-dev libreadline-dev libssl-dev libpq-dev)

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

# ensure_citus WHO: Citus installed (built from the tarball if need be), or
# return 1 after a loud SKIP that says how to get it.
ensure_citus() {
    local who="$1"
    citus_installed && return 0
    if [[ ! -f "$CITUS_TARBALL" ]]; then
        echo "=== $who: SKIP: Citus is not installed in $("$PG_CONFIG" --pkglibdir) and there is no source tarball at $CITUS_TARBALL."
        echo "    To run it, install Citus 13 for PostgreSQL 15 (Debian/Ubuntu: the postgresql-15-citus-13.0"
        echo "    package from https://packagecloud.io/citusdata/community), or set CITUS_TARBALL to a source tarball"
        echo "    of Citus $CITUS_VERSION (git archive --prefix=citus-$CITUS_VERSION/ v$CITUS_VERSION of github.com/citusdata/citus)."
        return 1
    fi
    install_citus
}

# --- the cluster ----------------------------------------------------------------
#
# One temp dir holds the data dirs, their logs and their unix sockets; the
# nodes find each other through the socket dir as "host".

CITUS_DIR=""
declare -A NODE_PORT=([coord]=5432 [w1]=5433 [w2]=5434)
declare -A NODE_UP=()
declare -a CITUS_NODE_CONF=()

node_data() { echo "$CITUS_DIR/$1"; }

node_pg_ctl() {
    local node="$1"
    shift
    as_postgres "$CITUS_DIR" "$PG_BINDIR/pg_ctl" -D "$(node_data "$node")" "$@"
}

node_init() {
    local node="$1" data line
    data="$(node_data "$node")"
    if ! as_postgres "$CITUS_DIR" "$PG_BINDIR/initdb" -D "$data" -A trust -U postgres \
            -E UTF8 --locale=C --no-sync >"$CITUS_DIR/$node.initdb.log" 2>&1; then
        cat "$CITUS_DIR/$node.initdb.log" >&2
        die "citus: initdb of $node failed"
    fi
    {
        echo
        echo "# Citus node $node (scripts/citus-cluster.sh)"
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$CITUS_DIR'"
        echo "port = ${NODE_PORT[$node]}"
        echo "shared_preload_libraries = 'citus'"
        echo "max_prepared_transactions = 50"
        echo "max_connections = 60"
        echo "citus.node_conninfo = 'sslmode=disable'"
        echo "# how a node connects to itself (shard moves and splits do): its socket dir"
        echo "citus.local_hostname = '$CITUS_DIR'"
        echo "log_line_prefix = '%m [%p] %q%a '"
        echo "log_min_messages = warning"
        for line in "${CITUS_NODE_CONF[@]}"; do
            echo "$line"
        done
    } >>"$data/postgresql.conf"
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

# psql on a node, unaligned and tuples only, stopping at the first error
nsql() {
    local node="$1"
    shift
    psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$CITUS_DIR" -p "${NODE_PORT[$node]}" \
        -U postgres -d postgres "$@"
}

# citus_cluster_start NODE...: init and start the nodes, CREATE EXTENSION
# citus in database postgres on each
citus_cluster_start() {
    local node
    [[ -z "$CITUS_DIR" ]] || die "citus_cluster_start: a cluster is already running in $CITUS_DIR"
    id postgres >/dev/null 2>&1 || die "citus_cluster_start: no OS user postgres"
    CITUS_DIR="$(mktemp -d /tmp/idem-citus.XXXXXX)"
    chown postgres:postgres "$CITUS_DIR"
    chmod 700 "$CITUS_DIR"
    export CITUS_DIR
    add_cleanup stop_citus_cluster
    for node in "$@"; do
        node_init "$node"
        node_start "$node"
    done
    for node in "$@"; do
        nsql "$node" -c 'SET client_min_messages = warning' -c 'CREATE EXTENSION citus'
    done
}

# citus_cluster_register DB WORKER...: from the coordinator's database DB
# (citus created in it on every node given), its own host and the workers
citus_cluster_register() {
    local db="$1" node
    shift
    {
        echo "SELECT citus_set_coordinator_host('$CITUS_DIR', ${NODE_PORT[coord]});"
        for node in "$@"; do
            echo "SELECT citus_add_node('$CITUS_DIR', ${NODE_PORT[$node]});"
        done
    } | nsql coord -d "$db" >/dev/null
}
