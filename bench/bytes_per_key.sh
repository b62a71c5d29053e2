#!/usr/bin/env bash
# Bytes per key: what one new key costs in WAL and on disk (issue 10).
#
# Storage and WAL are what a day of keys costs, and unlike a time they can
# be measured exactly on a noisy machine, so this needs no rounds.  One
# client (pgbench -c 1 -t N -M prepared), N new keys each way, each call its
# own transaction, each variant in a fresh database after a CHECKPOINT:
#
#   B0      INSERT INTO payments ... RETURNING id (no idempotency: the floor)
#   B1      INSERT INTO payments_b1 ... ON CONFLICT (idempotency_key) DO
#           NOTHING RETURNING id: a unique key column, no stored result
#   B2      b2_execute(...): a hand-written PL/pgSQL keys table
#           (bench/execute/b2_execute.sql)
#   idem    idem_execute(key, 'INSERT INTO payments ... RETURNING id', ...)
#   U       INSERT INTO events_u ... ON CONFLICT (event_id) DO NOTHING: a
#           row deduplicated by a unique index
#   guard   INSERT INTO events ...: a row deduplicated by idem_guard
#
# Measured: WAL = the pg_current_wal_insert_lsn() difference over the run,
# disk = the growth of every table with its indexes and TOAST
# (pg_total_relation_size of every table of the database), both divided by
# N.  Targets (issue 10): a new idem_execute key at most 1.25x B1's WAL and
# 1.6x B1's disk bytes; a guarded row the same against U.
#
# Needs PGHOST/PGPORT/PGUSER of a superuser, psql and pgbench in PATH:
# scripts/bench.sh provides them (`BENCH=bytes_per_key make bench`).
#
# Environment:
#   BENCH_KEYS   new keys per variant [20000]
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

KEYS="${BENCH_KEYS:-20000}"
[[ "$KEYS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_KEYS must be a positive integer, not '$KEYS'"
DB=idem_bench_bytes
HERE="$REPO_ROOT/bench/execute"

command -v pgbench >/dev/null 2>&1 || die "pgbench not found (run through scripts/bench.sh)"
[[ "$(psql -X -At -d postgres -c "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")" == t ]] \
    || die "the benchmark needs a superuser connection (CHECKPOINT)"

BENCH_TMP="$(mktemp -d /tmp/idem-bench-bytes.XXXXXX)"
add_cleanup "rm -rf '$BENCH_TMP'"

PSQL=(psql -X -q -v ON_ERROR_STOP=1 -d "$DB")
q() {
    "${PSQL[@]}" -At -F ' ' -c "$1"
}

# the dedup tables of U and guard
cat >"$BENCH_TMP/events.sql" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS idempotency;
CREATE TABLE events_u (event_id text NOT NULL UNIQUE, payload text NOT NULL);
CREATE TABLE events (event_id text NOT NULL, payload text NOT NULL);
SELECT idem_guard('events', 'event_id');
SQL
# same key shape as bench/execute/*_new.pgbench
cat >"$BENCH_TMP/u.pgbench" <<'SQL'
\set r random(1, 9000000000000000000)
INSERT INTO events_u VALUES (:kp::text || :r::text || '-' || :client_id::text, 'payload') ON CONFLICT (event_id) DO NOTHING;
SQL
cat >"$BENCH_TMP/guard.pgbench" <<'SQL'
\set r random(1, 9000000000000000000)
INSERT INTO events VALUES (:kp::text || :r::text || '-' || :client_id::text, 'payload');
SQL

# the rows a variant must have made: one per call
declare -A SCRIPT=(
    [B0]="$HERE/b0.pgbench" [B1]="$HERE/b1_new.pgbench" [B2]="$HERE/b2_new.pgbench"
    [idem]="$HERE/idem_new.pgbench" [U]="$BENCH_TMP/u.pgbench" [guard]="$BENCH_TMP/guard.pgbench"
)
declare -A ROWS=(
    [B0]="SELECT count(*) FROM payments" [B1]="SELECT count(*) FROM payments_b1"
    [B2]="SELECT count(*) FROM b2_keys" [idem]="SELECT count(*) FROM idempotency_keys"
    [U]="SELECT count(*) FROM events_u" [guard]="SELECT count(*) FROM events"
)
VARIANTS=(B0 B1 B2 idem U guard)
declare -A WAL=() DISK=()

table_bytes() {
    q "SELECT sum(pg_total_relation_size(oid)) FROM pg_class WHERE relkind = 'r'"
}

for v in "${VARIANTS[@]}"; do
    fresh_database "$DB"
    "${PSQL[@]}" -f "$HERE/setup.sql" -f "$HERE/b2_execute.sql" -f "$BENCH_TMP/events.sql" >/dev/null
    q "CHECKPOINT"
    bytes0=$(table_bytes)
    lsn0=$(q "SELECT pg_current_wal_insert_lsn()")
    pgbench -n -M prepared -c 1 -t "$KEYS" -D kp=k- -D customer=cus_1 -D amount=100.00 \
        -f "${SCRIPT[$v]}" "$DB" >"$BENCH_TMP/$v.out" 2>&1 \
        || { cat "$BENCH_TMP/$v.out" >&2; die "pgbench of $v failed"; }
    wal=$(q "SELECT pg_current_wal_insert_lsn() - '$lsn0'::pg_lsn")
    bytes1=$(table_bytes)
    rows=$(q "${ROWS[$v]}")
    [[ "$rows" == "$KEYS" ]] || die "$v made $rows rows for $KEYS calls"
    WAL[$v]=$(awk -v w="$wal" -v n="$KEYS" 'BEGIN { printf "%.0f", w / n }')
    DISK[$v]=$(awk -v a="$bytes0" -v b="$bytes1" -v n="$KEYS" 'BEGIN { printf "%.0f", (b - a) / n }')
    # where the bytes went, for the report
    growth=$(q "SELECT string_agg(relname || ' ' || pg_size_pretty(pg_total_relation_size(oid)), ', ' ORDER BY relname)
                  FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace
                   AND pg_relation_size(oid) > 0")
    log "bytes_per_key: $v done: ${WAL[$v]} B WAL, ${DISK[$v]} B disk per call ($growth)"
done

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}
verdict() {
    awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t) ? "meets" : "misses" }'
}

echo
echo "bytes per new key: one client, $KEYS calls per variant, each its own transaction"
printf '%-8s %12s %12s %10s %10s\n' variant "WAL B/call" "disk B/call" "WAL/B1" "disk/B1"
for v in "${VARIANTS[@]}"; do
    printf '%-8s %12s %12s %10s %10s\n' "$v" "${WAL[$v]}" "${DISK[$v]}" \
        "$(ratio "${WAL[$v]}" "${WAL[B1]}")x" "$(ratio "${DISK[$v]}" "${DISK[B1]}")x"
done
echo
r=$(ratio "${WAL[idem]}" "${WAL[B1]}")
echo "target: idem_execute WAL  <= 1.25x B1: ${r}x ($(verdict "$r" 1.25))"
r=$(ratio "${DISK[idem]}" "${DISK[B1]}")
echo "target: idem_execute disk <= 1.60x B1: ${r}x ($(verdict "$r" 1.60))"
r=$(ratio "${WAL[guard]}" "${WAL[U]}")
echo "target: guarded row WAL   <= 1.25x U:  ${r}x ($(verdict "$r" 1.25))"
r=$(ratio "${DISK[guard]}" "${DISK[U]}")
echo "target: guarded row disk  <= 1.60x U:  ${r}x ($(verdict "$r" 1.60))"
