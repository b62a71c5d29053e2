#!/usr/bin/env bash
# Retention under churn (issue 10): does the keys table stay flat while keys
# are made and expire all the time, what does the purge cost the writers,
# and does expiring keys cost more when more keys are live?
#
# Part 1, churn.  Writers (pgbench, BENCH_CHURN_CLIENTS clients, -M
# prepared) make a fresh key with idem_execute on every call, at full speed,
# for BENCH_CHURN_TTLS TTLs of BENCH_CHURN_TTL seconds (the database's
# idempotency.ttl, scaled down from a day so the run fits in minutes), in
# segments of a quarter TTL.  The purge is on in the first and last segment
# of each TTL and off in the two between (on off off on: each TTL is the
# same, and the order reverses every other pair, so drift hits both alike).
# Done twice, each in a fresh database:
#   worker  the background worker (idempotency.purge_interval =
#           BENCH_CHURN_INTERVAL seconds; 0 turns it off)
#   anchor  the DELETE-based purge a user would schedule with pg_cron: every
#           BENCH_CHURN_INTERVAL seconds a new connection runs
#           idem_purge(BENCH_CHURN_BATCH) again and again, each batch in its
#           own transaction, until one comes back short (anchor_tick in
#           bench/churn/setup.sql); the worker stays off
# Both rely on autovacuum to make the space of purged keys reusable, as a
# production server does: the benchmark turns it on for its runs (ALTER
# SYSTEM; scripts/bench.sh keeps it off for the other benchmarks), with
# autovacuum_naptime scaled down with the TTL (1 s), other settings at
# their defaults.
# Reported: the writers' TPS with the purge on / off (median over the pairs
# of segments after the first TTL, when keys start to expire; target >=
# 0.9), and the keys table with its indexes (idempotency_stats.table_bytes)
# after each TTL (target: flat after the second TTL, within 20%: the largest
# later size / the size after TTL 2 <= 1.2).
# Checked: every segment's calls made as many keys (idempotency_stats.executed)
# and payments; the purge moved idempotency_stats.purged in the segments it
# was on (from the second TTL); at the end, keys left + keys purged == calls,
# and for the anchor, purged == what its ticks report.
#
# Part 2, expiry cost against live keys.  For each N in BENCH_CHURN_LIVE, a
# fresh database holding N live keys and BENCH_CHURN_EXPIRED expired ones
# (a TTL's worth: the keys of the last hour), spread evenly among the live
# ones as churn leaves them, preloaded with INSERT ... SELECT
# (bench/churn/preload.sql: the one place that knows the table's columns),
# then VACUUM (FREEZE, ANALYZE) and CHECKPOINT.  Measured:
#   idem_purge   the expired keys deleted as the worker does it (idem_purge
#                in batches of 500, each its own transaction, until a batch
#                comes back short; purge_all in setup.sql); stopped after
#                BENCH_CHURN_EXPIRE_LIMIT seconds if not done.  Twice, in two
#                layouts of the heap: "spread", an expired key in nearly every
#                page (the worst case: the purge must dirty every page), and
#                "clustered", the expired keys together at the start of the
#                table, as a table written in time order holds them
#   partitioned  the design to beat (bench/churn/partitioned.sql): the same
#                rows in a table partitioned by RANGE (expires_at), one
#                partition per hour; the expired partition detached and
#                dropped whole
# Target: the time to expire them does not grow with N (time per key at the
# largest N / at the smallest <= 1.25, or less than 50 ms apart in all).  Beside it, what
# the partitioned design costs every call: a primary-key lookup of a live
# key in each (PL/pgSQL loop, microseconds per lookup).
#
# Needs: PGHOST/PGPORT/PGUSER of a superuser on a server with
# shared_preload_libraries = 'idempotency' (for the worker and the
# counters), psql and pgbench.  scripts/bench.sh provides all that
# (`make bench`, or `BENCH=churn make bench`).
#
# Environment (defaults in brackets; a quick smoke run:
# BENCH_CHURN_TTL=10 BENCH_CHURN_TTLS=3 BENCH_CHURN_LIVE=100000):
#   BENCH_CHURN_TTL       key TTL in the churn runs, seconds [60]; >= 8
#   BENCH_CHURN_TTLS      TTLs of writing per churn run [4]; >= 3
#   BENCH_CHURN_CLIENTS   pgbench clients [4]
#   BENCH_JOBS            pgbench threads [2]
#   BENCH_CHURN_INTERVAL  purge interval of the worker and the anchor, seconds [5]
#   BENCH_CHURN_BATCH     the anchor's batch [10000]
#   BENCH_CHURN_LIVE      live key counts of part 2, space separated
#                         ["1000000 10000000"]; empty skips part 2
#   BENCH_CHURN_EXPIRED   expired keys in part 2 [200000]
#   BENCH_CHURN_EXPIRE_LIMIT  seconds before idem_purge's expiry is cut short [120]
#   BENCH_CHURN_PARTS     churn runs to do ["worker anchor"]; one of them, or
#                         empty for part 2 alone
#   BENCH_CHURN_LAYOUTS   heap layouts of part 2 ["spread clustered"]
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

