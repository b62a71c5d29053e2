#!/usr/bin/env bash
# make dist: the PGXN release archive, idempotency-VERSION.zip with one top
# directory idempotency-VERSION/, made by `git archive` from HEAD (commit
# first: changes in the working tree are not in it).  VERSION is META.json's,
# which must be the extension's version (Makefile EXTVERSION, equal to
# default_version in idempotency.control) as a semantic version: 1.0 -> 1.0.0.
# The zip goes to the repository root, or to $DIST_DIR when set.
# Upload it at https://manager.pgxn.org/upload.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/version.sh
. "$REPO_ROOT/scripts/version.sh"
cd "$REPO_ROOT"

command -v git >/dev/null 2>&1 || ensure_deps git
git_() {
    git -c safe.directory="$REPO_ROOT" -C "$REPO_ROOT" "$@"
}
git_ rev-parse --verify -q HEAD >/dev/null || die "make dist needs a git checkout with a commit"

VERSION="$(semver "$(ext_version)")"
meta_version="$(perl -MJSON::PP -0777 -ne 'print decode_json($_)->{version}' META.json)"
[[ "$meta_version" == "$VERSION" ]] ||
    die "META.json has version $meta_version, the extension $(ext_version): set its version and provides' to $VERSION"
if [[ -n "$(git_ status --porcelain --untracked-files=no)" ]]; then
    log "dist: the working tree has uncommitted changes; the archive holds HEAD ($(git_ rev-parse --short HEAD)) without them"
fi

out="${DIST_DIR:-$REPO_ROOT}/idempotency-$VERSION.zip"
git_ archive --format zip --prefix="idempotency-$VERSION/" -o "$out" HEAD
echo "dist: $out ($(git_ rev-parse --short HEAD))"
