#!/usr/bin/env bash
# SC2317: the run_* / after_* functions are called by name ("run_$suite").
# SC2119: lib.sh functions take optional arguments.
# shellcheck disable=SC2317,SC2119
# Build and install the extension, then run every test suite against a
# throwaway PostgreSQL cluster:
#
#   regress    pg_regress, test/sql/*.sql against expected/*.out
#   isolation  pg_isolation_regress, test/specs/*.spec
#   tap        prove, test/t/*.pl (PostgreSQL::Test::Cluster, own clusters)
#   pgtap      pg_prove, test/pgtap/*.sql in a database with pgtap installed
#   pgxn       prove, test/pgxn/*.pl: META.json and make dist
#   deb        test/deb/*.sh: make deb, then the package installed into the
#              system PostgreSQL, tested and removed; always runs last, and
#              installs this build again afterwards
#   clients    test/clients/suite.sh: psycopg 3, node-postgres, pgx and JDBC
#              programs, directly and through PgBouncer in transaction mode;
#              the Django and Express examples; the README's snippets
#
# Every suite runs, even after one fails.  A suite is skipped only when it has
# no test files.  The last line is `suites: N passed, M failed`; the exit
# status is non-zero when a suite failed or none ran.
#
# Run as root (it installs packages, installs the extension and runs the
# tests as OS user postgres in a copy of the tree under /tmp).
# Usage: scripts/test.sh [suite...]     (default: all)
# IDEM_KEEP_TMP=1 keeps the copy and the cluster's dir for a look afterwards.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

ALL_SUITES=(regress isolation tap pgtap clients pgxn deb)
if (($# > 0)); then
    SUITES=()
    for s in "$@"; do
        case " ${ALL_SUITES[*]} " in
            *" $s "*) ;;
            *) die "unknown suite '$s' (known: ${ALL_SUITES[*]})" ;;
        esac
        [[ $s == deb ]] || SUITES+=("$s")
    done
    # deb replaces the installed extension: it goes last
    case " $* " in *" deb "*) SUITES+=(deb) ;; esac
else
    SUITES=("${ALL_SUITES[@]}")
fi

case " ${SUITES[*]} " in
    *" clients "*)
        # shellcheck source=test/clients/suite.sh
        . "$REPO_ROOT/test/clients/suite.sh"
        clients_deps
        # JDBC has no unix sockets: the server listens on 127.0.0.1 too
        export IDEM_PG_TCP=1
        ;;
    *) ensure_deps ;;
esac
build_and_install

# The tests write results/, regression.diffs and tmp_check/ next to the
# Makefile, and the TAP tests run initdb: all as user postgres, who may not
# be able to write (or even reach) the checkout.  So they run in a copy.
WORK="$(mktemp -d /tmp/idem-test.XXXXXX)"
remove_work() {
    if [[ -n "${WORK:-}" && -d "$WORK" ]]; then
        if [[ "${IDEM_KEEP_TMP:-0}" == 1 ]]; then
            log "keeping test copy $WORK (IDEM_KEEP_TMP=1)"
        else
            rm -rf "$WORK"
        fi
    fi
    WORK=""
}
add_cleanup remove_work
tar -C "$REPO_ROOT" --anchored \
    --exclude=./.git --exclude=./results --exclude=./tmp_check \
    --exclude=./tmp_check_iso --exclude=./output_iso --exclude=./log \
    --exclude=./regression.diffs --exclude=./regression.out --exclude=./build \
    -cf - . | tar -C "$WORK" -xf -
chown -R postgres:postgres "$WORK"
chmod 700 "$WORK"

start_cluster

# --- helpers ---------------------------------------------------------------

# test files of a suite, relative to the copy, sorted
suite_files() {
    local pattern
    case "$1" in
        regress) pattern='test/sql/*.sql' ;;
        isolation) pattern='test/specs/*.spec' ;;
        tap) pattern='test/t/*.pl' ;;
        pgtap) pattern='test/pgtap/*.sql' ;;
        pgxn) pattern='test/pgxn/*.pl' ;;
        deb) pattern='test/deb/*.sh' ;;
        clients) pattern='test/clients/*/[Cc]lient.*' ;;
    esac
    (cd "$WORK" && compgen -G "$pattern" | LC_ALL=C sort) || true
}

show_regression_diffs() {
    local f="$WORK/regression.diffs"
    if [[ -s "$f" ]]; then
        echo "----- regression.diffs (first 300 of $(wc -l <"$f") lines) -----"
        head -n 300 "$f"
        echo "----- end of regression.diffs -----"
    else
        echo "(no regression.diffs was written)"
    fi
}

show_server_log() {
    if [[ -n "${IDEM_PG_LOG:-}" && -s "$IDEM_PG_LOG" ]]; then
        echo "----- server log, last 40 lines ($IDEM_PG_LOG) -----"
        tail -n 40 "$IDEM_PG_LOG"
        echo "----- end of server log -----"
    fi
}

