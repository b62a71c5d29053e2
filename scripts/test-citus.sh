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
# shellcheck source=scripts/citus-cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/citus-cluster.sh"
cd "$REPO_ROOT"

if (($# > 0)); then
    TEST_FILES=("$@")
else
    mapfile -t TEST_FILES < <(compgen -G 'test/citus/*.sh' | LC_ALL=C sort)
fi

ensure_deps

if ! ensure_citus citus; then
    echo "citus: 0 passed, 0 failed (SKIPPED: no Citus)"
    exit 0
fi

build_and_install

# --- the cluster ----------------------------------------------------------------
#
# A coordinator and two workers (scripts/citus-cluster.sh).  Each data dir
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

CITUS_NODE_CONF=(
    "shared_buffers = 32MB"
    "# no fsync: the tests crash processes, never the machine.  A commit still"
    "# writes its WAL before it returns (synchronous_commit = on), so an"
    "# immediate stop keeps every commit that was acknowledged or is waiting."
    "fsync = off"
    "full_page_writes = off"
    "synchronous_commit = on"
    "# shard moves by logical replication (the default transfer mode) need it"
    "wal_level = logical"
    "# the tests recover prepared transactions themselves, when they choose"
    "citus.recover_2pc_interval = -1"
    "# shards left behind by a move stay until the suite is over: a test shows"
    "# that a call on the old node is refused while the old shard is still there"
    "citus.defer_shard_delete_interval = -1"
    "include_if_exists = 'pause.conf'"
)
citus_cluster_start coord w1 w2
citus_cluster_register postgres w1 w2
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
