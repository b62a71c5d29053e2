#!/usr/bin/env bash
# SC2119: lib.sh functions take optional arguments.
# shellcheck disable=SC2119
# A walk through idempotency on a throwaway PostgreSQL cluster:
#
#   1. CREATE EXTENSION idempotency and a payments table
#   2. idem_execute runs an INSERT once; the same call again replays it
#   3. two sessions send the same key at once: the second waits for the
#      first and replays its result, so exactly one row is written
#   4. the same key with a different request fails with SQLSTATE IK001
#   5. with idempotency.wait = off, a key held by an in-flight transaction
#      fails at once with SQLSTATE IK002
#
# Each step checks what it shows; the script exits non-zero if one does not
# hold.  Run as root: it installs what is missing, builds and installs the
# extension, and runs the server as OS user postgres, stopped on exit.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

ensure_deps
build_and_install
start_cluster

DEMO_TMP="$(mktemp -d /tmp/idem-demo.XXXXXX)"
# shellcheck disable=SC2016  # expanded when the cleanup runs
add_cleanup 'rm -rf "$DEMO_TMP"'

# Background psql sessions still running; killed (by pid) on an early exit.
declare -A BG_PIDS=()
kill_background() {
    local pid
    for pid in "${!BG_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    BG_PIDS=()
}
add_cleanup kill_background

DB=idempotency_demo
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $DB"
export PGDATABASE=$DB

# psql for the demo: stop on the first error, echo each query so a reader
# sees what runs, no pager, no ~/.psqlrc.
DEMO_PSQL=(psql -X -v ON_ERROR_STOP=1 -P pager=off -v ECHO=queries)
demo_psql() {
    "${DEMO_PSQL[@]}" 2>&1
}

heading() {
    echo
    echo "=================================================================="
    echo "$*"
    echo "=================================================================="
}

