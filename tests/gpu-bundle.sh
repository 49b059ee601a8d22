#!/usr/bin/env bash
# Makes a self-contained bundle for checking and timing the Vulkan backend on
# a machine with a GPU that cannot build the project (no compiler, no Debian
# packages, maybe not even a Vulkan loader): a release build of the CLI, the
# benchmarks, the kernel and golden tests, the shared libraries they load
# beyond glibc (the Vulkan loader included), the Khronos validation layer,
# the tiny golden data and the Florence-2 configs, compressed into one
# folder of at most 64 MiB. Copy the folder to the GPU machine and run
#   bash BUNDLE/gpu-check.sh [--device NAME] [REPORT]
# there (see tests/gpu-check.sh).
#
#   tests/gpu-bundle.sh [--build-dir DIR] [--no-validation] [OUTDIR]
#
# --build-dir  the release build to bundle (default build-release; configured
#              with --buildtype=release and built here when missing)
# OUTDIR       where the bundle goes (default BUILD-DIR/gpu-bundle; replaced)
# Environment: F2_GOLDEN_DIR, F2_CONFIGS_DIR override the data the build's
# tests use; NINJA_JOBS (default 2); F2_BUNDLE_MAX_BYTES (default 64 MiB).
set -u
set -o pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build="build-release"
validation=yes
outdir=

usage () {
  sed -n '2,/^set -u/p' "$0" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=${2:?--build-dir needs a directory}; shift 2 ;;
    --build-dir=*) build=${1#*=}; shift ;;
    --no-validation) validation=no; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "gpu-bundle: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) outdir=$1; shift ;;
  esac
done

die () { echo "gpu-bundle: error: $*" >&2; exit 1; }
note () { echo "gpu-bundle: $*"; }

