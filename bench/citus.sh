#!/usr/bin/env bash
# Benchmark of the extension on Citus (issue 11, part 4): a payment written
# to a distributed table, with and without a key, through the coordinator
# and delegated to the worker that owns the customer's shard.
#
# Variants, pgbench -M prepared, a random customer (of BENCH_CUSTOMERS) per
# transaction, so each payment goes to one shard on one worker:
#   P   INSERT INTO payments (customer, amount) VALUES ($1, $2) RETURNING id
#       through the coordinator: the plain distributed INSERT, no key
#   C   idem_execute(fresh key, 'INSERT INTO payments ...', customer, amount)
#       through the coordinator: the key stored on the coordinator, the
#       payment on a worker, two-phase commit forced by the extension
#   L   pay(customer, fresh key, amount): a PL/pgSQL wrapper calling
#       idem_execute_colocated('payments', customer, key, 'INSERT ...',
#       customer, amount), after idem_colocate_keys('payments'), distributed
#       with create_distributed_function(..., 'customer', colocate_with =>
#       'payments', force_delegation => true) and called through the
#       coordinator: it runs on the worker that owns the shard, key and
#       payment in one local transaction (bench/citus/setup_colocated.sql)
#   Pd  pay_plain(customer, amount): the same kind of wrapper doing the plain
#       INSERT with no key, delegated the same way: what delegation itself
#       costs (bench/citus/setup.sql)
#   Lw  idem_execute_colocated(...) sent straight to worker w1 by a client
#       that knows where its tenants' shards are, for customers whose shard
#       is on w1: the colocated path with no coordinator and no delegation
#       (bench/citus/lw.pgbench; two workers only)
# All of them with two workers; P and L again with one worker (Pd instead of
# L when the colocated API is not there), for the scaling.  The two layouts
# are two databases of one Citus cluster (a coordinator and two workers,
# each its own server, started by scripts/citus-cluster.sh as for `make
# test-citus`): idem_bench_citus2 has both workers, idem_bench_citus1 only
# the first, so every variant of both layouts runs in the same rounds.
#
# Method as in bench/execute.sh: BENCH_RUNS rounds; a round runs every
# variant once for BENCH_SECONDS (pgbench -T), the order reversed every other
# round; a CHECKPOINT on every node before each run.  The table shows the
# median TPS over the rounds; a ratio is the median of the per-round ratios
# (both variants ran in the same round), with each round's ratio beside it.
# Every run is checked: payments made == transactions, keys made ==
# transactions (C, L), and the delegated wrappers (Pd, L) ran on the workers
# only (pg_stat_user_functions on each node).  The CPU each node used during
# each run is read from /proc, to show what limits the scaling.
#
# Target (issue 11): L >= 0.8 x P (two workers).  Scaling: the ratio of TPS
# with two workers to TPS with one, reported (on a machine whose cores the
# coordinator, both workers and pgbench share it cannot reach 2).
#
# Needs Citus: installed when missing from the vendored tarball as `make
# test-citus` does (CITUS_TARBALL), otherwise the benchmark says how to get
# it and skips (exit 0).  Needs the extension installed in $PG_CONFIG's
# PostgreSQL: run it through scripts/bench.sh (`BENCH=citus make bench`), as
# root (the nodes run as OS user postgres).
#
# Environment (defaults in brackets; a smoke run: BENCH_SECONDS=2 BENCH_RUNS=1):
#   BENCH_SECONDS               seconds per pgbench run [10]
#   BENCH_RUNS                  rounds [5]
#   BENCH_CLIENTS               pgbench clients [4]
#   BENCH_JOBS                  pgbench threads [2]
#   BENCH_CUSTOMERS             customers to pick from [100000]
#   BENCH_CITUS_SHARED_BUFFERS  shared_buffers of each node [512MB]
#   BENCH_CITUS_SYNC_COMMIT     synchronous_commit of each node [off, as
#                               scripts/bench.sh; on: every commit waits for
#                               its flush, as PREPARE and COMMIT PREPARED
#                               always do]
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
# shellcheck source=scripts/citus-cluster.sh
. "$REPO_ROOT/scripts/citus-cluster.sh"

