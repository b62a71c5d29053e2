#!/usr/bin/env bash
# The Debian package as users get it: built by scripts/deb.sh (make deb),
# installed with `apt-get install ./build/postgresql-N-idempotency_*.deb` into
# the system PostgreSQL N; it puts the module and every install script where
# the server looks; CREATE EXTENSION in a fresh cluster (OS user postgres,
# unix socket) gives the package's version; the pg_regress suites (regress,
# isolation) pass against the installed files (make installcheck with the
# system pg_config), and so does the autopkgtest, debian/tests/installcheck;
# then `apt-get remove` takes away every file the package installed.
#
# It overwrites what `make install` put into the system PostgreSQL and leaves
# it without the extension: scripts/test.sh runs it last (suite deb) and
# installs its own build again afterwards.  Run as root.
# The package is built without its build-time test (DEB_BUILD_OPTIONS=nocheck,
# unless set otherwise): the same suites run here against the installed one.
# SC2119: lib.sh functions take optional arguments.
# shellcheck disable=SC2119
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
# shellcheck source=scripts/version.sh
. "$REPO_ROOT/scripts/version.sh"
cd "$REPO_ROOT"

[[ $(id -u) -eq 0 ]] || die "run as root: it installs a package"
VERSION="$(ext_version)"
DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS-nocheck}" "$REPO_ROOT/scripts/deb.sh"

