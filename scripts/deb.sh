#!/usr/bin/env bash
# SC2119: lib.sh functions take optional arguments.
# shellcheck disable=SC2119
# Build the Debian packages the way the PostgreSQL apt repository builds
# extensions: debian/ with pg_buildext (dh --with pgxs_loop), a source
# package (orig tarball, debian.tar.xz, .dsc) and the binary package
# postgresql-15-idempotency, built in a temporary directory outside the
# checkout from its tracked and untracked (not ignored) files.  The results
# are copied to build/ (ignored by git); the build log is build/deb-build.log.
#
# The upstream version is the extension's (Makefile EXTVERSION, which must
# equal default_version in idempotency.control).  When the newest entry of
# debian/changelog is for another version, the build copy gets an entry for
# EXTVERSION-1 on top, so the package always carries the version it installs.
#
# Run as root: it installs the build dependencies when they are missing.
# DEB_BUILD_OPTIONS=nocheck skips the build-time test (the pg_regress suites
# against the files just built, in a temporary cluster; see debian/rules).
# Usage: scripts/deb.sh   (make deb)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/version.sh
. "$REPO_ROOT/scripts/version.sh"
cd "$REPO_ROOT"

t0=$EPOCHREALTIME
ensure_deps git dpkg-dev debhelper fakeroot postgresql-server-dev-all
VERSION="$(ext_version)"
DEBVERSION="$VERSION-1"
OUT="$REPO_ROOT/build"
mkdir -p "$OUT"
LOGFILE="$OUT/deb-build.log"

# pg_virtualenv runs the build-time test's server as user postgres, which
# must reach the installed files under the build directory.
BUILD_TMP="$(mktemp -d /tmp/idem-deb.XXXXXX)"
chmod 755 "$BUILD_TMP"
# shellcheck disable=SC2016  # expanded when the cleanup runs
add_cleanup '[[ "${IDEM_KEEP_TMP:-0}" == 1 ]] && log "keeping $BUILD_TMP" || rm -rf "$BUILD_TMP"'
SRC="$BUILD_TMP/idempotency-$VERSION"
mkdir "$SRC"

# the source: what git would commit now, or the whole tree without git
if git -c safe.directory="$REPO_ROOT" -C "$REPO_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    git -c safe.directory="$REPO_ROOT" -C "$REPO_ROOT" ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do
            [[ -e "$f" ]] && printf '%s\0' "$f"
        done |
        tar --null -T - -cf - | tar -C "$SRC" -xf -
else
    tar --anchored --exclude=./build --exclude=./results --exclude=./tmp_check \
        --exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - . | tar -C "$SRC" -xf -
fi
[[ -x "$SRC/debian/rules" ]] || die "no debian/rules in the source"
tar -C "$BUILD_TMP" --exclude="idempotency-$VERSION/debian" \
    -czf "$BUILD_TMP/idempotency_$VERSION.orig.tar.gz" "idempotency-$VERSION"

changelog_version="$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)"
if [[ "${changelog_version%-*}" != "$VERSION" ]]; then
    log "== deb: debian/changelog is at $changelog_version, the extension at $VERSION: building $DEBVERSION (add a changelog entry for it)"
    maintainer="$(sed -n 's/^Maintainer: *//p' "$SRC/debian/control.in")"
    {
        printf 'idempotency (%s) unstable; urgency=medium\n\n' "$DEBVERSION"
        printf '  * Version %s of the extension (Makefile EXTVERSION).\n\n' "$VERSION"
        printf ' -- %s  %s\n\n' "$maintainer" "$(date -R)"
        cat "$SRC/debian/changelog"
    } >"$SRC/debian/changelog.new"
    mv "$SRC/debian/changelog.new" "$SRC/debian/changelog"
else
    DEBVERSION="$changelog_version"
fi

# Build against the system PostgreSQL (pg_buildext picks each version's
# pg_config), not a PG_CONFIG/PATH the caller set for a private one.  When
# the supported versions here differ from debian/control's, pg_buildext
# checkcontrol regenerates it from control.in instead of failing.
log "== deb: building idempotency $DEBVERSION in $SRC (log: $LOGFILE)"
if ! (cd "$SRC" && env -u PG_CONFIG -u PG_BINDIR PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        PG_UPDATECONTROL=yes \
        DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }parallel=$(nproc 2>/dev/null || echo 2)" \
        dpkg-buildpackage -us -uc) >"$LOGFILE" 2>&1; then
    tail -n 80 "$LOGFILE" >&2
    die "dpkg-buildpackage failed (whole log: $LOGFILE)"
fi

# build/ keeps the artefacts of the latest build only
rm -f "$OUT"/idempotency_* "$OUT"/postgresql-*-idempotency*
shopt -s nullglob
artefacts=("$BUILD_TMP"/idempotency_* "$BUILD_TMP"/postgresql-*-idempotency*)
shopt -u nullglob
cp "${artefacts[@]}" "$OUT/"
for deb in "$OUT"/postgresql-*-idempotency_*.deb; do
    echo "== $(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version): ${deb#"$REPO_ROOT"/}"
    dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { print "   " $NF }'
done
echo "== deb: built in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')s; source package and build info in build/"