SECS="${BENCH_SECONDS:-10}"
RUNS="${BENCH_RUNS:-5}"
CLIENTS="${BENCH_CLIENTS:-4}"
JOBS="${BENCH_JOBS:-2}"
NCUST="${BENCH_CUSTOMERS:-100000}"
NODE_SB="${BENCH_CITUS_SHARED_BUFFERS:-512MB}"
SYNC_COMMIT="${BENCH_CITUS_SYNC_COMMIT:-off}"
[[ "$SYNC_COMMIT" =~ ^(on|off|local|remote_write|remote_apply)$ ]] \
    || die "BENCH_CITUS_SYNC_COMMIT must be a synchronous_commit value, not '$SYNC_COMMIT'"
for v in SECS RUNS CLIENTS JOBS NCUST; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done
((JOBS <= CLIENTS)) || die "BENCH_JOBS ($JOBS) must not exceed BENCH_CLIENTS ($CLIENTS)"
HERE="$REPO_ROOT/bench/citus"
DB2=idem_bench_citus2
DB1=idem_bench_citus1

ensure_deps
if ! ensure_citus "citus bench"; then
    echo "=== citus bench: SKIPPED (no Citus): nothing measured"
    exit 0
fi
[[ -f "$("$PG_CONFIG" --sharedir)/extension/idempotency.control" ]] \
    || die "the extension is not installed in $("$PG_CONFIG" --sharedir); run through scripts/bench.sh (BENCH=citus make bench)"

BENCH_TMP="$(mktemp -d /tmp/idem-bench-citus.XXXXXX)"
add_cleanup "rm -rf '$BENCH_TMP'"
RESULTS="$BENCH_TMP/results.tsv"
: >"$RESULTS"

# ---------------------------------------------------------------------------
# the cluster: settings as scripts/bench.sh gives its server (durable writes,
# synchronous_commit = off unless BENCH_CITUS_SYNC_COMMIT says otherwise,
# checkpoints out of the runs, no autovacuum), the extension preloaded after
# citus, function call counts for the delegation check
# ---------------------------------------------------------------------------
CITUS_NODE_CONF=(
    "# benchmark settings (bench/citus.sh)"
    "shared_preload_libraries = 'citus,idempotency'"
    "idempotency.purge_interval = 0"
    "shared_buffers = $NODE_SB"
    "${IDEM_BENCH_SETTINGS[@]}"
    "synchronous_commit = $SYNC_COMMIT"
    "max_connections = 100"
    "track_functions = all"
)
log "== citus bench: starting a coordinator and two workers"
citus_cluster_start coord w1 w2
for node in coord w1 w2; do
    nsql "$node" -c 'SET client_min_messages = warning' -c "CREATE DATABASE $DB2"
    nsql "$node" -d "$DB2" -c 'SET client_min_messages = warning' -c 'CREATE EXTENSION citus'
done
for node in coord w1; do
    nsql "$node" -c 'SET client_min_messages = warning' -c "CREATE DATABASE $DB1"
    nsql "$node" -d "$DB1" -c 'SET client_min_messages = warning' -c 'CREATE EXTENSION citus'
done
citus_cluster_register "$DB2" w1 w2
citus_cluster_register "$DB1" w1
CITUS_V=$(nsql coord -c 'SELECT citus_version()' | cut -d, -f1)
log "== citus bench: $CITUS_V in $CITUS_DIR; $DB2: workers w1 w2, $DB1: worker w1"

# csql DB [psql args...]: psql on the coordinator's database DB
csql() {
    local db="$1"
    shift
    nsql coord -d "$db" "$@"
}

