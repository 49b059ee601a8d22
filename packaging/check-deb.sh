#!/usr/bin/env bash
# Checks the packages built by build-deb.sh:
#   packaging/check-deb.sh [OUTDIR] [--keep]     install them (root or sudo),
#                                                check, remove them again
#   packaging/check-deb.sh [OUTDIR] --extract    unpack them into a temporary
#                                                root instead (no root needed,
#                                                nothing installed)
# OUTDIR defaults to build-deb/. The checks:
# - the plugin loads from the packaged path and registers florence2 (and
#   florence2overlay, florence2publish)
# - the pkg-config file and header compile the read-metadata example
# - florence2-cli and florence2-download run
# - with the golden tiny model (F2_GOLDEN_DIR, default ../shared/golden), the
#   read-metadata example built against the package runs <OD> on lavapipe
#   through the packaged plugin and prints a result
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=build-deb
MODE=install
KEEP=0
for a in "$@"; do
  case "$a" in
    --keep) KEEP=1 ;;
    --extract) MODE=extract ;;
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
  if [ "$MODE" = install ] && [ "$KEEP" = 0 ]; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${PKGS[@]}" >/dev/null || true
  fi
  rm -rf "$TMP"
}
TMP=$(mktemp -d)
trap cleanup EXIT

# A registry of its own and only the packaged plugin folder: nothing from a
# build tree can answer for the packaged plugin.
export GST_REGISTRY=$TMP/registry.bin
unset GST_PLUGIN_PATH GST_PLUGIN_PATH_1_0 GST_PLUGIN_SYSTEM_PATH_1_0
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
if [ "$MODE" = install ]; then
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${debs[@]}"
  unset GST_PLUGIN_SYSTEM_PATH
  ROOT=""
  PLUGIN_RE="Filename +(/usr)?/lib/$MULTIARCH/gstreamer-1.0/libgstflorence2.so"
else
  ROOT=$TMP/root
  for d in "${debs[@]}"; do dpkg-deb -x "$d" "$ROOT"; done
  # the system's plugins (videotestsrc, ...) plus the unpacked one
  export GST_PLUGIN_SYSTEM_PATH=$ROOT/usr/lib/$MULTIARCH/gstreamer-1.0:/usr/lib/$MULTIARCH/gstreamer-1.0
  export LD_LIBRARY_PATH=$ROOT/usr/lib/$MULTIARCH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export PATH=$ROOT/usr/bin:$PATH
  # the .pc file says prefix=/usr: a copy that points into the unpacked root
  mkdir -p "$TMP/pc"
  sed "s|^prefix=/usr|prefix=$ROOT/usr|" \
    "$ROOT/usr/lib/$MULTIARCH/pkgconfig/gstreamer-florence2-1.0.pc" >"$TMP/pc/gstreamer-florence2-1.0.pc"
  export PKG_CONFIG_PATH=$TMP/pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  PLUGIN_RE="Filename +$ROOT/usr/lib/$MULTIARCH/gstreamer-1.0/libgstflorence2.so"
fi

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

check "gst-inspect-1.0 florence2" gst-inspect-1.0 florence2
check "gst-inspect-1.0 florence2overlay" gst-inspect-1.0 florence2overlay
check "gst-inspect-1.0 florence2publish" gst-inspect-1.0 florence2publish
check "the plugin is the packaged one" bash -c "gst-inspect-1.0 florence2 | grep -Eq '$PLUGIN_RE'"
check "pkg-config gstreamer-florence2-1.0" pkg-config --exists gstreamer-florence2-1.0
check "read-metadata.c builds against the packaged API" bash -c \
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
  check "the packaged plugin runs <OD> on the tiny model" bash -c \
    "'$TMP/read-metadata' --model '$GOLDEN/tiny/model' --num-buffers 1 \
       max-new-tokens=8 | grep -q 'task <OD>'"
else
  echo "skip the packaged plugin run: no golden tiny model (F2_GOLDEN_DIR)"
fi

exit $fail
