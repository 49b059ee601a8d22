#!/usr/bin/env bash
# Installs the packages built by build-deb.sh and checks them:
#   packaging/check-deb.sh [OUTDIR] [--keep]    (default build-deb/)
# - the plugin loads and registers florence2 (and florence2overlay when built)
# - the pkg-config file and header compile the read-metadata example
# - florence2-cli and florence2-download run
# - with the golden tiny model (F2_GOLDEN_DIR, default ../shared/golden), the
#   installed read-metadata example runs <OD> on lavapipe through the installed
#   plugin and prints a result
# The packages are removed again at the end unless --keep is given. Needs root
# (or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=build-deb
KEEP=0
for a in "$@"; do
  case "$a" in
    --keep) KEEP=1 ;;
    *) OUT=$a ;;
  esac
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
PKGS=(gstreamer1.0-florence2 libgstflorence2meta-1.0-0 libgstflorence2meta-1.0-dev florence2-tools)
debs=()
for p in "${PKGS[@]}"; do
  f=$(compgen -G "$OUT/${p}_*.deb" | head -n 1 || true)
  [ -n "$f" ] || { echo "check-deb.sh: no ${p}_*.deb in $OUT: run packaging/build-deb.sh" >&2; exit 1; }
  debs+=("$(realpath "$f")")
done

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  if [ "$KEEP" = 0 ]; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${PKGS[@]}" >/dev/null || true
  fi
  rm -rf "$TMP"
}
TMP=$(mktemp -d)
trap cleanup EXIT

$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${debs[@]}"

fail=0
check() {
  local what=$1
  shift
  if "$@" >"$TMP/out" 2>&1; then
    echo "ok   $what"
  else
    echo "FAIL $what"
    sed 's/^/     /' "$TMP/out" | tail -n 20
    fail=1
  fi
}

# A registry of its own and only the system plugin folders: nothing from a
# build tree can answer for the installed plugin.
export GST_REGISTRY=$TMP/registry.bin
unset GST_PLUGIN_PATH GST_PLUGIN_PATH_1_0 GST_PLUGIN_SYSTEM_PATH GST_PLUGIN_SYSTEM_PATH_1_0

check "gst-inspect-1.0 florence2" gst-inspect-1.0 florence2
if gst-inspect-1.0 florence2 2>/dev/null | grep -q florence2overlay ||
   [ -f overlay/meson.build ]; then
  check "gst-inspect-1.0 florence2overlay" gst-inspect-1.0 florence2overlay
fi
check "plugin in the system folder" bash -c \
  'gst-inspect-1.0 florence2 | grep -Eq "Filename +(/usr)?/lib/[^ ]*/gstreamer-1.0/libgstflorence2.so"'
check "pkg-config gstreamer-florence2-1.0" pkg-config --exists gstreamer-florence2-1.0
check "read-metadata.c builds against the installed API" bash -c \
  "cc -o '$TMP/read-metadata' examples/read-metadata.c \$(pkg-config --cflags --libs gstreamer-florence2-1.0)"
check "florence2-cli --help" florence2-cli --help
check "florence2-download --help" florence2-download --help
check "florence2-download passes a local directory through" bash -c \
  "mkdir -p '$TMP/m' && echo {} > '$TMP/m/config.json' && echo > '$TMP/m/tokenizer.json' &&
   echo > '$TMP/m/model.safetensors' && [ \"\$(florence2-download '$TMP/m')\" = '$TMP/m' ]"

GOLDEN=${F2_GOLDEN_DIR:-../shared/golden}
if [ -f "$GOLDEN/tiny/model/config.json" ]; then
  ICD=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json
  [ -n "${VK_ICD_FILENAMES:-}" ] || [ ! -f "$ICD" ] || export VK_ICD_FILENAMES=$ICD
  check "installed plugin runs <OD> on the tiny model" bash -c \
    "'$TMP/read-metadata' --model '$GOLDEN/tiny/model' --num-buffers 1 \
       max-new-tokens=8 | grep -q 'task <OD>'"
else
  echo "skip installed plugin run: no golden tiny model (F2_GOLDEN_DIR)"
fi

exit $fail