# L needs the colocated API (idem_colocate_keys, idem_execute_colocated):
# without it L is left out, said so in the report, and Pd stands in for the
# one-worker scaling.
L_OK=0
for db in "$DB2" "$DB1"; do
    csql "$db" -f "$HERE/setup.sql" >/dev/null
    if [[ "$(csql "$db" -c "SELECT count(DISTINCT proname) FROM pg_proc
                              WHERE proname IN ('idem_colocate_keys', 'idem_execute_colocated')")" == 2 ]]; then
        csql "$db" -f "$HERE/setup_colocated.sql" >/dev/null
        L_OK=1
    fi
done
NW1=0
if ((L_OK)); then
    # Lw's customers: those whose shard is on w1, numbered 1..NW1 in a table
    # local to w1
    nsql w1 -d "$DB2" -c 'CREATE TABLE bench_w1_customers (i int PRIMARY KEY, customer text NOT NULL)' >/dev/null
    csql "$DB2" -c "COPY (SELECT row_number() OVER (ORDER BY c), c::text
                            FROM generate_series(1, $NCUST) c
                            JOIN pg_dist_shard_placement p
                              ON p.shardid = get_shard_id_for_distribution_column('payments', c::text)
                           WHERE p.nodeport = ${NODE_PORT[w1]}) TO STDOUT" |
        nsql w1 -d "$DB2" -c 'COPY bench_w1_customers FROM STDIN' >/dev/null
    NW1=$(nsql w1 -d "$DB2" -c 'SELECT count(*) FROM bench_w1_customers')
    ((NW1 > 0)) || die "no customer of $NCUST has its shard on w1"
    VARIANTS=(P2 C2 Pd2 L2 Lw2 P1 L1)
    L_NOTE="(wrappers in PL/pgSQL: bench/citus/setup.sql, bench/citus/setup_colocated.sql)"
else
    VARIANTS=(P2 C2 Pd2 P1 Pd1)
    L_NOTE="L: NOT AVAILABLE: this build has no idem_colocate_keys / idem_execute_colocated (the colocated API); Pd stands in for the 1-worker scaling"
    log "== citus bench: $L_NOTE"
fi

# ---------------------------------------------------------------------------
# each variant does what it claims before anything is timed
# ---------------------------------------------------------------------------
log "== citus bench: checking the variants"
for db in "$DB2" "$DB1"; do
    # shellcheck disable=SC2016  # $1, $2 are the statement's parameters
    out=$(csql "$db" -v l="$L_OK" <<'SQL'
SET client_min_messages = warning;
SELECT count(*) AS p0 FROM payments \gset
INSERT INTO payments (customer, amount) VALUES ('chk', 1) RETURNING id AS p1 \gset
SELECT 'P ' || (:p1 > 0);
SELECT idem_execute('chk-c', 'INSERT INTO payments (customer, amount) VALUES ($1, $2) RETURNING id',
                    'chk'::text, 1::numeric) AS c1 \gset
SELECT idem_execute('chk-c', 'INSERT INTO payments (customer, amount) VALUES ($1, $2) RETURNING id',
                    'chk'::text, 1::numeric) AS c2 \gset
SELECT 'C ' || (:'c1'::jsonb->>'replayed' = 'false' AND :'c2'::jsonb->>'replayed' = 'true'
                AND :'c1'::jsonb->'rows' = :'c2'::jsonb->'rows');
SELECT 'Pd ' || (pay_plain('chk', 1) > 0);
\if :l
SELECT pay('chk', 'chk-l', 1) AS l1 \gset
SELECT pay('chk', 'chk-l', 1) AS l2 \gset
SELECT 'L ' || (:'l1'::jsonb->>'replayed' = 'false' AND :'l2'::jsonb->>'replayed' = 'true'
                AND :'l1'::jsonb->'rows' = :'l2'::jsonb->'rows');
SELECT 'payments ' || (count(*) - :p0 = 4) FROM payments;
\else
SELECT 'payments ' || (count(*) - :p0 = 3) FROM payments;
\endif
SQL
    ) || die "sanity check of the variants failed in $db (see the error above)"
    [[ "$out" != *false* && "$out" == *"payments true"* ]] \
        || die "sanity check of the variants failed in $db: $(tr '\n' ' ' <<<"$out")"
