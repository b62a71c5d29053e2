#!/usr/bin/env bash
# SC2119: lib.sh functions take optional arguments.
# shellcheck disable=SC2119
# Run the benchmarks (`make bench`): install what is missing, build and
# install the extension, start a throwaway PostgreSQL cluster with the
# settings below, then run each bench/*.sh in turn against it.
#
# Each bench/NAME.sh is a standalone script that finds the server through
# PGHOST/PGPORT/PGUSER (a superuser), creates its own database, checks what
# it measures and prints its own report; a non-zero exit fails the run.
# (bench/citus.sh starts a Citus cluster of its own instead, through
# scripts/citus-cluster.sh, and skips when Citus cannot be had.)
# Files in bench/ that do not end in .sh are helpers, not benchmarks.
#
# Run as root (the server runs as OS user postgres and is stopped on exit).
#
# Environment:
#   BENCH=NAME[,NAME...]  run only these benchmarks (bench/NAME.sh),
#                         e.g. BENCH=guard_copy; default: all of them
#   BENCH_SHARED_BUFFERS  shared_buffers in MB, e.g. 2048MB [a quarter of RAM]
#   BENCH_HUGE_PAGES=off  no huge pages (see below) [on]
#   BENCH_ROWS, BENCH_RUNS, ...  passed on to the benchmarks (see each one)
#
# The output is also written to bench/results/bench-<date>-<time>.txt.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

# Server settings for every benchmark.  Durability as on a real server
# (fsync and full_page_writes on, overriding lib.sh's test defaults) except
# synchronous_commit = off, which a bulk load does not wait on anyway;
# shared_buffers sized as usual for a dedicated server, a quarter of RAM
# (BENCH_SHARED_BUFFERS overrides it); enough WAL that checkpoints stay out
# of the timed statements (each benchmark takes its own CHECKPOINT between
# runs); autovacuum off so it does not wake up at random in a run.  The
# extension preloaded, as in production: the stats counters count, and the
# purge worker is there for bench/churn.sh, which turns it (and autovacuum)
# on for its own phases with ALTER SYSTEM; purge_interval = 0 keeps it out
# of every other benchmark (a pass over their 10M-key tables would land at
# random in their runs).
mem_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
BENCH_SHARED_BUFFERS="${BENCH_SHARED_BUFFERS:-$((mem_kb / 4 / 1024))MB}"
BENCH_SETTINGS=(
    "# benchmark settings (scripts/bench.sh)"
    "shared_buffers = $BENCH_SHARED_BUFFERS"
    "${IDEM_BENCH_SETTINGS[@]}"
    "shared_preload_libraries = 'idempotency'"
    "idempotency.purge_interval = 0"
)

# Huge pages for shared memory, as a dedicated server with a large
# shared_buffers is set up (the PostgreSQL documentation recommends them):
# with 4 kB pages every new backend takes a page fault on each shared buffer
# it touches first, which on this kind of virtual machine costs more than the
# lookup itself and made a primary-key lookup in a 10M-key table four times
# slower than in a small one.  Needs root (vm.nr_hugepages); the previous
# value is put back on exit.  BENCH_HUGE_PAGES=off leaves them out.
BENCH_HUGE_PAGES="${BENCH_HUGE_PAGES:-on}"
HUGE_PAGES_NOTE="huge_pages off (BENCH_HUGE_PAGES=off)"
if [[ "$BENCH_HUGE_PAGES" != off ]]; then
    sb_mb="${BENCH_SHARED_BUFFERS%MB}"
    hp_kb=$(awk '/^Hugepagesize:/ { print $2 }' /proc/meminfo)
    if [[ "$sb_mb" =~ ^[0-9]+$ && -n "$hp_kb" && $(id -u) -eq 0 && -w /proc/sys/vm/nr_hugepages ]]; then
        # shared_buffers plus the rest of shared memory (wal_buffers, lock
        # tables, ...) and a margin
        hp_want=$(((sb_mb * 1024 * 105 / 100 + 512 * 1024) / hp_kb))
        # pages free for us: another server may hold some already
        hp_avail() { awk '/^HugePages_Free:/ { f = $2 } /^HugePages_Rsvd:/ { r = $2 } END { print f - r }' /proc/meminfo; }
        hp_before=$(cat /proc/sys/vm/nr_hugepages)
        hp_got=$(hp_avail)
        if ((hp_got < hp_want)); then
            echo $((hp_before + hp_want - hp_got)) >/proc/sys/vm/nr_hugepages
            add_cleanup "echo $hp_before >/proc/sys/vm/nr_hugepages"
            hp_got=$(hp_avail)
        fi
        if ((hp_got >= hp_want)); then
            BENCH_SETTINGS+=("huge_pages = on")
            HUGE_PAGES_NOTE="huge_pages on ($hp_want pages of $hp_kb kB wanted, $hp_got free; vm.nr_hugepages was $hp_before)"
        else
            BENCH_SETTINGS+=("huge_pages = try")
            HUGE_PAGES_NOTE="huge_pages try: only $hp_got of $hp_want huge pages free (memory fragmented?)"
        fi
    else
        BENCH_SETTINGS+=("huge_pages = try")
        HUGE_PAGES_NOTE="huge_pages try: vm.nr_hugepages not set (needs root and shared_buffers in MB)"
    fi
fi
export HUGE_PAGES_NOTE

# which benchmarks
declare -a BENCHES=()
if [[ -n "${BENCH:-}" ]]; then
    IFS=',' read -r -a names <<<"$BENCH"
    for name in "${names[@]}"; do
        name="${name%.sh}"
        name="${name#bench/}"
        [[ -f "bench/$name.sh" ]] || die "no benchmark bench/$name.sh (BENCH=$BENCH)"
        BENCHES+=("bench/$name.sh")
    done
else
    for f in bench/*.sh; do
        [[ -f "$f" ]] && BENCHES+=("$f")
    done
fi
((${#BENCHES[@]} > 0)) || die "no benchmarks found in bench/*.sh"

ensure_deps
build_and_install
start_cluster "${BENCH_SETTINGS[@]}"

mkdir -p bench/results
REPORT="bench/results/bench-$(date +%Y%m%d-%H%M%S).txt"
# The output goes to the terminal and the report file.  Wait for tee when
# the script ends, so the report is complete before the cleanups run.
exec 3>&1 4>&2
exec > >(tee -a "$REPORT") 2>&1
add_cleanup "exec 1>&3 2>&4; wait $! 2>/dev/null"

echo "== bench: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$REPO_ROOT" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
echo "== bench: running ${BENCHES[*]}"
echo "== bench: $HUGE_PAGES_NOTE"
failed=0
for b in "${BENCHES[@]}"; do
    echo
    echo "== bench: $b"
    start=$SECONDS
    if bash "$b"; then
        echo "== bench: $b done in $((SECONDS - start)) s"
    else
        echo "== bench: $b FAILED (exit status $?) after $((SECONDS - start)) s"
        failed=$((failed + 1))
    fi
done
echo
echo "== bench: report written to $REPORT"
((failed == 0)) || die "$failed benchmark(s) failed"