# Logs of the TAP tests that prove reported as failed (all of them if that
# cannot be told): tmp_check/log/regress_log_NAME and the servers' NAME_*.log.
show_tap_logs() {
    local f t found=0
    local -a names=()
    if [[ -s "$WORK/tap.out" ]]; then
        mapfile -t names < <(sed -n 's|^test/t/\([^ /]*\)\.pl  *(Wstat.*|\1|p' "$WORK/tap.out" | sort -u)
    fi
    if ((${#names[@]} == 0)); then
        names=("*")
    fi
    # $t is a test name or "*": left unquoted on purpose, as a glob
    # shellcheck disable=SC2231
    for t in "${names[@]}"; do
        for f in "$WORK"/tmp_check/log/regress_log_$t; do
            [[ -e "$f" ]] || continue
            found=1
            echo "----- ${f#"$WORK"/}, last 60 lines -----"
            tail -n 60 "$f"
        done
        for f in "$WORK"/tmp_check/log/$t*.log; do
            [[ -e "$f" ]] || continue
            found=1
            echo "----- ${f#"$WORK"/} (server log), last 25 lines -----"
            tail -n 25 "$f"
        done
    done
    if ((found)); then
        echo "----- end of TAP logs -----"
    else
        echo "(no logs under tmp_check/log)"
    fi
}

# --- the suites --------------------------------------------------------------

run_regress() {
    as_postgres "$WORK" make installcheck ISOLATION= TAP_TESTS=
}
after_regress_failure() {
    show_regression_diffs
    show_server_log
}

run_isolation() {
    as_postgres "$WORK" make installcheck REGRESS= TAP_TESTS=
}
after_isolation_failure() {
    show_regression_diffs
    show_server_log
}

run_tap() {
    as_postgres "$WORK" make installcheck REGRESS= ISOLATION= PROVE_FLAGS=--timer |
        tee "$WORK/tap.out"
}
after_tap_failure() {
    show_tap_logs
}

run_pgtap() {
    local -a files
    mapfile -t files < <(suite_files pgtap)
    as_postgres "$WORK" psql -X -q -v ON_ERROR_STOP=1 -d postgres \
        -c 'SET client_min_messages = warning' \
        -c 'DROP DATABASE IF EXISTS idempotency_pgtap' \
        -c 'CREATE DATABASE idempotency_pgtap' || return 1
    as_postgres "$WORK" psql -X -q -v ON_ERROR_STOP=1 -d idempotency_pgtap \
        -c 'CREATE EXTENSION pgtap' \
        -c 'CREATE EXTENSION idempotency' || return 1
    as_postgres "$WORK" pg_prove --failures --comments -d idempotency_pgtap "${files[@]}"
}
after_pgtap_failure() {
    show_server_log
}

# META.json and make dist: in the checkout itself, which git archive needs
run_pgxn() {
    local -a files
    mapfile -t files < <(suite_files pgxn)
    ensure_deps git unzip
    (cd "$REPO_ROOT" && prove --timer "${files[@]}")
}
after_pgxn_failure() {
    :
}

# The package goes into the system PostgreSQL and is removed again, taking
# build_and_install's files with it when PG_CONFIG is the system's: install
# them again.
run_deb() {
    local f rc=0
    local -a files
    mapfile -t files < <(suite_files deb)
    for f in "${files[@]}"; do
        "$REPO_ROOT/$f" || rc=1
    done
    (build_and_install) || rc=1
    return "$rc"
}
after_deb_failure() {
    :
}
# run_clients and after_clients_failure: test/clients/suite.sh, sourced above

# --- run them ------------------------------------------------------------------

declare -a R_NAME=() R_RESULT=() R_SECS=()
passed=0
failed=0

for suite in "${SUITES[@]}"; do
    mapfile -t files < <(suite_files "$suite")
    echo
    if ((${#files[@]} == 0)); then
        echo "=== $suite: SKIP (no test files yet)"
        R_NAME+=("$suite") R_RESULT+=("SKIP (no tests)") R_SECS+=("-")
        continue
    fi
    echo "=== $suite: ${#files[@]} test file(s)"
    t0=$EPOCHREALTIME
    if "run_$suite"; then
        result=PASS
        passed=$((passed + 1))
    else
        result=FAIL
        failed=$((failed + 1))
    fi
    t1=$EPOCHREALTIME
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    echo "=== $suite: $result in ${secs}s"
    if [[ $result == FAIL ]]; then
        "after_${suite}_failure" || true
    fi
    R_NAME+=("$suite") R_RESULT+=("$result") R_SECS+=("$secs")
done

# Stop the server and remove the copy now, so nothing is printed after the
# summary's last line.
stop_cluster
remove_work

echo
echo "=== summary"
printf '%-10s  %-16s  %8s\n' suite result seconds
for i in "${!R_NAME[@]}"; do
    printf '%-10s  %-16s  %8s\n' "${R_NAME[i]}" "${R_RESULT[i]}" "${R_SECS[i]}"
done
if ((passed + failed == 0)); then
    echo "no test suite ran: there are no test files"
fi
echo "suites: $passed passed, $failed failed"

if ((failed > 0 || passed + failed == 0)); then
    exit 1
fi
exit 0