done

# ---------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------

# cpu_sample: "machine_total machine_busy coord w1 w2" in clock ticks since
# boot: all CPUs (/proc/stat), and each node's server: its postmaster with the
# children it has reaped, plus its live children (backends, Citus daemons)
cpu_sample() {
    local pc p1 p2
    pc=$(head -n 1 "$(node_data coord)/postmaster.pid")
    p1=$(head -n 1 "$(node_data w1)/postmaster.pid")
    p2=$(head -n 1 "$(node_data w2)/postmaster.pid")
    { head -n 1 /proc/stat; cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pc="$pc" -v p1="$p1" -v p2="$p2" '
        NR == 1 { for (i = 2; i <= 9; i++) t += $i; busy = t - $5 - $6; next }
        {
            pid = $1 + 0
            sub(/^.*\) /, "")   # state ppid ... utime=$12 stime=$13 cutime=$14 cstime=$15
            own = $12 + $13; all = own + $14 + $15
            if (pid == pc) c += all; else if ($2 == pc) c += own
            if (pid == p1) w1 += all; else if ($2 == p1) w1 += own
            if (pid == p2) w2 += all; else if ($2 == p2) w2 += own
        }
        END { printf "%d %d %d %d %d\n", t, busy, c, w1, w2 }'
}

# fcalls NODE DB FUNCTION: calls of FUNCTION counted on NODE (track_functions)
fcalls() {
    nsql "$1" -d "$2" -c "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE funcname = '$3'"
}