case "$build" in /*) ;; *) build=$src/$build ;; esac
[ -n "$outdir" ] || outdir=$build/gpu-bundle
case "$outdir" in /*) ;; *) outdir=$PWD/$outdir ;; esac
max_bytes=${F2_BUNDLE_MAX_BYTES:-67108864}

for tool in meson ninja python3 ldd tar xz; do
  command -v "$tool" >/dev/null || die "$tool is needed to make the bundle"
done

# ---------------------------------------------------------------- the build
if [ ! -f "$build/build.ninja" ]; then
  note "configuring a release build in $build"
  meson setup "$build" "$src" --buildtype=release >/dev/null \
    || die "meson setup $build failed"
fi
buildtype=$(meson introspect --buildoptions "$build" | python3 -c '
import json, sys
print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "buildtype"))')
[ "$buildtype" = release ] \
  || note "warning: $build is a '$buildtype' build, not release; timings will be off"

kernel_tests="attention conv elementwise matmul norm reduce resample"
targets="tools/florence2-cli tests/bench-florence2 tests/test-golden-stages tests/test-golden-e2e tests/test-net-ops"
for k in $kernel_tests; do targets="$targets tests/test-kernels-$k"; done
# bench-kernels is built only where OpenBLAS (its CPU baseline) was found;
# test-contexts (streams on one model) and test-batch (batches across
# streams) are bundled where the tree has them
all_targets=$(ninja -C "$build" -t targets all 2>/dev/null)
for t in tests/bench-kernels tests/test-contexts tests/test-batch; do
  if echo "$all_targets" | grep "^$t:" >/dev/null; then
    targets="$targets $t"
  else
    note "warning: no $t target; bundling without it"
  fi
done
note "building $(echo "$targets" | wc -w) programs in $build"
# shellcheck disable=SC2086  # the target list is split on purpose
ninja -C "$build" -j "${NINJA_JOBS:-2}" $targets >"$build/gpu-bundle-build.log" 2>&1 \
  || { tail -30 "$build/gpu-bundle-build.log" >&2; die "the build failed (log: $build/gpu-bundle-build.log)"; }

# The data the build's tests read (their F2_GOLDEN_DIR and F2_CONFIGS_DIR)
test_env=$(meson introspect --tests "$build" | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    env = t.get("env") or {}
    if "F2_GOLDEN_DIR" in env:
        print(env["F2_GOLDEN_DIR"]); print(env.get("F2_CONFIGS_DIR", "")); break')
golden=${F2_GOLDEN_DIR:-$(echo "$test_env" | sed -n 1p)}
configs=${F2_CONFIGS_DIR:-$(echo "$test_env" | sed -n 2p)}
[ -f "$golden/tiny/index.json" ] || die "no golden data in '$golden' (set F2_GOLDEN_DIR)"
[ -f "$configs/base/config.json" ] || die "no Florence-2 configs in '$configs' (set F2_CONFIGS_DIR)"

# gpu-check.sh runs the Vulkan kernel and golden tests it knows by name;
# say so when the build has one it does not bundle
meson introspect --tests "$build" | python3 -c '
import json, os, sys
bundled = set(sys.argv[1].split())
for t in json.load(sys.stdin):
    suites = [s.split(":")[-1] for s in t["suite"]]
    exe = os.path.basename(t["cmd"][0])
    if ("kernels" in suites or "golden" in suites) and exe.startswith("test-") \
            and exe not in bundled:
        print("gpu-bundle: note: %s (%s) is not in the bundle; gpu-check.sh does not run it"
              % (t["name"], exe))' "$(for t in $targets; do basename "$t"; done)"

# ---------------------------------------------------------------- staging
work=$(mktemp -d "${TMPDIR:-/tmp}/f2-gpu-bundle.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$work"' EXIT
stage=$work/stage
mkdir -p "$stage/bin" "$stage/lib" "$stage/tests" "$stage/data/golden/tiny" \
  "$stage/data/florence2-configs" "$stage/lib/gio-modules"

for t in $targets; do
  cp "$build/$t" "$stage/bin/" || die "cannot copy $build/$t"
done
cp "$src/tests/test-golden-cli.py" "$src/tests/test-wide-beams.py" \
  "$src/tests/bench-transformers.py" "$stage/tests/"

# Shared libraries: everything the programs load beyond glibc itself, which
# the GPU machine has (its version is checked there against GLIBC_REQUIRED)
is_glibc () {
  case "$1" in
    linux-vdso.so.*|ld-linux*|libc.so.*|libm.so.*|libmvec.so.*|libpthread.so.*|\
    libdl.so.*|librt.so.*|libresolv.so.*|libutil.so.*|libanl.so.*|libnsl.so.*) return 0 ;;
  esac
  return 1
}
add_libs_of () {   # FILE: copy the non-glibc libraries FILE loads into lib/
  local line name path
  while read -r line; do
    name=${line%% *}
    is_glibc "$name" && continue
    case "$line" in
      *"=> not found"*) die "$1 needs $name, which is not installed" ;;
      *"=> /"*) path=${line#*=> }; path=${path%% (*} ;;
      *) continue ;;
    esac
    [ -e "$stage/lib/$name" ] || cp -L "$path" "$stage/lib/$name" \
      || die "cannot copy $path"
  done < <(ldd "$1" | sed 's/^[[:space:]]*//')
}
for exe in "$stage"/bin/*; do add_libs_of "$exe"; done
[ -e "$stage/lib/libvulkan.so.1" ] || die "the programs do not load libvulkan.so.1?"

# The Khronos validation layer, next to a manifest that names it relatively
if [ "$validation" = yes ]; then
  layer_json=
  for d in /usr/share/vulkan/explicit_layer.d /usr/local/share/vulkan/explicit_layer.d \
           /etc/vulkan/explicit_layer.d; do
    [ -f "$d/VkLayer_khronos_validation.json" ] && { layer_json=$d/VkLayer_khronos_validation.json; break; }
  done
  if [ -z "$layer_json" ]; then
    note "warning: no Khronos validation layer installed (Debian: vulkan-validationlayers); bundling without it"
    validation=no
  else
    mkdir -p "$stage/layers"
    layer_lib=$(python3 - "$layer_json" "$stage/layers" <<'EOF'
import json, os, shutil, subprocess, sys
src, dest = sys.argv[1], sys.argv[2]
manifest = json.load(open(src))
lib = manifest["layer"]["library_path"]
if "/" not in lib:
    ldconfig = "ldconfig" if shutil.which("ldconfig") else "/sbin/ldconfig"
    out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True).stdout
    found = [l.split("=>")[-1].strip() for l in out.splitlines()
             if l.strip().startswith(lib + " ") and "x86-64" in l]
    lib = found[0] if found else lib
elif not os.path.isabs(lib):
    lib = os.path.normpath(os.path.join(os.path.dirname(src), lib))
manifest["layer"]["library_path"] = "./" + os.path.basename(lib)
json.dump(manifest, open(os.path.join(dest, os.path.basename(src)), "w"), indent=4)
print(lib)
EOF
    ) || die "cannot read $layer_json"
    [ -f "$layer_lib" ] || die "the validation layer's library $layer_lib is missing"
    cp -L "$layer_lib" "$stage/layers/" || die "cannot copy $layer_lib"
    add_libs_of "$layer_lib"
  fi
fi

# Data: the tiny golden model and reference outputs (not the
# pytorch_model.bin copy, which only the loader's unit tests read), and the
# base and large configs with their tokenizer for bench-florence2
(cd "$golden/tiny" && tar --exclude=./model-bin -cf - .) \
  | (cd "$stage/data/golden/tiny" && tar -xf -) || die "cannot copy $golden/tiny"
[ -f "$golden/README.md" ] && cp "$golden/README.md" "$stage/data/golden/"
for size in base large; do
  [ -d "$configs/$size" ] && cp -r "$configs/$size" "$stage/data/florence2-configs/"
done
chmod -R u+w "$stage/data"
# gdk-pixbuf decodes PNG and JPEG itself; an empty loader list keeps it from
# opening the GPU machine's own (other-version) loader modules
printf '# no external gdk-pixbuf loaders: PNG and JPEG are built in\n' \
  > "$stage/data/gdk-pixbuf-loaders.cache"

# The C++ runtime goes to lib/fallback: gpu-check.sh uses the GPU machine's
# own where it is new enough (it may be newer than ours, and the GPU driver
# may load it too), ours only where it is missing or too old.
mkdir -p "$stage/lib/fallback"
for l in libstdc++.so.6 libgcc_s.so.1; do
  [ -e "$stage/lib/$l" ] && mv "$stage/lib/$l" "$stage/lib/fallback/"
done

# What the bundle needs of the GPU machine: the newest symbol versions of
# glibc (for the main part and for the fallback C++ runtime) and of the C++
# runtime, in REQUIREMENTS for gpu-check.sh
newest () {   # PREFIX FILE...: the newest PREFIX_x.y symbol version the files need
  local prefix=$1 f
  shift
  for f in "$@"; do
    [ -f "$f" ] && objdump -T "$f" 2>/dev/null
  done | grep -o "(${prefix}_[0-9][0-9.]*)" | tr -d '()' | sed "s/^${prefix}_//" \
    | sort -uV | tail -1
}
command -v objdump >/dev/null || die "objdump (binutils) is needed to read symbol versions"
main_files=("$stage"/bin/* "$stage"/lib/*.so* "$stage"/layers/*.so)
{
  echo "glibc=$(newest GLIBC "${main_files[@]}")"
  echo "glibc_fallback=$(newest GLIBC "$stage"/lib/fallback/*)"
  echo "glibcxx=$(newest GLIBCXX "${main_files[@]}")"
  echo "cxxabi=$(newest CXXABI "${main_files[@]}")"
} > "$stage/REQUIREMENTS"
glibc_required=$(sed -n 's/^glibc=//p' "$stage/REQUIREMENTS")

{
  echo "gst-florence2 GPU check bundle"
  echo "made: $(date -u '+%Y-%m-%d %H:%M UTC') on $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null | tr -d '"')"
  echo "source: $(git -C "$src" describe --always --dirty 2>/dev/null || echo unknown)"
  echo "build: $build ($buildtype)"
  echo "needs: glibc $glibc_required; with the bundled C++ runtime" \
    "$(sed -n 's/^glibc_fallback=//p' "$stage/REQUIREMENTS") (used where the machine's" \
    "lacks GLIBCXX_$(sed -n 's/^glibcxx=//p' "$stage/REQUIREMENTS")," \
    "CXXABI_$(sed -n 's/^cxxabi=//p' "$stage/REQUIREMENTS"))"
  echo "validation layer: $validation"
  echo "programs: $(cd "$stage/bin" && echo *)"
  echo "libraries: $(cd "$stage/lib" && find . -type f -printf '%P\n' | sort | tr '\n' ' ')"
} > "$stage/MANIFEST"

# ---------------------------------------------------------------- packing
# The payload is one xz tarball (the weights and libraries take 170 MB
# unpacked); gpu-check.sh unpacks it on the GPU machine with the system's
# tar and xz, the bundled xz, or python3.
pack () {
  rm -rf "$outdir.new"
  mkdir -p "$outdir.new/boot" || die "cannot create $outdir.new"
  note "compressing the payload (a minute or two)"
  tar -C "$stage" -cf - . | xz -6 -T "${NINJA_JOBS:-2}" > "$outdir.new/payload.tar.xz" \
    || die "cannot write $outdir.new/payload.tar.xz"
  cp "$src/tests/gpu-check.sh" "$outdir.new/gpu-check.sh"
  cp "$stage/MANIFEST" "$outdir.new/MANIFEST"
  # xz and its library, for a machine without xz (they need only glibc)
  cp -L "$(command -v xz)" "$outdir.new/boot/xz"
  local lzma
  lzma=$(ldd "$(command -v xz)" | awk '/liblzma/ {print $3}')
  [ -n "$lzma" ] && cp -L "$lzma" "$outdir.new/boot/"
  cat > "$outdir.new/README.txt" <<'EOF'
gst-florence2 GPU check bundle (made by tests/gpu-bundle.sh).
On the GPU machine:   bash gpu-check.sh [--device NAME] [--quick] [REPORT]
It unpacks payload.tar.xz into a scratch folder, finds the Vulkan driver,
runs the kernel tests, the golden suite and the benchmarks, and writes
REPORT (default $OUT/report.txt, else ./gpu-check-report.txt) with the logs
beside it. bash gpu-check.sh --help tells more. MANIFEST says what is inside.
EOF
}
pack
size=$(du -sb "$outdir.new" | cut -f1)
if [ "$size" -gt "$max_bytes" ] && [ -d "$stage/layers" ]; then
  note "warning: $size bytes is over $max_bytes; leaving the validation layer out"
  rm -rf "$stage/layers"
  sed -i 's/^validation layer: .*/validation layer: no (left out for size)/' "$stage/MANIFEST"
  pack
  size=$(du -sb "$outdir.new" | cut -f1)
fi
[ "$size" -le "$max_bytes" ] \
  || die "the bundle is $size bytes, over the limit of $max_bytes (in $outdir.new)"
rm -rf "$outdir"
mv "$outdir.new" "$outdir" || die "cannot move the bundle to $outdir"
unpacked=$(du -sb "$stage" | cut -f1)
note "bundle ready: $outdir ($((size / 1048576)) MiB; $((unpacked / 1048576)) MiB unpacked)"
note "run on the GPU machine: bash $(basename "$outdir")/gpu-check.sh [--device NAME] [REPORT]"
