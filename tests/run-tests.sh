#!/usr/bin/env bash
# Installs the Debian packages the project needs, builds, and runs every test:
# the Vulkan tests on Mesa's CPU Vulkan device (lavapipe), the rest on the
# reference and cpu backends. Idempotent: run it again at any time.
#   tests/run-tests.sh            everything
#   tests/run-tests.sh --suite unit   extra arguments go to `meson test`
set -euo pipefail
cd "$(dirname "$0")/.."

./packaging/install-deps.sh

# Force Mesa's CPU Vulkan driver so results do not depend on the machine's GPU
if [ -z "${VK_ICD_FILENAMES:-}" ] && [ -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ]; then
  export VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json
fi

if [ ! -f build/build.ninja ]; then
  meson setup build
else
  meson setup --reconfigure build >/dev/null
fi
ninja -C build
meson test -C build --print-errorlogs --num-processes 2 "$@"

# In CI the reference data sits beside the checkout, so nothing may skip: a
# skipped golden test must not pass for a proven one.
if [ "${CI:-}" = "true" ] && [ $# -eq 0 ]; then
  skipped=$(grep -c '"result": "SKIP"' build/meson-logs/testlog.json || true)
  if [ "$skipped" != "0" ]; then
    echo "error: $skipped test(s) skipped in CI; see build/meson-logs/testlog.txt" >&2
    exit 1
  fi
fi

# In CI (a throw-away machine, as root) also install the Debian packages the
# packaging test built, check the installed plugin with gst-inspect-1.0, and
# remove them again.
if [ "${CI:-}" = "true" ] && [ $# -eq 0 ] && [ -d build/tests/deb ]; then
  packaging/check-deb.sh build/tests/deb
fi