# run_one VARIANT RUN: one pgbench run of VARIANT (P2, C2, Pd2, L2, P1, L1,
# Pd1: the variant and the number of workers), checked, appended to RESULTS
run_one() {
    local v="$1" run="$2" name="${1%[12]}" nw="${1: -1}" db script func="" keys_sql=""
    local prefix="r$run$1-" out="$BENCH_TMP/pgbench.out" rc=0
    local pay0 pay1 keys0=0 keys1=0 tps xacts c0 c1 w0 w1 cpu0 cpu1 node
    db="idem_bench_citus$nw"
    local -a workers=(w1)
    ((nw == 2)) && workers=(w1 w2)
    case "$name" in
        P) script=p ;;
        C) script=c; keys_sql="SELECT count(*) FROM idempotency_keys WHERE key LIKE '$prefix%'" ;;
        Pd) script=pd; func=pay_plain ;;
        L) script=l; func=pay; keys_sql="SELECT count(*) FROM bench_colocated_keys WHERE key LIKE '$prefix%'" ;;
        Lw) script=lw; keys_sql="SELECT count(*) FROM bench_colocated_keys WHERE key LIKE '$prefix%'" ;;
        *) die "run_one: no variant $v" ;;
    esac
    pay0=$(csql "$db" -c "SELECT count(*) FROM payments")
    [[ -n "$keys_sql" ]] && keys0=$(csql "$db" -c "$keys_sql")
    if [[ -n "$func" ]]; then
        c0=$(fcalls coord "$db" "$func")
        w0=0
        for node in "${workers[@]}"; do w0=$((w0 + $(fcalls "$node" "$db" "$func"))); done
    fi
    for node in coord w1 w2; do nsql "$node" -c CHECKPOINT >/dev/null; done
    cpu0=$(cpu_sample)
    local port="${NODE_PORT[coord]}"
    [[ $name == Lw ]] && port="${NODE_PORT[w1]}"
    PGHOST="$CITUS_DIR" PGPORT="$port" PGUSER=postgres \
        pgbench -n -M prepared -c "$CLIENTS" -j "$JOBS" -T "$SECS" \
        -D kp="$prefix" -D ncust="$NCUST" -D nw1="$NW1" -f "$HERE/$script.pgbench" "$db" >"$out" 2>&1 || rc=$?
    cpu1=$(cpu_sample)
    if ((rc != 0)) || grep -q aborted "$out"; then
        cat "$out" >&2
        die "$v run $run: pgbench failed (exit status $rc)"
    fi
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$out")
    xacts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
    [[ -n "$tps" && -n "$xacts" && "$xacts" -gt 0 ]] || { cat "$out" >&2; die "$v run $run: no result"; }

    # no double effects: one payment per transaction, one key per keyed call
    pay1=$(csql "$db" -c "SELECT count(*) FROM payments")
    [[ -n "$keys_sql" ]] && keys1=$(csql "$db" -c "$keys_sql")
    local dpay=$((pay1 - pay0)) dkeys=$((keys1 - keys0)) note
    [[ $dpay == "$xacts" ]] || die "$v run $run: $xacts transactions made $dpay payments"
    note="$dpay payments"
    if [[ -n "$keys_sql" ]]; then
        [[ $dkeys == "$xacts" ]] || die "$v run $run: $xacts calls with fresh keys made $dkeys keys"
        note="$note, $dkeys keys"
    fi
    # the wrapper ran on the workers, every call, never on the coordinator
    # (the counts reach the statistics when the sessions end: wait for them)
    if [[ -n "$func" ]]; then
        local dc dw tries=0
        while :; do
            c1=$(fcalls coord "$db" "$func")
            w1=0
            for node in "${workers[@]}"; do w1=$((w1 + $(fcalls "$node" "$db" "$func"))); done
            dc=$((c1 - c0)) dw=$((w1 - w0))
            [[ $dc == 0 && $dw == "$xacts" ]] && break
            ((++tries < 40)) || die "$v run $run: $func ran $dw times on the workers and $dc on the coordinator for $xacts calls: not delegated"
            sleep 0.25
        done
        note="$note, $func delegated: $dw calls on the workers, 0 on the coordinator"
    fi
    # cores used during the run: the nodes', and the rest (pgbench, other work on the machine)
    local cores
    cores=$(awk -v a="$cpu0" -v b="$cpu1" -v n="$(nproc)" -v tps="$tps" 'BEGIN {
        split(a, x, " "); split(b, y, " "); t = y[1] - x[1]
        if (t <= 0) { print "0 0 0 0 0 0"; exit }
        c = (y[3] - x[3]) / t * n; w1 = (y[4] - x[4]) / t * n; w2 = (y[5] - x[5]) / t * n
        busy = (y[2] - x[2]) / t * n
        rest = busy - c - w1 - w2; if (rest < 0) rest = 0
        printf "%.2f %.2f %.2f %.2f %.2f %.0f\n", c, w1, w2, rest, n - busy, (c + w1 + w2) * 1e6 / tps }')
    printf '%s\t%s\t%s\t%s\t%s\n' "$v" "$run" "$tps" "$xacts" "${cores// /$'\t'}" >>"$RESULTS"
    log "   $(printf '%-3s run %d/%d: %8.1f tps, %7d transactions; %s; cores: %s (coordinator w1 w2 rest idle; CPU us of the nodes per transaction)' \
        "$v" "$run" "$RUNS" "$tps" "$xacts" "$note" "$cores")"
}