shopt -s nullglob
debs=("$REPO_ROOT"/build/postgresql-*-idempotency_*.deb)
shopt -u nullglob
((${#debs[@]} > 0)) || die "scripts/deb.sh left no build/postgresql-*-idempotency_*.deb"

checks=0
ok() {
    checks=$((checks + 1))
    echo "ok $checks - $*"
}

APT_LOG="$(mktemp /tmp/idem-deb-apt.XXXXXX)"
# shellcheck disable=SC2016  # expanded when the cleanup runs
add_cleanup 'rm -f "$APT_LOG"'
apt_get() {
    if ! DEBIAN_FRONTEND=noninteractive apt-get -y -o DPkg::Lock::Timeout=600 \
            -o Dpkg::Use-Pty=0 "$@" >"$APT_LOG" 2>&1; then
        cat "$APT_LOG" >&2
        die "apt-get $* failed"
    fi
}

pkg_status() {
    dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null || true
}

# regular files and symlinks in a .deb, as absolute paths
deb_files() {
    dpkg-deb -c "$1" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }'
}

WORK=""
remove_work() {
    [[ -z "$WORK" ]] || rm -rf "$WORK"
    WORK=""
}
add_cleanup remove_work

for deb in "${debs[@]}"; do
    pkg="$(dpkg-deb -f "$deb" Package)"
    debversion="$(dpkg-deb -f "$deb" Version)"
    major="${pkg#postgresql-}"
    major="${major%%-*}"
    echo "== $pkg $debversion (${deb#"$REPO_ROOT"/})"
    [[ "${debversion%-*}" == "$VERSION" ]] ||
        die "$pkg is version $debversion, the extension $VERSION"
    ok "$pkg's upstream version is the extension's, $VERSION"

    PG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config"
    [[ -x "$PG_CONFIG" ]] || die "$PG_CONFIG not found: is postgresql-server-dev-$major installed?"
    export PG_CONFIG
    _idem_set_pg_paths
    pkglibdir="$("$PG_CONFIG" --pkglibdir)"
    extdir="$("$PG_CONFIG" --sharedir)/extension"

    # a leftover of an interrupted run would make this a reinstall
    if [[ "$(pkg_status "$pkg")" == "install ok installed"* ]]; then
        log "removing $pkg left installed by an earlier run"
        apt_get remove "$pkg"
    fi

    # shellcheck disable=SC2016  # expanded when the cleanup runs
    add_cleanup "[[ \"\$(pkg_status $pkg)\" != 'install ok installed'* ]] || apt_get remove $pkg"
    t0=$EPOCHREALTIME
    apt_get install --no-install-recommends "$deb"
    [[ "$(pkg_status "$pkg")" == "install ok installed $debversion" ]] ||
        die "after apt-get install, $pkg is: $(pkg_status "$pkg")"
    ok "apt-get install ./${deb#"$REPO_ROOT"/} installed $pkg $debversion ($(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s)"

    # the module and every install script, where this server looks for them
    mapfile -t files < <(deb_files "$deb")
    expected=("$pkglibdir/idempotency.so" "$extdir/idempotency.control")
    for f in sql/idempotency--*.sql; do
        expected+=("$extdir/${f#sql/}")
    done
    [[ " ${expected[*]} " == *" $extdir/idempotency--$VERSION.sql "* ]] ||
        expected+=("$extdir/idempotency--$VERSION.sql")
    for f in "${expected[@]}"; do
        [[ " ${files[*]} " == *" $f "* ]] || die "$pkg does not ship $f"
        [[ -f "$f" ]] || die "$f, in $pkg, is not on disk"
    done
    ok "$pkg installed ${#files[@]} files, among them the module and every install script: $(printf '%s ' "${expected[@]}")"

    start_cluster
    got="$(psql -X -q -At -v ON_ERROR_STOP=1 -d postgres \
        -c 'SET client_min_messages = warning' \
        -c 'CREATE EXTENSION idempotency' \
        -c "SELECT extversion FROM pg_extension WHERE extname = 'idempotency'" \
        -c "SELECT (idem_execute('deb-1', 'SELECT 1 AS one') -> 'rows' -> 0 ->> 'one')" \
        -c 'DROP EXTENSION idempotency')"
    [[ "$got" == "$VERSION"$'\n'1 ]] || die "CREATE EXTENSION / idem_execute gave: $got"
    ok "CREATE EXTENSION idempotency in a fresh $("$PG_BINDIR/postgres" -V) cluster gives version $VERSION, and idem_execute runs"

    # pg_regress writes its results next to the Makefile as user postgres
    WORK="$(mktemp -d /tmp/idem-deb-test.XXXXXX)"
    tar -C "$REPO_ROOT" --anchored --exclude=./.git --exclude=./build \
        --exclude=./results --exclude=./tmp_check --exclude=./output_iso \
        --exclude=./regression.diffs --exclude=./regression.out -cf - . |
        tar -C "$WORK" -xf -
    chown -R postgres:postgres "$WORK"
    t0=$EPOCHREALTIME
    if ! as_postgres "$WORK" make installcheck TAP_TESTS= PG_CONFIG="$PG_CONFIG" >"$WORK/installcheck.out" 2>&1; then
        cat "$WORK/installcheck.out"
        [[ ! -s "$WORK/regression.diffs" ]] || head -n 200 "$WORK/regression.diffs"
        die "make installcheck against the installed $pkg failed"
    fi
    ok "make installcheck (regress, isolation) against the installed $pkg: $(grep -Eo 'All [0-9]+ tests passed' "$WORK/installcheck.out" | paste -sd, -) ($(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s)"
    stop_cluster

    # the autopkgtest, as autopkgtest runs it: in the source tree, as root
    t0=$EPOCHREALTIME
    if ! (cd "$WORK" && env -u PG_CONFIG -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE \
            PATH=/usr/sbin:/usr/bin:/sbin:/bin debian/tests/installcheck) >"$WORK/autopkgtest.out" 2>&1; then
        cat "$WORK/autopkgtest.out"
        die "the autopkgtest debian/tests/installcheck failed"
    fi
    ok "autopkgtest debian/tests/installcheck against the installed $pkg: $(grep -Eo 'All [0-9]+ tests passed' "$WORK/autopkgtest.out" | paste -sd, -) ($(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')s)"
    remove_work

    apt_get remove "$pkg"
    [[ "$(pkg_status "$pkg")" != "install ok installed"* ]] ||
        die "after apt-get remove, $pkg is: $(pkg_status "$pkg")"
    left=()
    for f in "${files[@]}"; do
        [[ ! -e "$f" && ! -L "$f" ]] || left+=("$f")
    done
    ((${#left[@]} == 0)) || die "apt-get remove $pkg left ${left[*]}"
    ok "apt-get remove $pkg took away all ${#files[@]} of its files"
done
echo "deb: $checks checks passed"
