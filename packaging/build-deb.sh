#!/usr/bin/env bash
# Builds the Debian packages from the working tree:
#   packaging/build-deb.sh [OUTDIR]        (default build-deb/)
# Copies the tracked and untracked-but-not-ignored files into OUTDIR/src, puts
# packaging/debian there as debian/ (dpkg-buildpackage wants it at the source
# root), runs `dpkg-buildpackage -us -uc -b`, and leaves the .deb files in
# OUTDIR. Then run packaging/check-deb.sh OUTDIR to install and try them.
# Needs the Build-Depends of packaging/debian/control (packaging/install-deps.sh
# installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-build-deb}")
SRC=$OUT/src

rm -rf "$SRC"
mkdir -p "$SRC"
rm -f "$OUT"/*.deb "$OUT"/*.buildinfo "$OUT"/*.changes
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -C "$SRC" -xf -
cp -r packaging/debian "$SRC/debian"

cd "$SRC"
dpkg-checkbuilddeps || {
  echo "build-deb.sh: missing build dependencies: run packaging/install-deps.sh" >&2
  exit 1
}
start=$(date +%s)
opts="parallel=$(nproc)"
[ -z "${DEB_BUILD_OPTIONS:-}" ] || opts="$DEB_BUILD_OPTIONS $opts"
DEB_BUILD_OPTIONS=$opts dpkg-buildpackage -us -uc -b
echo "build-deb.sh: built in $(($(date +%s) - start)) s:" >&2
ls -1 "$OUT"/*.deb >&2