load_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
t_runs=$SECONDS
log "== citus bench: $RUNS rounds of ${VARIANTS[*]}, $SECS s each, $CLIENTS clients"
for ((run = 1; run <= RUNS; run++)); do
    order=("${VARIANTS[@]}")
    if ((run % 2 == 0)); then
        order=()
        for ((i = ${#VARIANTS[@]} - 1; i >= 0; i--)); do order+=("${VARIANTS[i]}"); done
    fi
    for v in "${order[@]}"; do
        run_one "$v" "$run"
    done
done
t_runs=$((SECONDS - t_runs))
load_end=$(cut -d ' ' -f 1-3 /proc/loadavg)

# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print ""; else print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# col VARIANT N: column N of VARIANT's runs, one per line
col() { awk -F '\t' -v v="$1" -v c="$2" '$1 == v { print $c }' "$RESULTS"; }
has() { grep -q "^$1	" "$RESULTS"; }
# ratio A B: median of the per-round ratios of TPS; rounds A B: each round's
ratio() {
    awk -F '\t' -v a="$1" -v b="$2" '$1 == a { x[$2] = $3 } $1 == b { y[$2] = $3 }
        END { for (r in x) if (y[r] > 0) printf "%.4f\n", x[r] / y[r] }' "$RESULTS" | median
}
rounds() {
    awk -F '\t' -v a="$1" -v b="$2" '$1 == a { x[$2] = $3 } $1 == b { y[$2] = $3 }
        END { for (r = 1; r in x; r++) printf "%s%.2f", (r > 1 ? " " : ""), x[r] / y[r] }' "$RESULTS"
}
# line A B LABEL [TARGET]: one ratio line of the report
line() {
    local a="$1" b="$2" label="$3" want="${4:-}" r verdict=""
    if ! has "$a" || ! has "$b"; then
        printf '  %-44s %s\n' "$label" "not available (${a%[12]} was not run: no colocated API in this build)"
        [[ -n "$want" ]] && echo "  target $label >= $want: NOT AVAILABLE"
        return 0
    fi
    r=$(ratio "$a" "$b")
    if [[ -n "$want" ]]; then
        verdict=$(awk -v r="$r" -v t="$want" 'BEGIN { print (r >= t) ? "PASS" : "MISS" }')
        verdict="   target >= $want: $verdict"
    fi
    printf '  %-44s %5.2f  (rounds: %s)%s\n' "$label" "$r" "$(rounds "$a" "$b")" "$verdict"
}

declare -A LABEL=(
    [P]="P  INSERT through the coordinator"
    [C]="C  idem_execute on the coordinator, 2PC"
    [Pd]="Pd pay_plain(), delegated, no key"
    [L]="L  pay() -> idem_execute_colocated, delegated"
    [Lw]="Lw idem_execute_colocated, straight to w1"
)
cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_gb=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
settings=$(csql "$DB2" -c "
    SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY ord)
      FROM unnest(ARRAY['shared_buffers', 'synchronous_commit', 'fsync', 'full_page_writes',
                        'max_wal_size', 'checkpoint_timeout', 'autovacuum', 'max_prepared_transactions',
                        'citus.shard_count', 'citus.max_cached_conns_per_worker'])
           WITH ORDINALITY AS s(name, ord)")
shards=$(csql "$DB2" -c "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'payments'::regclass")

echo
echo "== Citus benchmark (bench/citus.sh) =="
echo "cluster:  $CITUS_V, a coordinator and two workers, each its own PostgreSQL server on this machine;"
echo "          payments distributed by customer ($shards shards); 2 workers: database $DB2, 1 worker: $DB1"
echo "variants: P   INSERT INTO payments (customer, amount) VALUES (\$1, \$2) RETURNING id, through the coordinator"
echo "          C   idem_execute(fresh key, that INSERT, customer, amount) on the coordinator: key there, 2PC"
echo "          Pd  pay_plain(customer, amount), create_distributed_function(..., force_delegation): INSERT on the worker"
echo "          L   pay(customer, fresh key, amount) -> idem_execute_colocated('payments', ...), delegated like Pd"
echo "          Lw  idem_execute_colocated('payments', ...) sent by the client straight to worker w1, for the $NW1"
echo "              customers whose shard is on w1 (one statement, as P; no coordinator, no delegation)"
echo "          $L_NOTE"
echo "method:   $RUNS rounds of ${VARIANTS[*]} (digit = workers), $SECS s each (pgbench -n -M prepared -c $CLIENTS -j $JOBS -T $SECS),"
echo "          a random customer of $NCUST per transaction; order reversed every other round; CHECKPOINT on"
echo "          every node before each run; total $t_runs s of runs"
echo "checked:  after every run: payments made == transactions, keys made == transactions (C, L, Lw), and the"
echo "          wrapper (Pd, L) ran on the workers for every call and never on the coordinator"
echo "server:   $(csql "$DB2" -c 'SHOW server_version'), extension $(csql "$DB2" -c "SELECT extversion FROM pg_extension WHERE extname = 'idempotency'")"
echo "settings: $settings (each node)"
echo "machine:  $(nproc) CPUs ($cpu_model), ${mem_gb} GiB RAM, $(uname -sr); pgbench and all three nodes on it"
echo "load avg: $load_start at the start, $load_end at the end (1/5/15 min; other work on the machine skews numbers)"
echo
printf '%-48s %7s %10s  %s\n' "variant" workers "median TPS" "TPS of each round"
for v in P2 C2 Pd2 L2 Lw2 P1 Pd1 L1; do
    has "$v" || continue
    printf '%-48s %7s %10.0f  %s\n' "${LABEL[${v%[12]}]}" "${v: -1}" "$(col "$v" 3 | median)" \
        "$(col "$v" 3 | awk '{ printf "%s%.0f", (NR > 1 ? " " : ""), $1 }')"
done
has L2 || printf '%-48s %7s %10s  %s\n' "${LABEL[L]}" 2 "-" "not available: no colocated API in this build"
echo
echo "ratios (median of the per-round ratios; both variants ran in the same round):"
line L2 P2 "L/P, 2 workers" 0.8
line C2 P2 "C/P, 2 workers (what 2PC costs)"
line Pd2 P2 "Pd/P, 2 workers (what delegation costs)"
line L2 Pd2 "L/Pd, 2 workers (what the key costs, local)"
line L2 C2 "L/C, 2 workers"
line Lw2 P2 "Lw/P, 2 workers (client straight to the node)" 0.8
line Lw2 L2 "Lw/L, 2 workers (what delegation costs L)"
echo "scaling, two workers / one worker:"
line P2 P1 "P  2/1"
line L2 L1 "L  2/1"
has L1 || line Pd2 Pd1 "Pd 2/1 (standing in for L)"
echo
echo "CPU used during the runs (median cores of $(nproc); rest = pgbench and anything else on the machine;"
echo "the last column: CPU time of the three nodes per transaction, pgbench and the rest left out):"
printf '  %-4s %12s %6s %6s %6s %6s %14s\n' "" coordinator w1 w2 rest idle "nodes us/tx"
for v in P2 C2 Pd2 L2 Lw2 P1 Pd1 L1; do
    has "$v" || continue
    printf '  %-4s %12.2f %6.2f %6.2f %6.2f %6.2f %14.0f\n' "$v" "$(col "$v" 5 | median)" "$(col "$v" 6 | median)" \
        "$(col "$v" 7 | median)" "$(col "$v" 8 | median)" "$(col "$v" 9 | median)" "$(col "$v" 10 | median)"
done
echo
echo "what limits the scaling here: the coordinator, both workers and pgbench share these $(nproc) cores"
echo "(and other work on the machine takes its share): a second worker brings no CPU of its own, only"
echo "spreads the shards; with the cores busy, TPS cannot grow with workers on one machine, and the"
echo "idle column shows how much was left.  Throughput is then the cores divided by the CPU time a"
echo "transaction takes on all nodes together (plus pgbench's), which a second worker does not lower (it"
echo "may raise it: more connections, more processes sharing the cores).  On separate machines each"
echo "worker adds its own cores, and the workers' share of that CPU time is what spreads over them."
if has L2; then
    echo "L against P: delegation itself (Pd/P $(awk -v r="$(ratio Pd2 P2)" 'BEGIN { printf "%.2f", r }')) times the key written beside the"
    echo "payment (L/Pd $(awk -v r="$(ratio L2 Pd2)" 'BEGIN { printf "%.2f", r }')).  A delegated call is planned on the coordinator (Citus plans"
    echo "each call afresh to see the tenant), sent to the worker, run there in PL/pgSQL, whose INSERT is"
    echo "planned by Citus again; a plain INSERT is routed straight to the shard."
fi
echo "C pays for two-phase commit: PREPARE and COMMIT PREPARED each wait for a WAL flush on the worker"
echo "whatever synchronous_commit says (here $SYNC_COMMIT), and a row in pg_dist_transaction on the coordinator."