# wait_for_sleeper APP PID: wait until session APP is inside pg_sleep, that
# is, it has run its idem_execute and holds the key without committing.
wait_for_sleeper() {
    local app="$1" pid="$2" i n
    for ((i = 0; i < 200; i++)); do
        n=$(psql -X -At -c "SELECT count(*) FROM pg_stat_activity
                             WHERE application_name = '$app' AND state = 'active'
                               AND query LIKE '%pg_sleep%'")
        if [[ "$n" == 1 ]]; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "session $app ended early; its output:"
            sed 's/^/  | /' "$DEMO_TMP/$app.out"
            die "session $app did not reach pg_sleep"
        fi
        sleep 0.05
    done
    die "session $app did not reach pg_sleep within 10 s"
}

# finish_background APP PID: wait for it, show its output, fail if it failed.
finish_background() {
    local app="$1" pid="$2" rc=0
    wait "$pid" || rc=$?
    unset "BG_PIDS[$pid]"
    echo "--- output of session $app ---"
    sed "s/^/  $app| /" "$DEMO_TMP/$app.out"
    echo "--- end of session $app (exit status $rc) ---"
    ((rc == 0)) || die "session $app failed"
}

# --------------------------------------------------------------------------
heading "1. Install the extension and create a table to write to"
demo_psql <<'SQL'
CREATE EXTENSION idempotency;
\dx idempotency
CREATE TABLE payments (id bigserial PRIMARY KEY, customer text, amount numeric);

-- a small helper for the demo's own checks: raises an error when a check
-- fails, so psql (ON_ERROR_STOP) and this script stop with a failure
\set ECHO none
CREATE FUNCTION demo_check(ok boolean, what text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION 'demo check failed: %', what;
    END IF;
    RETURN 'ok: ' || what;
END $$;
SQL

# --------------------------------------------------------------------------
heading "2. Run a payment once, then retry it with the same key"
demo_psql <<'SQL'
\echo
\echo '-- first call: runs the INSERT and stores its result under key pay-7f3a'
SELECT idem_execute('pay-7f3a',
    'INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id',
    'cus_1', 100.00::numeric) AS first \gset
\echo '=>' :first
\echo
\echo '-- the client timed out and retries: same key, same request'
SELECT idem_execute('pay-7f3a',
    'INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id',
    'cus_1', 100.00::numeric) AS retry \gset
\echo '=>' :retry
\echo
\echo '-- the retry replayed the stored result ("replayed": true) and inserted nothing:'
SELECT * FROM payments ORDER BY id;
\set ECHO none
SELECT demo_check((:'first'::jsonb) ->> 'replayed' = 'false', 'the first call ran the INSERT ("replayed": false)') AS "check"
UNION ALL
SELECT demo_check((:'retry'::jsonb) ->> 'replayed' = 'true', 'the retry was replayed ("replayed": true)')
UNION ALL
SELECT demo_check((:'retry'::jsonb) -> 'rows' = (:'first'::jsonb) -> 'rows', 'the retry returned the same id as the first call')
UNION ALL
SELECT demo_check((SELECT count(*) FROM payments) = 1, 'payments has exactly one row');
SQL

# --------------------------------------------------------------------------
heading "3. Two sessions send the same new key at the same time"
echo "Session A: BEGIN; idem_execute('pay-concurrent', ...); pg_sleep(2); COMMIT;"
echo "Session B: the same idem_execute while A has not committed yet."
echo "B waits for A's transaction, then replays A's result instead of paying twice."

cat >"$DEMO_TMP/A.sql" <<'SQL'
SET application_name = 'A';
BEGIN;
SELECT idem_execute('pay-concurrent',
    'INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id',
    'cus_2', 42.50::numeric) AS a_result;
SELECT pg_sleep(2);
COMMIT;
SQL
"${DEMO_PSQL[@]}" -f "$DEMO_TMP/A.sql" >"$DEMO_TMP/A.out" 2>&1 </dev/null &
pid_a=$!
BG_PIDS[$pid_a]=1
wait_for_sleeper A "$pid_a"
echo
echo "A has run its idem_execute and sleeps inside its transaction; B starts now:"
demo_psql <<'SQL'
SET application_name = 'B';
SELECT clock_timestamp() AS b_start \gset
SELECT idem_execute('pay-concurrent',
    'INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id',
    'cus_2', 42.50::numeric) AS b_result \gset
\echo '=> B got:' :b_result
\set ECHO none
SELECT round(extract(epoch FROM clock_timestamp() - :'b_start'::timestamptz)::numeric, 1)
       AS "B waited (seconds)";
\set ECHO queries
SELECT * FROM payments WHERE customer = 'cus_2';
\set ECHO none
SELECT demo_check((:'b_result'::jsonb) ->> 'replayed' = 'true', 'B replayed A''s result') AS "check"
UNION ALL
SELECT demo_check((SELECT count(*) FROM payments WHERE customer = 'cus_2') = 1,
                  'exactly one payment row for pay-concurrent')
UNION ALL
SELECT demo_check(((:'b_result'::jsonb) -> 'rows' -> 0 ->> 'id')::bigint
                  = (SELECT id FROM payments WHERE customer = 'cus_2'),
                  'B''s result names the row A inserted');
SQL
finish_background A "$pid_a"

# --------------------------------------------------------------------------
heading "4. Same key, different request: rejected with SQLSTATE IK001"
echo "A client bug reuses key pay-7f3a for another amount (999 instead of 100)."
demo_psql <<'SQL'
\set ON_ERROR_STOP 0
\set VERBOSITY verbose
SELECT idem_execute('pay-7f3a',
    'INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id',
    'cus_1', 999.00::numeric);
\set VERBOSITY default
\set ON_ERROR_STOP 1
\echo '=> SQLSTATE of that error:' :LAST_ERROR_SQLSTATE
\set ECHO none
SELECT demo_check(:'LAST_ERROR_SQLSTATE' = 'IK001', 'the mismatched retry failed with SQLSTATE IK001') AS "check"
UNION ALL
SELECT demo_check((SELECT count(*) FROM payments WHERE customer = 'cus_1') = 1,
                  'still exactly one payment for pay-7f3a');
SQL

# --------------------------------------------------------------------------
heading "5. SET idempotency.wait = off: fail at once instead of waiting"
echo "Session A2 holds key pay-inflight in an open transaction;"
echo "session B2 sends the same key with idempotency.wait = off."

cat >"$DEMO_TMP/A2.sql" <<'SQL'
SET application_name = 'A2';
BEGIN;
SELECT idem_execute('pay-inflight',
    'INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id',
    'cus_3', 7.00::numeric) AS a2_result;
SELECT pg_sleep(2);
COMMIT;
SQL
"${DEMO_PSQL[@]}" -f "$DEMO_TMP/A2.sql" >"$DEMO_TMP/A2.out" 2>&1 </dev/null &
pid_a2=$!
BG_PIDS[$pid_a2]=1
wait_for_sleeper A2 "$pid_a2"
demo_psql <<'SQL'
SET application_name = 'B2';
SET idempotency.wait = off;
\set ON_ERROR_STOP 0
\set VERBOSITY verbose
SELECT idem_execute('pay-inflight',
    'INSERT INTO payments(customer, amount) VALUES ($1, $2) RETURNING id',
    'cus_3', 7.00::numeric);
\set VERBOSITY default
\set ON_ERROR_STOP 1
\echo '=> SQLSTATE of that error:' :LAST_ERROR_SQLSTATE
\set ECHO none
SELECT demo_check(:'LAST_ERROR_SQLSTATE' = 'IK002', 'B2 failed at once with SQLSTATE IK002 (key in flight)') AS "check";
SQL
finish_background A2 "$pid_a2"

# --------------------------------------------------------------------------
heading "6. What is stored: one row per key, next to the payments"
demo_psql <<'SQL'
SELECT * FROM payments ORDER BY id;
SELECT owner, scope, key, result, expires_at - created_at AS ttl
  FROM idempotency_keys ORDER BY created_at;
\set ECHO none
SELECT demo_check((SELECT count(*) FROM payments) = 3, 'three payments for three keys') AS "check";
SQL

echo
echo "demo finished: every check passed"
