#!/usr/bin/env bash
# Benchmark of the dedup guard: rows/s of loading the same data three ways.
#
#   A  COPY into a plain table: no index, no guard (the floor)
#   B  COPY into a table guarded by idem_guard(tbl, 'event_id'), no index
#   C  the hand-written alternative: multi-row
#      INSERT ... VALUES (...), ... ON CONFLICT (event_id) DO NOTHING
#      into a table with a unique index on event_id, BENCH_BATCH rows per
#      statement, each statement its own transaction, sent by psql from a
#      script generated beforehand (no staging table)
#
# The data (generated once, deterministic): BENCH_ROWS rows (default
# 1,000,000) of (event_id bigint, payload text of 50 bytes), in which 10% of
# the rows repeat an event_id that occurs elsewhere in the file, shuffled.
# So 90% of BENCH_ROWS distinct ids, and B and C must end up with exactly
# that many rows, A with all of them.
#
# Each workload loads into a fresh empty table (B also starts from an empty
# keys table), BENCH_RUNS times (default 3), interleaved A B C A B C ... so
# that drift (other load, caches, the disk) hits all three alike.  Before
# each run the table is created and a CHECKPOINT taken; the time is the
# server's clock_timestamp() around the load statement(s), in the same
# session.  After each run the row counts are checked; a wrong count fails
# the benchmark.  The report is the median of the runs.
#
# Needs: a running server on this machine (COPY reads a server-side file),
# PGHOST/PGPORT/PGUSER of a superuser, the extension installed, psql in
# PATH.  scripts/bench.sh provides all that; run it through `make bench`.
#
# Environment:
#   BENCH_ROWS   rows to load (default 1000000; 100000 for a quick run)
#   BENCH_RUNS   runs of each workload (default 3)
#   BENCH_BATCH  rows per INSERT statement in C (default 10000)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

ROWS="${BENCH_ROWS:-1000000}"
RUNS="${BENCH_RUNS:-3}"
BATCH="${BENCH_BATCH:-10000}"
[[ "$ROWS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROWS must be a positive integer, not '$ROWS'"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer, not '$RUNS'"
[[ "$BATCH" =~ ^[1-9][0-9]*$ ]] || die "BENCH_BATCH must be a positive integer, not '$BATCH'"
((ROWS >= 10)) || die "BENCH_ROWS must be at least 10"

DUPS=$((ROWS / 10))          # rows whose event_id also occurs elsewhere
DISTINCT=$((ROWS - DUPS))    # distinct event_ids = rows B and C must keep
DB=idem_bench_guard_copy

command -v psql >/dev/null 2>&1 || die "psql not found (run through scripts/bench.sh)"
psql -X -At -d postgres -c "SELECT 1" >/dev/null 2>&1 \
    || die "cannot connect to the server (PGHOST=${PGHOST:-} PGPORT=${PGPORT:-}); run through scripts/bench.sh"
[[ "$(psql -X -At -d postgres -c "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")" == t ]] \
    || die "the benchmark needs a superuser connection (server-side COPY FROM a file, TRUNCATE of idempotency_keys)"

# Work dir for the data files: the server (OS user postgres) writes and reads
# them, so it must own the directory.
BENCH_TMP="$(mktemp -d /tmp/idem-bench-guard.XXXXXX)"
add_cleanup "rm -rf '$BENCH_TMP'"
if [[ $(id -u) -eq 0 ]]; then
    chown postgres:postgres "$BENCH_TMP"
fi
chmod 755 "$BENCH_TMP"
CSV="$BENCH_TMP/events.csv"
INSERTS="$BENCH_TMP/events_insert.sql"

PSQL=(psql -X -q -v ON_ERROR_STOP=1 -d "$DB")

# ---------------------------------------------------------------------------
# setup: database, extension, data
# ---------------------------------------------------------------------------
fresh_database "$DB"

log "== guard_copy: generating $ROWS rows ($DISTINCT distinct event_ids, $DUPS duplicates)"
"${PSQL[@]}" <<SQL
CREATE EXTENSION idempotency;
-- deterministic data: one seed, no parallel workers reordering random() calls
SET max_parallel_workers_per_gather = 0;
SELECT setseed(0.4242) \\g /dev/null
-- ids 1..$DISTINCT once each, plus $DUPS repeats drawn from them at random;
-- then shuffle.  event_id scrambles k (k * odd constant mod 2^32 is a
-- bijection) so ids arrive in no particular order, as real event ids do.
CREATE UNLOGGED TABLE bench_src AS
SELECT row_number() OVER (ORDER BY r) AS ord,
       1000000000000 + (k::bigint * 2654435761) % 4294967296 AS event_id
  FROM (SELECT k, random() AS r
          FROM (SELECT k FROM generate_series(1, $DISTINCT) AS k
                UNION ALL
                SELECT 1 + floor(random() * $DISTINCT)::int
                  FROM generate_series(1, $DUPS)) AS ids) AS shuffled;
-- 50-byte payload, different on every row (a retry need not be identical)
ALTER TABLE bench_src ADD COLUMN payload text;
UPDATE bench_src SET payload = 'payload-' || lpad(ord::text, 9, '0') || '-' || md5(ord::text);
COPY (SELECT event_id, payload FROM bench_src ORDER BY ord) TO '$CSV' (FORMAT csv);
SQL

# C's input: the same rows in the same order, BATCH per statement.
"${PSQL[@]}" -At -o "$INSERTS" <<SQL
SELECT 'INSERT INTO events_unique (event_id, payload) VALUES '
       || string_agg(format('(%s,%L)', event_id, payload), ',' ORDER BY ord)
       || ' ON CONFLICT (event_id) DO NOTHING;'
  FROM bench_src
 GROUP BY (ord - 1) / $BATCH
 ORDER BY (ord - 1) / $BATCH;
SQL

# check the data is what the report says it is
read -r n_rows n_distinct n_dup_rows payload_len <<<"$("${PSQL[@]}" -At -F ' ' -c "
    SELECT count(*), count(DISTINCT event_id),
           count(*) - count(DISTINCT event_id),
           round(avg(octet_length(payload)))
      FROM bench_src")"
[[ "$n_rows" == "$ROWS" && "$n_distinct" == "$DISTINCT" ]] \
    || die "generated data is wrong: $n_rows rows, $n_distinct distinct ids (want $ROWS, $DISTINCT)"
n_stmts=$(wc -l <"$INSERTS")
csv_bytes=$(stat -c %s "$CSV")
ins_bytes=$(stat -c %s "$INSERTS")
"${PSQL[@]}" -c "DROP TABLE bench_src"

# ---------------------------------------------------------------------------
# one timed run
# ---------------------------------------------------------------------------
# run_workload A|B|C: prints "seconds reported_row_count table_rows
# table_distinct_ids keys_rows", where reported_row_count is the COPY's
# command row count (C: rows of all its INSERTs) and keys_rows the rows in
# idempotency_keys (B only).
run_workload() {
    local w="$1" table prepare load
    case "$w" in
        A)
            table=events_plain
            prepare="CREATE TABLE events_plain (event_id bigint, payload text);"
            load="COPY events_plain FROM '$CSV' (FORMAT csv);
\\set n_reported :ROW_COUNT"
            ;;
        B)
            table=events_guarded
            prepare="TRUNCATE idempotency_keys;
CREATE TABLE events_guarded (event_id bigint, payload text);
SELECT idem_guard('events_guarded', 'event_id') \\g /dev/null"
            load="COPY events_guarded FROM '$CSV' (FORMAT csv);
\\set n_reported :ROW_COUNT"
            ;;
        C)
            table=events_unique
            prepare="CREATE TABLE events_unique (event_id bigint, payload text);
