#!/usr/bin/env bash
# The packaging test (meson suite 'packaging'): builds the Debian packages
# from the working tree into OUTDIR and checks them unpacked, without
# installing anything:
#   packaging/test-deb.sh OUTDIR
# Exits 77 (skipped) where dpkg-buildpackage is not available (not Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: test-deb.sh OUTDIR}
if ! command -v dpkg-buildpackage >/dev/null || ! command -v dh >/dev/null; then
  echo "dpkg-buildpackage or debhelper missing: skipped"
  exit 77
fi
packaging/build-deb.sh "$OUT" >"$OUT.log" 2>&1 || {
  tail -n 40 "$OUT.log"
  echo "test-deb.sh: the package build failed; full log in $OUT.log" >&2
  exit 1
}
grep "build-deb.sh: built in" "$OUT.log"
packaging/check-deb.sh "$OUT" --extract
