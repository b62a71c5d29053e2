#!/usr/bin/env bash
# The extension's version, for scripts/deb.sh and scripts/dist.sh.  Source it
# after lib.sh:
#
#   ext_version      EXTVERSION from the Makefile, checked against
#                    default_version in idempotency.control (e.g. 1.0)
#   semver VERSION   the same as a semantic version, as PGXN wants (1.0.0)

ext_version() {
    local mk ctl
    mk="$(sed -n 's/^EXTVERSION[[:space:]]*=[[:space:]]*\([^[:space:]]*\).*/\1/p' "$REPO_ROOT/Makefile")"
    ctl="$(sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" "$REPO_ROOT/idempotency.control")"
    [[ -n "$mk" ]] || die "no EXTVERSION in $REPO_ROOT/Makefile"
    [[ "$mk" == "$ctl" ]] ||
        die "Makefile EXTVERSION ($mk) and idempotency.control default_version ($ctl) differ"
    printf '%s\n' "$mk"
}

semver() {
    case "$1" in
        *.*.*) printf '%s\n' "$1" ;;
        *.*) printf '%s.0\n' "$1" ;;
        *) printf '%s.0.0\n' "$1" ;;
    esac
}