CREATE UNIQUE INDEX events_unique_event_id ON events_unique (event_id);"
            # psql's ROW_COUNT is the last statement's only: count the
            # inserted rows with the table's own row counter instead
            load="\\i $INSERTS
\\set n_reported -1"
            ;;
    esac
    "${PSQL[@]}" -At -F ' ' <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS $table;
$prepare
CHECKPOINT;
SELECT extract(epoch FROM clock_timestamp()) AS t0 \\gset
$load
SELECT extract(epoch FROM clock_timestamp()) AS t1 \\gset
SELECT round((:t1 - :t0)::numeric, 3),
       CASE WHEN :n_reported < 0 THEN (SELECT count(*) FROM $table) ELSE :n_reported END,
       (SELECT count(*) FROM $table),
       (SELECT count(DISTINCT event_id) FROM $table),
       (SELECT count(*) FROM idempotency_keys);
DROP TABLE $table;
TRUNCATE idempotency_keys;
SQL
}

declare -A NAME=(
    [A]="A  COPY, plain table"
    [B]="B  COPY, idem_guard table"
    [C]="C  INSERT..ON CONFLICT"
)
declare -A WANT=([A]=$ROWS [B]=$DISTINCT [C]=$DISTINCT)
declare -A WANT_KEYS=([A]=0 [B]=$DISTINCT [C]=0)