TTL="${BENCH_CHURN_TTL:-60}"
TTLS="${BENCH_CHURN_TTLS:-4}"
CLIENTS="${BENCH_CHURN_CLIENTS:-4}"
JOBS="${BENCH_JOBS:-2}"
INTERVAL="${BENCH_CHURN_INTERVAL:-5}"
BATCH="${BENCH_CHURN_BATCH:-10000}"
LIVE="${BENCH_CHURN_LIVE-1000000 10000000}"
EXPIRED="${BENCH_CHURN_EXPIRED:-200000}"
EXPIRE_LIMIT="${BENCH_CHURN_EXPIRE_LIMIT:-120}"
PARTS="${BENCH_CHURN_PARTS-worker anchor}"
LAYOUTS="${BENCH_CHURN_LAYOUTS-spread clustered}"
for v in TTL TTLS CLIENTS JOBS INTERVAL BATCH EXPIRED EXPIRE_LIMIT; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done
((TTL >= 8)) || die "BENCH_CHURN_TTL must be at least 8 (segments of a quarter TTL, >= 2 s)"
((TTLS >= 3)) || die "BENCH_CHURN_TTLS must be at least 3 (sizes after TTL 2 and later)"
((JOBS <= CLIENTS)) || die "BENCH_JOBS ($JOBS) must not exceed BENCH_CHURN_CLIENTS ($CLIENTS)"
for n in $LIVE; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "BENCH_CHURN_LIVE must list positive integers, not '$LIVE'"
done
for l in $LAYOUTS; do
    [[ "$l" == spread || "$l" == clustered ]] || die "BENCH_CHURN_LAYOUTS: 'spread' and/or 'clustered', not '$LAYOUTS'"
done
for p in $PARTS; do
    [[ "$p" == worker || "$p" == anchor ]] || die "BENCH_CHURN_PARTS: 'worker' and/or 'anchor', not '$PARTS'"
done
SEG=$((TTL / 4))
# segment s (1..4) of each TTL: the purge on or off
PATTERN=(x on off off on)

HERE="$REPO_ROOT/bench/churn"
# shellcheck disable=SC2016  # $1, $2 are the statement's parameters
SQL_TEXT='INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id'

command -v psql >/dev/null 2>&1 || die "psql not found (run through scripts/bench.sh)"
command -v pgbench >/dev/null 2>&1 || die "pgbench not found (run through scripts/bench.sh)"
psql -X -At -d postgres -c "SELECT 1" >/dev/null 2>&1 \
    || die "cannot connect to the server (PGHOST=${PGHOST:-} PGPORT=${PGPORT:-}); run through scripts/bench.sh"
[[ "$(psql -X -At -d postgres -c "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")" == t ]] \
    || die "the benchmark needs a superuser connection (ALTER SYSTEM, preload into idempotency_keys)"
[[ ",$(psql -X -At -d postgres -c "SHOW shared_preload_libraries" | tr -d ' ')," == *,idempotency,* ]] \
    || die "the churn benchmark needs shared_preload_libraries = 'idempotency' (the worker, the counters); scripts/bench.sh sets it"

BENCH_TMP="$(mktemp -d /tmp/idem-bench-churn.XXXXXX)"
add_cleanup "rm -rf '$BENCH_TMP'"
SEGMENTS="$BENCH_TMP/segments.tsv"   # mode ttl seg purge tps calls purged
SIZES="$BENCH_TMP/sizes.tsv"         # mode ttl bytes live expired
EXPIRY="$BENCH_TMP/expiry.tsv"       # design live expired seconds purged finished
LOOKUPS="$BENCH_TMP/lookups.tsv"     # live variant round us
: >"$SEGMENTS"
: >"$SIZES"
: >"$EXPIRY"
: >"$LOOKUPS"