load_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
RESULTS=()
log "== guard_copy: $RUNS runs of A B C, interleaved"
for ((run = 1; run <= RUNS; run++)); do
    for w in A B C; do
        out="$(run_workload "$w")"
        read -r secs reported nrows ndistinct nkeys <<<"$out"
        [[ -n "${nkeys:-}" ]] || die "run $run of $w: unexpected output: $out"
        rate=$(awk -v r="$ROWS" -v s="$secs" 'BEGIN { printf "%.0f", (s > 0 ? r / s : 0) }')
        log "   run $run/$RUNS ${NAME[$w]}: ${secs} s, $rate rows/s;" \
            "reported $reported, table $nrows rows, $ndistinct distinct ids, $nkeys keys"
        [[ "$nrows" == "${WANT[$w]}" ]] \
            || die "run $run of ${NAME[$w]}: table has $nrows rows, want ${WANT[$w]}"
        [[ "$reported" == "${WANT[$w]}" ]] \
            || die "run $run of ${NAME[$w]}: the load reported $reported rows, want ${WANT[$w]}"
        if [[ "$w" != A && "$ndistinct" != "$nrows" ]]; then
            die "run $run of ${NAME[$w]}: $nrows rows but only $ndistinct distinct event_ids"
        fi
        [[ "$nkeys" == "${WANT_KEYS[$w]}" ]] \
            || die "run $run of ${NAME[$w]}: idempotency_keys has $nkeys rows, want ${WANT_KEYS[$w]}"
        RESULTS+=("('$w', $run, $secs)")
    done
done
load_end=$(cut -d ' ' -f 1-3 /proc/loadavg)

# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------
cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_gb=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
settings=$("${PSQL[@]}" -At -c "
    SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY ord)
      FROM unnest(ARRAY['shared_buffers', 'synchronous_commit', 'fsync',
                        'full_page_writes', 'wal_level', 'max_wal_size',
                        'checkpoint_timeout', 'wal_buffers', 'autovacuum',
                        'work_mem', 'maintenance_work_mem', 'jit'])
           WITH ORDINALITY AS s(name, ord)")

echo
echo "== dedup guard benchmark (bench/guard_copy.sh) =="
echo "data:     $ROWS rows (event_id bigint, payload text of $payload_len bytes): $n_distinct distinct event_ids,"
echo "          $n_dup_rows rows repeat an id found elsewhere in the file ($((n_dup_rows * 100 / n_rows))%), shuffled;"
echo "          CSV $((csv_bytes / 1024 / 1024)) MiB; C's script $n_stmts INSERT statements of $BATCH rows, $((ins_bytes / 1024 / 1024)) MiB"
echo "A:        COPY events_plain FROM file (no index, no trigger): the floor"
echo "B:        COPY events_guarded FROM file, after SELECT idem_guard('events_guarded', 'event_id'); no index on the table"
echo "C:        INSERT INTO events_unique VALUES (...) x $BATCH ON CONFLICT (event_id) DO NOTHING, one transaction per"
echo "          statement, sent by psql from a pre-generated script; unique index on event_id"
echo "method:   fresh empty table per run (B: empty idempotency_keys too), CHECKPOINT before each, $RUNS runs each"
echo "          interleaved A B C; time = server clock_timestamp() around the load; rows/s = $ROWS input rows / time"
echo "server:   $(psql -X -At -d "$DB" -c 'SHOW server_version'), extension $(psql -X -At -d "$DB" -c "SELECT extversion FROM pg_extension WHERE extname = 'idempotency'")"
echo "settings: $settings"
echo "machine:  $(nproc) CPUs ($cpu_model), ${mem_gb} GiB RAM, $(uname -sr)"
echo "load avg: $load_start at the start, $load_end at the end (1/5/15 min; other work on the machine skews times)"
echo

RESULTS_SQL=$(IFS=,; echo "${RESULTS[*]}")
"${PSQL[@]}" -P footer=off <<SQL
WITH r(w, run, secs) AS (VALUES $RESULTS_SQL),
m AS (
    SELECT w,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY secs) AS med,
           min(secs) AS lo, max(secs) AS hi,
           string_agg(to_char(secs, 'FM9990.000'), ' ' ORDER BY run) AS runs
      FROM r GROUP BY w
),
a AS (SELECT med FROM m WHERE w = 'A')
SELECT CASE m.w WHEN 'A' THEN '${NAME[A]}' WHEN 'B' THEN '${NAME[B]}' ELSE '${NAME[C]}' END
           AS workload,
       round(m.med::numeric, 3) AS "median s",
       to_char(round($ROWS / m.med), 'FM999G999G999') AS "median rows/s",
       round((a.med / m.med)::numeric, 3) AS "rows/s vs A",
       round((m.med / a.med)::numeric, 2) AS "time vs A",
       m.runs AS "each run (s)"
  FROM m, a
 ORDER BY m.w;

WITH r(w, run, secs) AS (VALUES $RESULTS_SQL),
m AS (SELECT w, percentile_cont(0.5) WITHIN GROUP (ORDER BY secs) AS med FROM r GROUP BY w)
SELECT format('B vs C: rows/s of B / rows/s of C = %s (above 1: the guarded COPY is faster than the hand-written INSERT ... ON CONFLICT)',
              round((c.med / b.med)::numeric, 2)) AS " "
  FROM m b, m c WHERE b.w = 'B' AND c.w = 'C' \\g (format=unaligned tuples_only=on)
\\echo
SQL