# qdb DB SQL: one value (or one line of values separated by spaces)
qdb() {
    psql -X -q -v ON_ERROR_STOP=1 -At -F ' ' -d "$1" -c "$2"
}

# Server settings for the benchmark's phases, put back on exit.
sys_set() {
    qdb postgres "ALTER SYSTEM SET $1 = '$2'" >/dev/null
}
reload() {
    qdb postgres "SELECT pg_reload_conf()" >/dev/null
    sleep 0.2
}
add_cleanup "psql -X -q -d postgres -c 'ALTER SYSTEM RESET idempotency.purge_interval' \
    -c 'ALTER SYSTEM RESET autovacuum' -c 'ALTER SYSTEM RESET autovacuum_naptime' \
    -c 'SELECT pg_reload_conf()' >/dev/null 2>&1"
sys_set idempotency.purge_interval 0
sys_set autovacuum on
sys_set autovacuum_naptime 1s
reload

# setup_db DB: a fresh database with the extension and the helpers, the
# template key 'tpl' stored by a real call (preload.sql copies it)
setup_db() {
    fresh_database "$1"
    psql -X -q -v ON_ERROR_STOP=1 -d "$1" -f "$HERE/setup.sql" -f "$HERE/preload.sql" \
        -f "$HERE/partitioned.sql" >/dev/null
    qdb "$1" "SELECT idem_execute('tpl', '$SQL_TEXT', 'cus_1'::text, 100.00::numeric)" >/dev/null
}

# stats DB: executed purged table_bytes live_keys expired_keys
stats() {
    qdb "$1" "SELECT executed, purged, table_bytes, live_keys, expired_keys FROM idempotency_stats"
}

# ---------------------------------------------------------------------------
# part 1: churn
# ---------------------------------------------------------------------------
ANCHOR_PID=""
anchor_start() {
    local db="$1"
    touch "$BENCH_TMP/anchor.run"
    (
        while [[ -f "$BENCH_TMP/anchor.run" ]]; do
            if [[ -f "$BENCH_TMP/anchor.on" ]]; then
                psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "CALL anchor_tick($BATCH)" \
                    >>"$BENCH_TMP/anchor.log" 2>&1 || echo "anchor_tick failed" >>"$BENCH_TMP/anchor.err"
            fi
            sleep "$INTERVAL"
        done
    ) &
    ANCHOR_PID=$!
    add_cleanup "rm -f '$BENCH_TMP/anchor.run'; [[ -z \$ANCHOR_PID ]] || { kill \$ANCHOR_PID; wait \$ANCHOR_PID; } 2>/dev/null"
}
anchor_stop() {
    rm -f "$BENCH_TMP/anchor.run" "$BENCH_TMP/anchor.on"
    wait "$ANCHOR_PID" 2>/dev/null || true
    ANCHOR_PID=""
}

# purge MODE on|off
purge() {
    case "$1:$2" in
        worker:on) sys_set idempotency.purge_interval "${INTERVAL}s"; reload ;;
        worker:off) sys_set idempotency.purge_interval 0; reload ;;
        anchor:on) touch "$BENCH_TMP/anchor.on" ;;
        anchor:off) rm -f "$BENCH_TMP/anchor.on" ;;
    esac
}

# churn MODE: one churn run in its own database
churn() {
    local mode="$1" db="idem_bench_churn_$1"
    local t s state out rc tps xacts e0 p0 e1 p1 pay0 pay1 calls=0 purged_on=0
    log "== churn: $mode: $TTLS TTLs of ${TTL} s, segments of $SEG s (purge on off off on), $CLIENTS clients"
    setup_db "$db"
    qdb "$db" "ALTER DATABASE $db SET idempotency.ttl = '${TTL}s'" >/dev/null
    qdb "$db" "SELECT idem_forget('tpl'); TRUNCATE payments; SELECT idem_stats_reset()" >/dev/null
    [[ $mode == anchor ]] && anchor_start "$db"
    for ((t = 1; t <= TTLS; t++)); do
        for s in 1 2 3 4; do
            state=${PATTERN[s]}
            purge "$mode" "$state"
            read -r e0 p0 _ <<<"$(stats "$db")"
            pay0=$(qdb "$db" "SELECT count(*) FROM payments")
            out="$BENCH_TMP/pgbench.out"
            rc=0
            pgbench -n -M prepared -c "$CLIENTS" -j "$JOBS" -T "$SEG" \
                -D kp="c$t.$s-" -D customer=cus_1 -D amount=100.00 \
                -f "$HERE/writer.pgbench" "$db" >"$out" 2>&1 || rc=$?
            if ((rc != 0)) || grep -q 'aborted' "$out"; then
                cat "$out" >&2
                die "churn $mode TTL $t segment $s: pgbench failed (exit status $rc)"
            fi
            tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$out")
            xacts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
            [[ -n "$tps" && -n "$xacts" ]] || { cat "$out" >&2; die "churn $mode: cannot read pgbench's output"; }
            ((xacts > 0)) || die "churn $mode TTL $t segment $s: no call completed in $SEG s"
            read -r e1 p1 _ <<<"$(stats "$db")"
            pay1=$(qdb "$db" "SELECT count(*) FROM payments")
            [[ $((e1 - e0)) == "$xacts" && $((pay1 - pay0)) == "$xacts" ]] \
                || die "churn $mode TTL $t segment $s: $xacts calls made $((e1 - e0)) keys (executed) and $((pay1 - pay0)) payments"
            calls=$((calls + xacts))
            ((t >= 2)) && [[ $state == on ]] && purged_on=$((purged_on + p1 - p0))
            printf '%s\t%d\t%d\t%s\t%s\t%d\t%d\n' "$mode" "$t" "$s" "$state" "$tps" "$xacts" $((p1 - p0)) >>"$SEGMENTS"
            log "   $(printf '%-6s TTL %d seg %d purge %-3s: %8.1f tps, %7d calls = keys = payments, %7d purged' \
                "$mode" "$t" "$s" "$state" "$tps" "$xacts" $((p1 - p0)))"
        done
        # the size after this TTL (the purge was on in its last segment)
        read -r _ _ bytes live expired <<<"$(stats "$db")"
        printf '%s\t%d\t%s\t%s\t%s\n' "$mode" "$t" "$bytes" "$live" "$expired" >>"$SIZES"
        log "   $(printf '%-6s after TTL %d: keys table + indexes %6.1f MiB, ~%d live, ~%d expired keys' \
            "$mode" "$t" "$(awk -v b="$bytes" 'BEGIN { print b / 1048576 }')" "$live" "$expired")"
    done
    purge "$mode" off
    [[ $mode == anchor ]] && anchor_stop
    [[ ! -s "$BENCH_TMP/anchor.err" ]] || { cat "$BENCH_TMP/anchor.log" >&2; die "churn anchor: a tick failed"; }
    ((purged_on > 0)) || die "churn $mode: the purge deleted nothing while it was on (idempotency_stats.purged did not move)"
    # let a pass in progress end, then: every key is either still there or purged
    local i
    for ((i = 0; i < 120; i++)); do
        [[ "$(qdb "$db" "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'idempotency purge worker'")" == 0 ]] && break
        sleep 1
    done
    local left purged
    read -r left purged <<<"$(qdb "$db" "SELECT (SELECT count(*) FROM idempotency_keys), purged FROM idempotency_stats")"
    [[ $((left + purged)) == "$calls" ]] \
        || die "churn $mode: $calls calls, but $left keys left + $purged purged = $((left + purged))"
    local check="$calls calls: $left keys left + $purged purged"
    if [[ $mode == anchor ]]; then
        local ticked
        ticked=$(qdb "$db" "SELECT coalesce(sum(purged), 0) || ' in ' || count(*) || ' ticks, ' || coalesce(sum(batches), 0) || ' batches' FROM anchor_ticks")
        [[ "${ticked%% *}" == "$purged" ]] || die "churn anchor: its ticks purged $ticked, idempotency_stats.purged says $purged"
        check="$check; the anchor's ticks purged $ticked"
    fi
    CHURN_CHECK+=("$mode: $check")
    log "   $mode: $check"
    # where churn leaves the keys that expire together (part 2's two layouts):
    # the keys of each quarter TTL still to come, and the heap pages they sit in
    local layout
    layout=$(qdb "$db" "SELECT string_agg(format('%s keys in %s pages', n, pages), ', ' ORDER BY q)
                          FROM (SELECT q, count(*) AS n, count(DISTINCT blk) AS pages
                                  FROM (SELECT width_bucket(extract(epoch FROM expires_at - now()), 0, $TTL, 4) AS q,
                                               (ctid::text::point)[0] AS blk
                                          FROM idempotency_keys WHERE expires_at > now()) k
                                 GROUP BY q) b")
    LAYOUT_NOTES+=("$mode: keys expiring in each coming quarter TTL: $layout")
    log "   ${LAYOUT_NOTES[-1]}"
    qdb postgres "DROP DATABASE $db" >/dev/null
}

declare -a CHURN_CHECK=()
declare -a LAYOUT_NOTES=()
load_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
t_start=$SECONDS
for p in $PARTS; do
    churn "$p"
done

# ---------------------------------------------------------------------------
# part 2: expiry cost against live keys
# ---------------------------------------------------------------------------
declare -a PRELOAD_NOTES=()
# quiet for the timings (each preload runs its own VACUUM)
sys_set autovacuum off
reload
for layout in $LAYOUTS; do
for n in $LIVE; do
    db=idem_bench_churn_expiry
    log "== churn: expiry of $EXPIRED keys among $n live ones ($layout)"
    clustered=false design=idem_purge
    [[ $layout == clustered ]] && clustered=true design="idem_purge, clustered"
    setup_db "$db"
    t0=$(qdb "$db" "SELECT now()")
    s0=$(date +%s.%N)
    qdb "$db" "SELECT preload_keys('idempotency_keys', $n, $EXPIRED, '1 day', '$t0', $clustered)" >/dev/null
    s1=$(date +%s.%N)
    # the partitioned prototype does not depend on the layout: once
    if [[ $layout == spread ]]; then
        qdb "$db" "SELECT part_setup('$t0', '1 day', '1 hour')" >/dev/null
        qdb "$db" "SELECT preload_keys('part_keys', $n, $EXPIRED, '1 day', '$t0')" >/dev/null
    fi
    s2=$(date +%s.%N)
    # the template key is no key of the measurement
    qdb "$db" "SELECT idem_forget('tpl')" >/dev/null
    qdb "$db" "VACUUM (FREEZE, ANALYZE) idempotency_keys" >/dev/null
    s3=$(date +%s.%N)
    [[ $layout == spread ]] && qdb "$db" "VACUUM (FREEZE, ANALYZE) part_keys" >/dev/null
    qdb "$db" "CHECKPOINT" >/dev/null
    s4=$(date +%s.%N)
    read -r c_live c_exp plain_bytes <<<"$(qdb "$db" "SELECT count(*) FILTER (WHERE expires_at > now()), count(*) FILTER (WHERE expires_at <= now()), (SELECT table_bytes FROM idempotency_stats) FROM idempotency_keys")"
    [[ $c_live == "$n" && $c_exp == "$EXPIRED" ]] \
        || die "expiry preload: idempotency_keys has $c_live live and $c_exp expired keys, want $n and $EXPIRED"
    if [[ $layout == spread ]]; then
        read -r p_live p_exp part_bytes nparts <<<"$(qdb "$db" "SELECT count(*) FILTER (WHERE expires_at > now()), count(*) FILTER (WHERE expires_at <= now()),
            (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('part_keys')), (SELECT count(*) FROM part_bounds) FROM part_keys")"
        [[ $p_live == "$n" && $p_exp == "$EXPIRED" ]] \
            || die "expiry preload: part_keys has $p_live live and $p_exp expired keys, want $n and $EXPIRED"
        [[ "$(qdb "$db" "SELECT count(*) FROM part_keys_0")" == "$EXPIRED" ]] \
            || die "expiry preload: the expired keys are not all in the first partition"
        PRELOAD_NOTES+=("$(awk -v n="$n" -v e="$EXPIRED" -v a="$s0" -v b="$s1" -v c="$s2" -v d="$s3" -v f="$s4" -v pb="$plain_bytes" -v qb="$part_bytes" -v np="$nparts" \
            'BEGIN { printf "%d live + %d expired, spread: keys table %.0f MiB (INSERT %.0f s, VACUUM %.0f s), partitioned %.0f MiB in %d partitions (INSERT %.0f s, VACUUM + CHECKPOINT %.0f s)", n, e, pb / 1048576, b - a, d - c, qb / 1048576, np, c - b, f - d }')")
    else
        PRELOAD_NOTES+=("$(awk -v n="$n" -v e="$EXPIRED" -v a="$s0" -v b="$s1" -v c="$s2" -v d="$s3" -v pb="$plain_bytes" \
            'BEGIN { printf "%d live + %d expired, clustered: keys table %.0f MiB (INSERT %.0f s, VACUUM %.0f s)", n, e, pb / 1048576, b - a, d - c }')")
    fi
    # pages of the keys table that hold an expired key: what the purge must dirty
    expired_pages=$(qdb "$db" "SELECT count(DISTINCT (ctid::text::point)[0]) FROM idempotency_keys WHERE expires_at <= now()")
    PRELOAD_NOTES[-1]+=", expired keys in $expired_pages pages"
    log "   ${PRELOAD_NOTES[-1]}"

    # idem_purge, as the worker runs it; it must find its keys through the
    # index on expires_at, never by a sequential scan of the keys table
    read -r _ p0 _ <<<"$(stats "$db")"
    seq0=$(qdb "$db" "SELECT seq_scan FROM pg_stat_user_tables WHERE relid = 'idempotency_keys'::regclass")
    read -r purged secs finished <<<"$(qdb "$db" "CALL purge_all(500, $EXPIRE_LIMIT)")"
    seqscans=$(( $(qdb "$db" "SELECT seq_scan FROM pg_stat_user_tables WHERE relid = 'idempotency_keys'::regclass") - seq0 ))
    read -r _ p1 _ <<<"$(stats "$db")"
    [[ $((p1 - p0)) == "$purged" ]] || die "expiry: purge_all says $purged, idempotency_stats.purged moved by $((p1 - p0))"
    left=$(qdb "$db" "SELECT count(*) FILTER (WHERE expires_at <= '$t0') || ' ' || count(*) FROM idempotency_keys")
    if [[ $finished == t ]]; then
        [[ $purged == "$EXPIRED" && "$left" == "0 $n" ]] \
            || die "expiry: idem_purge purged $purged of $EXPIRED, left (expired, all) = $left"
    else
        [[ "$left" == "$((EXPIRED - purged)) $((n + EXPIRED - purged))" ]] \
            || die "expiry: idem_purge purged $purged, left (expired, all) = $left"
    fi
    printf '%s\t%d\t%d\t%s\t%d\t%s\t%s\n' "$design" "$n" "$EXPIRED" "$secs" "$purged" "$finished" "$seqscans" >>"$EXPIRY"
    log "   $design: $purged of $EXPIRED expired keys in $secs s (finished: $finished; sequential scans of the keys table: $seqscans)"

    if [[ $layout == clustered ]]; then
        qdb postgres "DROP DATABASE $db" >/dev/null
        continue
    fi

    # the partitioned store: drop the expired partition
    read -r dropped secs <<<"$(qdb "$db" "SELECT n, extract(epoch FROM clock_timestamp() - statement_timestamp()) FROM (SELECT part_expire() AS n OFFSET 0) s")"
    ((dropped == 1)) || die "expiry: part_expire dropped $dropped partitions, want 1"
    left=$(qdb "$db" "SELECT count(*) FILTER (WHERE expires_at <= '$t0') || ' ' || count(*) FROM part_keys")
    [[ "$left" == "0 $n" ]] || die "expiry: after part_expire part_keys has (expired, all) = $left"
    printf 'partitioned\t%d\t%d\t%s\t%d\tt\t\\N\n' "$n" "$EXPIRED" "$secs" "$EXPIRED" >>"$EXPIRY"
    log "   partitioned: $EXPIRED expired keys in $secs s (1 partition detached and dropped)"

    # a lookup by key in each, 3 rounds alternating
    for r in 1 2 3; do
        for v in plain partitioned; do
            us=$(qdb "$db" "SELECT lookup_loop('$v', 20000, $n)")
            printf '%d\t%s\t%d\t%s\n' "$n" "$v" "$r" "$us" >>"$LOOKUPS"
        done
    done
    log "   lookups (us): $(awk -v n="$n" '$1 == n { printf "%s %s %.2f; ", $2, $3, $4 }' "$LOOKUPS")"
    qdb postgres "DROP DATABASE $db" >/dev/null
done
done
load_end=$(cut -d ' ' -f 1-3 /proc/loadavg)
t_total=$((SECONDS - t_start))

# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------
settings=$(qdb postgres "
    SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY ord)
      FROM unnest(ARRAY['shared_buffers', 'synchronous_commit', 'fsync', 'full_page_writes',
                        'max_wal_size', 'huge_pages', 'autovacuum_vacuum_scale_factor',
                        'autovacuum_vacuum_cost_delay', 'autovacuum_vacuum_cost_limit',
                        'synchronize_seqscans'])
           WITH ORDINALITY AS s(name, ord)")
echo
echo "== retention under churn (bench/churn.sh) =="
echo "churn:    $CLIENTS clients (pgbench -M prepared -j $JOBS), each call idem_execute(fresh key, '$SQL_TEXT', ...),"
echo "          idempotency.ttl = ${TTL}s, $TTLS TTLs per run in segments of $SEG s, the purge on off off on in each TTL;"
echo "          worker: idempotency.purge_interval = ${INTERVAL}s (batches of 500); anchor: every ${INTERVAL} s a new"
echo "          connection runs idem_purge($BATCH) until a batch comes back short (as pg_cron would), worker off;"
echo "          autovacuum on (naptime 1s) for both, other autovacuum settings at their defaults"
echo "expiry:   $EXPIRED expired keys (expired over the last hour) spread evenly among N live ones (TTL 1 day),"
echo "          INSERT ... SELECT, VACUUM (FREEZE, ANALYZE), CHECKPOINT; idem_purge: batches of 500 until short,"
echo "          cut at $EXPIRE_LIMIT s; partitioned: RANGE (expires_at), 1-hour partitions, the expired one detached + dropped"
for note in "${PRELOAD_NOTES[@]}"; do
    echo "          $note"
done
echo "server:   $(qdb postgres 'SHOW server_version'); $settings"
[[ -n "${HUGE_PAGES_NOTE:-}" ]] && echo "memory:   $HUGE_PAGES_NOTE"
echo "machine:  $(nproc) CPUs, $(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo) GiB RAM; load avg $load_start at the start, $load_end at the end; $t_total s"
echo
{
    echo "CREATE TEMP TABLE seg (mode text, ttl int, s int, state text, tps numeric, calls bigint, purged bigint);"
    echo "COPY seg FROM STDIN;"
    cat "$SEGMENTS"
    echo '\.'
    echo "CREATE TEMP TABLE sz (mode text, ttl int, bytes bigint, live bigint, expired bigint);"
    echo "COPY sz FROM STDIN;"
    cat "$SIZES"
    echo '\.'
    echo "CREATE TEMP TABLE ex (design text, live bigint, expired bigint, secs numeric, purged bigint, finished boolean, seqscans bigint);"
    echo "COPY ex FROM STDIN;"
    cat "$EXPIRY"
    echo '\.'
    echo "CREATE TEMP TABLE lk (live bigint, variant text, round int, us numeric);"
    echo "COPY lk FROM STDIN;"
    cat "$LOOKUPS"
    echo '\.'
    cat <<'SQL'
-- pairs of segments: (1 on, 2 off) and (4 on, 3 off) of each TTL
CREATE TEMP VIEW pairs AS
SELECT a.mode, a.ttl, p.pair, a.tps AS on_tps, b.tps AS off_tps, a.tps / b.tps AS ratio
  FROM (VALUES (1, 1, 2), (2, 4, 3)) AS p(pair, s_on, s_off)
  JOIN seg a ON a.s = p.s_on
  JOIN seg b ON b.mode = a.mode AND b.ttl = a.ttl AND b.s = p.s_off;

SELECT mode AS "purge by", ttl AS "TTL",
       string_agg(to_char(tps, 'FM999G990') || CASE WHEN state = 'on' THEN '*' ELSE '' END, '  ' ORDER BY s) AS "TPS of segments (* purge on)",
       sum(calls) AS calls, sum(purged) AS purged
  FROM seg GROUP BY mode, ttl ORDER BY mode DESC, ttl;

SELECT p.mode AS "purge by",
       to_char(percentile_cont(0.5) WITHIN GROUP (ORDER BY p.on_tps), 'FM999G990') AS "median TPS on",
       to_char(percentile_cont(0.5) WITHIN GROUP (ORDER BY p.off_tps), 'FM999G990') AS "median TPS off",
       to_char(percentile_cont(0.5) WITHIN GROUP (ORDER BY p.ratio), 'FM90.00') AS "on/off (median of pairs)",
       string_agg(to_char(p.ratio, 'FM90.00'), ' ' ORDER BY p.ttl, p.pair) AS "each pair",
       CASE WHEN percentile_cont(0.5) WITHIN GROUP (ORDER BY p.ratio) >= 0.9 THEN 'PASS' ELSE 'MISS' END AS ">= 0.9"
  FROM pairs p WHERE p.ttl >= 2
 GROUP BY p.mode ORDER BY p.mode DESC;

SELECT z.mode AS "purge by",
       string_agg(to_char(z.bytes / 1048576.0, 'FM99990.0'), '  ' ORDER BY z.ttl) AS "MiB after each TTL",
       string_agg(to_char(z.live, 'FM9999999990'), ' ' ORDER BY z.ttl) AS "~live keys",
       string_agg(to_char(z.expired, 'FM9999999990'), ' ' ORDER BY z.ttl) AS "~expired keys",
       to_char(max(z.bytes) FILTER (WHERE z.ttl > 2)::numeric / max(z.bytes) FILTER (WHERE z.ttl = 2), 'FM90.00') AS "largest later / TTL 2",
       CASE WHEN max(z.bytes) FILTER (WHERE z.ttl > 2) <= 1.2 * max(z.bytes) FILTER (WHERE z.ttl = 2)
            THEN 'PASS' ELSE 'MISS' END AS "<= 1.2"
  FROM sz z GROUP BY z.mode ORDER BY z.mode DESC;

SELECT e.live AS "live keys", e.design,
       CASE WHEN e.finished THEN to_char(e.secs, 'FM9990.000') || ' s'
            ELSE '> ' || to_char(e.secs, 'FM9990') || ' s (' || e.purged || ' of ' || e.expired || ')' END AS "time to expire",
       to_char(e.purged / e.secs, 'FM999G999G990') AS "keys/s",
       coalesce(e.seqscans::text, '') AS "seq scans of the keys table",
       to_char(l.us, 'FM990.00') AS "lookup us (median of 3)"
  FROM ex e
  LEFT JOIN (SELECT live, CASE variant WHEN 'plain' THEN 'idem_purge' ELSE variant END AS design,
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY us)::numeric AS us
               FROM lk GROUP BY live, variant) l USING (live, design)
 ORDER BY e.design DESC, e.live;

-- growth: time per expired key at the largest live count / at the smallest;
-- a difference under 50 ms in all is no cost per key (catalog work, timer).
SELECT e.design,
       to_char((b.secs / b.purged) / (a.secs / a.purged), 'FM9990.00') AS "time per key, largest / smallest live count",
       CASE WHEN NOT b.finished OR NOT a.finished THEN 'MISS (cut short)'
            WHEN (b.secs / b.purged) / (a.secs / a.purged) <= 1.25 THEN 'PASS'
            WHEN b.secs - a.secs < 0.05 THEN 'PASS (< 50 ms apart)' ELSE 'MISS' END AS "no growth (<= 1.25)"
  FROM (SELECT DISTINCT design FROM ex) e
  JOIN LATERAL (SELECT * FROM ex x WHERE x.design = e.design ORDER BY live LIMIT 1) a ON true
  JOIN LATERAL (SELECT * FROM ex x WHERE x.design = e.design ORDER BY live DESC LIMIT 1) b ON true
 WHERE a.live <> b.live
 ORDER BY e.design DESC;
SQL
} | psql -X -q -v ON_ERROR_STOP=1 -d postgres -P footer=off
echo "checked:  every segment: calls == keys made (idempotency_stats.executed) == payments; the purge moved"
echo "          idempotency_stats.purged while on; at the end:"
for line in "${CHURN_CHECK[@]}"; do
    echo "          $line"
done
echo "          expiry: every expired key gone (or, cut short, exactly the purged ones), every live key kept,"
echo "          idempotency_stats.purged == keys purged"
echo "layout:   where churn left the live keys at the end of each run (fewer pages: clustered, as part 2's"
echo "          'clustered' layout; about one page per key: spread):"
for line in "${LAYOUT_NOTES[@]}"; do
    echo "          $line"
done
echo "seq scans: sequential scans of idempotency_keys during idem_purge's expiry (pg_stat_user_tables): 0 when"
echo "          every batch found its keys through the index on expires_at"
echo
