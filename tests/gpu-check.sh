#!/usr/bin/env bash
# Checks and times the Vulkan backend on a machine with a GPU, in one call of
# a few minutes, from a bundle made by tests/gpu-bundle.sh: nothing is built
# or installed there. It unpacks the bundle, points the Vulkan loader at the
# NVIDIA driver (or the one given), checks that the device is there, then
# runs, each part under its own time limit and whatever the others did:
#   kernels-*    every compute shader against the reference op, fp32 and
#                fp16, under the Khronos validation layer (when bundled);
#                kernels-matmul-coopmat forces the cooperative-matrix matmul
#   golden-*     the golden suite on the device: stages, end to end, op by
#                op, in fp32 and fp16; stages with every transfer staged;
#                streams on one model; mixed batches; the CLI
#   bench-kernels    matmul kernel throughput
#   bench-florence2-*  Florence-2-base shapes, <OD>, 64 tokens, fp16 and
#                fp32, 1 and 3 beams, per stage
#   torch-transformers  the same stages in Hugging Face transformers' own
#                Florence-2 (random weights, fp16 and fp32, SDPA and eager
#                attention, 1 and 3 beams) where python3 has torch and
#                transformers: the baseline, measured in the same call
#   bench-florence2-*-ops  the same per op kind (--ops)
#   bench-gemv-tiles  the decoder-step kernel's tile choices on a step's shapes
#   bench-florence2-fp16-streams4-*  four streams without and with batching
#   golden-wide-beams  16 beams through the CLI, the same ids on the
#                reference, cpu and Vulkan devices (last; not with --quick)
# and writes one report (the summary table, the device, each part's result
# and its key lines; the benchmarks in full) with the full logs beside it.
#
#   bash BUNDLE/gpu-check.sh [options] [REPORT]
#
# REPORT       the report file (default $OUT/report.txt when OUT is set, else
#              ./gpu-check-report.txt); the logs go to gpu-check-logs/ beside it
# --device D   the Vulkan device, an index or part of its name (default
#              $F2_VULKAN_DEVICE, else NVIDIA; 0 with F2_GPU_CHECK_ICD)
# --quick      a short run: 4 tokens, 1 timed frame, fewer benchmark runs,
#              no wide-beam test (for trying the bundle on a slow device)
# --budget S   seconds for the whole run (default 540); a part gets at most
#              what is left, and parts that find no time left are skipped
# --only LIST  only the parts matching these comma-separated globs
#              (e.g. 'golden-*,bench-florence2-*'); the device probe always runs
# --bundle DIR the bundle (default: the folder this script is in)
# --workdir DIR  where to unpack it (default: a new folder under $TMPDIR or /tmp)
# Environment: F2_GPU_CHECK_ICD=FILE uses that Vulkan driver manifest instead
# of searching for NVIDIA's (e.g. Mesa's lvp_icd.x86_64.json for a trial run);
# F2_GPU_CHECK_BUNDLED_CXX=1 uses the bundled C++ runtime even where the
# machine's would do.
#
# Exit status: 0 every part passed or skipped, 1 some part failed or timed
# out, 2 the bundle or the device could not be set up (nothing ran).
set -u

start_time=$(date +%s)
quick=no
device=${F2_VULKAN_DEVICE:-}
budget=540
only=
bundle=
workdir=
report=

usage () {
  sed -n '2,/^set -u/p' "$0" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=yes; shift ;;
    --device) device=${2:?--device needs a name}; shift 2 ;;
    --device=*) device=${1#*=}; shift ;;
    --budget) budget=${2:?--budget needs seconds}; shift 2 ;;
    --budget=*) budget=${1#*=}; shift ;;
    --only) only=${2:?--only needs a list}; shift 2 ;;
    --only=*) only=${1#*=}; shift ;;
    --bundle) bundle=${2:?--bundle needs a folder}; shift 2 ;;
    --bundle=*) bundle=${1#*=}; shift ;;
    --workdir) workdir=${2:?--workdir needs a folder}; shift 2 ;;
    --workdir=*) workdir=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "gpu-check: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) report=$1; shift ;;
  esac
done
case "$budget" in ''|*[!0-9]*) echo "gpu-check: --budget takes whole seconds" >&2; exit 2 ;; esac

if [ -z "$report" ]; then
  if [ -n "${OUT:-}" ]; then report=$OUT/report.txt; else report=$PWD/gpu-check-report.txt; fi
fi
mkdir -p "$(dirname "$report")" || { echo "gpu-check: cannot create $(dirname "$report")" >&2; exit 2; }
report=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
logs=$(dirname "$report")/gpu-check-logs
rm -rf "$logs"
mkdir -p "$logs"
: > "$report"

say () { echo "gpu-check: $*"; }
ldcache () {   # the dynamic linker's cache (ldconfig is often outside PATH)
  if command -v ldconfig >/dev/null; then ldconfig -p
  elif [ -x /sbin/ldconfig ]; then /sbin/ldconfig -p
  fi 2>/dev/null
}
rep () { printf '%s\n' "$*" >> "$report"; }

# ------------------------------------------------------------ results table
names=()
results=()
times=()
record () {   # NAME RESULT SECONDS
  names+=("$1"); results+=("$2"); times+=("$3")
}
summary () {
  local i line
  echo
  echo "== summary ($(( $(date +%s) - start_time )) s)"
  printf '%-34s %-9s %8s\n' part result seconds
  for i in "${!names[@]}"; do
    printf '%-34s %-9s %8s\n' "${names[$i]}" "${results[$i]}" "${times[$i]}"
  done
  line=$(printf '%s\n' "${results[@]}" | sort | uniq -c | awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2}')
  echo "totals: $line"
}
finish () {   # EXIT-STATUS
  local table
  table=$(summary)
  rep ""
  rep "$table"
  echo "$table"
  say "report: $report (logs: $logs)"
  exit "$1"
}
fatal () {   # MESSAGE: setup failed, nothing more can run
  say "FATAL: $*" >&2
  rep ""
  rep "FATAL: $*"
  finish 2
}

rep "gst-florence2 GPU check, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
rep "host: $(uname -n) $(uname -srm)"
rep "mode: $([ "$quick" = yes ] && echo quick || echo full), budget ${budget} s${only:+, only $only}"

# ------------------------------------------------------------ the bundle
here=$(cd "$(dirname "$0")" && pwd)
[ -n "$bundle" ] || bundle=$here
bundle=$(cd "$bundle" 2>/dev/null && pwd) || fatal "no bundle folder $bundle"

run_xz () {   # xz with the arguments given: the system's, else the bundled one
  if command -v xz >/dev/null; then
    xz "$@"
  elif [ -f "$bundle/boot/xz" ]; then
    # through the dynamic loader: works even where the copy lost its x bit
    /lib64/ld-linux-x86-64.so.2 --library-path "$bundle/boot" "$bundle/boot/xz" "$@"
  else
    return 127
  fi
}
unpack () {   # PAYLOAD DEST
  if command -v tar >/dev/null && run_xz -dc "$1" | tar -C "$2" -xf -; then
    return 0
  fi
  if command -v python3 >/dev/null; then
    say "unpacking with python3"
    python3 - "$1" "$2" <<'EOF'
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    if hasattr(tarfile, "data_filter"):
        t.extractall(sys.argv[2], filter="data")
    else:
        t.extractall(sys.argv[2])
EOF
    return $?
  fi
  return 1
}

if [ -x "$bundle/bin/florence2-cli" ]; then
  root=$bundle
elif [ -f "$bundle/payload.tar.xz" ]; then
  if [ -z "$workdir" ]; then
    workdir=$(mktemp -d "${TMPDIR:-/tmp}/f2-gpu-check.XXXXXX") || fatal "mktemp failed"
  fi
  mkdir -p "$workdir" || fatal "cannot create $workdir"
  root=$(cd "$workdir" && pwd)
  say "unpacking the bundle into $root"
  t0=$(date +%s)
  unpack "$bundle/payload.tar.xz" "$root" \
    || fatal "cannot unpack $bundle/payload.tar.xz (needs tar and xz, or python3)"
  record unpack PASS $(( $(date +%s) - t0 ))
else
  fatal "$bundle holds no bundle (payload.tar.xz or bin/); make one with tests/gpu-bundle.sh"
fi
[ -x "$root/bin/florence2-cli" ] || fatal "the bundle has no bin/florence2-cli"
rep "bundle: $bundle"
awk '{print "  " $0}' "$root/MANIFEST" >> "$report" 2>/dev/null

# The C++ runtime: this machine's where it has the symbol versions the
# bundle needs (the GPU driver may load it too, and it may be newer than the
# bundle's), else the bundled one, which needs a newer glibc
requirement () { sed -n "s/^$1=//p" "$root/REQUIREMENTS" 2>/dev/null; }
has_version () {   # LIBRARY SYMBOL-VERSION: whether the library defines it
  grep -aoE "${2%%_*}_[0-9][0-9.]*" "$1" 2>/dev/null | grep -qxF "$2"
}
cxx_runtime=bundled
sys_cxx=$(ldcache | awk '/libstdc\+\+\.so\.6 .*x86-64/ {print $NF; exit}')
if [ -z "$sys_cxx" ]; then
  for d in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 /usr/lib64; do
    [ -e "$d/libstdc++.so.6" ] && { sys_cxx=$d/libstdc++.so.6; break; }
  done
fi
if [ -n "$sys_cxx" ] && [ -z "${F2_GPU_CHECK_BUNDLED_CXX:-}" ] \
   && has_version "$sys_cxx" "GLIBCXX_$(requirement glibcxx)" \
   && has_version "$sys_cxx" "CXXABI_$(requirement cxxabi)"; then
  cxx_runtime="this machine's ($sys_cxx)"
fi

# The bundled programs need a glibc at least as new as the one they were
# built against
need=$(requirement glibc)
if [ "$cxx_runtime" = bundled ]; then
  need=$(printf '%s\n%s\n' "$need" "$(requirement glibc_fallback)" | sort -V | tail -1)
fi
have=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
rep "glibc: ${have:-unknown} here, ${need:-unknown} needed; C++ runtime: $cxx_runtime"
if [ -n "$have" ] && [ -n "$need" ] \
   && [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]; then
  fatal "this machine's glibc $have is older than the $need the bundle needs (C++ runtime: $cxx_runtime)"
fi

# ------------------------------------------------------------ environment
libs=$root/lib
[ "$cxx_runtime" = bundled ] && libs=$libs:$root/lib/fallback
host_ld_path=${LD_LIBRARY_PATH:-}   # for programs that are not the bundle's
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export F2_GOLDEN_DIR=$root/data/golden
export F2_CONFIGS_DIR=$root/data/florence2-configs
export G_DEBUG=fatal-criticals
export GDK_PIXBUF_MODULE_FILE=$root/data/gdk-pixbuf-loaders.cache
export GIO_MODULE_DIR=$root/lib/gio-modules
export GIO_USE_VFS=local

# NVIDIA's Vulkan driver: its manifest where the system has one, else one
# written here for the driver library when that is installed without it
{
  echo "== /dev/nvidia*"; find /dev -maxdepth 1 -name 'nvidia*' 2>&1 | sort | head -20
  echo "== nvidia-smi"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi 2>&1 | head -30
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
  else
    echo "(no nvidia-smi)"
  fi
  echo "== NVIDIA and Vulkan libraries known to the dynamic linker"
  ldcache | grep -Ei 'nvidia|libvulkan|GLX_' | head -40
} > "$logs/driver.log" 2>&1
gpu_name=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
rep "nvidia-smi: ${gpu_name:-not available}"

icd=
icd_how=
if [ -n "${F2_GPU_CHECK_ICD:-}" ]; then
  [ -f "$F2_GPU_CHECK_ICD" ] || fatal "F2_GPU_CHECK_ICD=$F2_GPU_CHECK_ICD is not a file"
  icd=$F2_GPU_CHECK_ICD
  icd_how="given by F2_GPU_CHECK_ICD"
  [ -n "$device" ] || device=0
else
  dirs="/usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d /usr/local/etc/vulkan/icd.d"
  for d in $(echo "${XDG_DATA_DIRS:-}:${XDG_CONFIG_DIRS:-}" | tr ':' ' '); do
    dirs="$dirs $d/vulkan/icd.d"
  done
  for d in $dirs; do
    for f in "$d"/nvidia_icd*.json; do
      [ -f "$f" ] && { icd=$f; break 2; }
    done
  done
  if [ -z "$icd" ]; then
    icd=$(find /usr /etc /opt -name 'nvidia_icd*.json' 2>/dev/null | head -1)
  fi
  if [ -n "$icd" ]; then
    icd_how="found"
  else
    # the driver's Vulkan entry points live in libGLX_nvidia.so.0
    lib=$(ldcache | awk '/libGLX_nvidia\.so\.0 .*x86-64/ {print $NF; exit}')
    if [ -z "$lib" ]; then
      for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/nvidia/lib64 \
               /usr/local/nvidia/lib $(echo "${LD_LIBRARY_PATH:-}" | tr ':' ' '); do
        [ -e "$d/libGLX_nvidia.so.0" ] && { lib=$d/libGLX_nvidia.so.0; break; }
      done
    fi
    if [ -n "$lib" ]; then
      icd=$(dirname "$report")/gpu-check-nvidia_icd.json
      printf '{\n  "file_format_version": "1.0.0",\n  "ICD": {\n    "library_path": "%s",\n    "api_version": "1.3.0"\n  }\n}\n' \
        "$lib" > "$icd"
      icd_how="written for $lib (the system has no manifest)"
    fi
  fi
fi
[ -n "$device" ] || device=NVIDIA
if [ -n "$icd" ]; then
  export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd
  rep "Vulkan driver manifest: $icd ($icd_how)"
  awk '{print "  " $0}' "$icd" >> "$report"
else
  rep "Vulkan driver manifest: none found (no nvidia_icd*.json, no libGLX_nvidia.so.0); trying the loader's defaults"
  say "warning: no NVIDIA Vulkan driver manifest or libGLX_nvidia.so.0 found; see $logs/driver.log"
fi
export F2_VULKAN_DEVICE=$device

validation=no
if [ -f "$root/layers/VkLayer_khronos_validation.json" ]; then
  validation=yes
fi
rep "validation layer: $validation"
rep "device asked for: $device"

# ------------------------------------------------------------ running parts
have_timeout=no
command -v timeout >/dev/null && have_timeout=yes

run_limited () {   # SECONDS CMD...: the command under a time limit
  local t=$1 pid watchdog rc
  shift
  if [ "$have_timeout" = yes ]; then
    timeout -k 10 "$t" "$@"
    return $?
  fi
  "$@" &
  pid=$!
  ( sleep "$t"; kill -TERM "$pid" 2>/dev/null; sleep 10; kill -KILL "$pid" 2>/dev/null ) &
  watchdog=$!
  wait "$pid"
  rc=$?
  kill "$watchdog" 2>/dev/null
  wait "$watchdog" 2>/dev/null
  [ "$rc" -eq 143 ] || [ "$rc" -eq 137 ] && rc=124
  return $rc
}

selected () {   # NAME: whether --only lets this part run
  local glob
  [ -z "$only" ] && return 0
  for glob in $(echo "$only" | tr ',' ' '); do
    # shellcheck disable=SC2254  # the pattern is meant to glob
    case "$1" in $glob) return 0 ;; esac
  done
  return 1
}

# How much of a part's log goes into the report: "tests" keeps the summary
# and failure lines and the last lines of a long log, "all" the whole log
# (the first 400 lines), without the command line it starts with
excerpt () {   # LOG KIND
  if [ "$2" = all ] || [ "$(wc -l < "$1")" -le 40 ]; then
    tail -n +3 "$1" | head -400
  else
    tail -n +3 "$1" | grep -E '^#|FAIL|[Ff]ail|SKIP|[Ss]kip|[Ee]rror|ERROR|[Ww]arning|DIFFER|^diff |identical|worst|disagree|[Vv]alidation|timed out' \
      | grep -Ev '^ok ' | head -60
    echo "... last lines:"
    tail -n +3 "$1" | tail -3
  fi
}

failed=0
run_part () {   # NAME TIMEOUT KIND CMD...
  local name=$1 limit=$2 kind=$3 left t0 t rc result
  shift 3
  selected "$name" || return 0
  left=$(( start_time + budget - $(date +%s) ))
  if [ "$left" -lt 15 ]; then
    record "$name" SKIP-TIME 0
    rep ""; rep "== $name: SKIP (no time left in the budget)"
    say "skip $name (no time left)"
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  say "run  $name (limit ${limit} s)"
  t0=$(date +%s)
  {
    echo "\$ $*"
    echo "(limit ${limit} s; F2_VULKAN_DEVICE=$F2_VULKAN_DEVICE)"
  } > "$logs/$name.log"
  run_limited "$limit" "$@" >> "$logs/$name.log" 2>&1 < /dev/null
  rc=$?
  t=$(( $(date +%s) - t0 ))
  case $rc in
    0) result=PASS ;;
    77) result=SKIP ;;
    124|137) result=TIMEOUT; failed=1 ;;
    *) result="FAIL($rc)"; failed=1 ;;
  esac
  [ "$rc" -eq 124 ] && echo "timed out after ${limit} s" >> "$logs/$name.log"
  record "$name" "$result" "$t"
  say "     $name: $result, ${t} s"
  rep ""
  rep "== $name: $result (${t} s, exit $rc; log gpu-check-logs/$name.log)"
  rep "\$ $*"
  excerpt "$logs/$name.log" "$kind" | sed 's/^/  /' >> "$report"
}

B=$root/bin
G=$root/data/golden/tiny

# The device probe: one token of the tiny model on the device asked for.
# The library's error names every device the loader found.
t0=$(date +%s)
run_limited 120 env VK_LOADER_DEBUG=error,warn "$B/florence2-cli" --model "$G/model" \
  --task '<OD>' --device "$device" --precision fp32 --max-new-tokens 1 --profile \
  "$G/images/shapes_640x480.png" > "$logs/probe.log" 2>&1 < /dev/null
rc=$?
t=$(( $(date +%s) - t0 ))
chosen=$(grep -o '"device":"[^"]*"' "$logs/probe.log" | head -1 | sed 's/"device":"\(.*\)"/\1/')
rep ""
rep "== probe: exit $rc (${t} s, log gpu-check-logs/probe.log)"
grep -v '^{' "$logs/probe.log" | head -40 | sed 's/^/  /' >> "$report"
if [ "$rc" -ne 0 ] || [ -z "$chosen" ]; then
  record probe FAIL "$t"
  tail -5 "$logs/probe.log" >&2
  fatal "no usable Vulkan device '$device' (is the NVIDIA driver's Vulkan part installed? see $logs/probe.log and $logs/driver.log)"
fi
record probe PASS "$t"
rep "device: $chosen"
say "device: $chosen"

if [ "$quick" = yes ]; then
  tokens=4; frames=1; bench_limit=400
else
  tokens=64; frames=2; bench_limit=180
fi

# Kernel tests, under the validation layer where it was bundled (any
# validation message fails a test)
# (kernels-matmul-coopmat: the cooperative-matrix matmul, fp16, forced; a
# SKIP where the device has no VK_NV_cooperative_matrix)
for k in attention conv elementwise matmul matmul-coopmat norm reduce resample; do
  exe=$B/test-kernels-${k%-coopmat}
  args=()
  [ "$k" = matmul-coopmat ] && args=(--coopmat)
  if [ "$validation" = yes ]; then
    run_part "kernels-$k" 150 tests env F2_VULKAN_VALIDATION=1 VK_LAYER_PATH="$root/layers" \
      "$exe" ${args[@]+"${args[@]}"}
  else
    run_part "kernels-$k" 150 tests "$exe" ${args[@]+"${args[@]}"}
  fi
done

# The golden suite on the device
for p in fp32 fp16; do
  run_part "golden-stages-$p" 240 all env F2_TEST_DEVICE=vulkan F2_TEST_PRECISION=$p \
    "$B/test-golden-stages"
  run_part "golden-e2e-$p" 300 all "$B/test-golden-e2e" vulkan "$p"
  run_part "golden-net-ops-$p" 240 all "$B/test-net-ops" "$p"
done
# every transfer through the staging buffer, whatever memory the GPU maps
run_part golden-stages-staging 240 all env F2_TEST_DEVICE=vulkan F2_TEST_PRECISION=fp32 \
  F2_VULKAN_MAP_DEVICE=0 "$B/test-golden-stages"
# streams on one model, each on its own context, at the same time
if [ -x "$B/test-contexts" ]; then
  run_part golden-contexts 300 tests "$B/test-contexts" vulkan "$([ "$quick" = yes ] && echo 2 || echo 3)"
fi
# mixed batches of 4 frames: each frame's single-run result, bit for bit
if [ -x "$B/test-batch" ]; then
  run_part golden-batch 300 tests "$B/test-batch" vulkan 4
fi
if command -v python3 >/dev/null; then
  run_part golden-cli-fp32 300 tests python3 "$root/tests/test-golden-cli.py" \
    "$B/florence2-cli" vulkan fp32
else
  selected golden-cli-fp32 && record golden-cli-fp32 SKIP-NOPY 0
fi

# Benchmarks: they print, they never fail on speed
if [ -x "$B/bench-kernels" ]; then
  if [ "$quick" = yes ]; then
    run_part bench-kernels 120 all "$B/bench-kernels" --backends vulkan --device "$device" \
      --quick --min-time 0.05
  else
    run_part bench-kernels 180 all "$B/bench-kernels" --backends vulkan --device "$device"
  fi
fi
base=$root/data/florence2-configs/base
bench () {   # NAME PRECISION BEAMS [--ops]
  local name=$1 p=$2 beams=$3
  shift 3
  run_part "bench-florence2-$name" "$bench_limit" all "$B/bench-florence2" --config "$base" \
    --device "$device" --precision "$p" --tokens "$tokens" --beams "$beams" \
    --frames "$frames" "$@"
}
# first the figures of the comparison (per stage), then the transformers
# baseline, then the profiles per op kind and the tuning runs
if [ "$quick" = yes ]; then
  bench fp16-b1-ops fp16 1 --ops
  bench fp32-b3-ops fp32 3 --ops
else
  for p in fp16 fp32; do
    bench "$p-b1" "$p" 1
    bench "$p-b3" "$p" 3
  done
fi
# The baseline: transformers' Florence-2 on the same GPU, the same stages
# (a SKIP where python3 lacks torch, transformers or CUDA). It runs outside
# the bundle's library path (torch brings its own libraries), with the
# machine's own.
if command -v python3 >/dev/null; then
  run_part torch-transformers 240 all env LD_LIBRARY_PATH="$host_ld_path" python3 \
    "$root/tests/bench-transformers.py" --config "$base" --tokens "$tokens" \
    --repeat "$([ "$quick" = yes ] && echo 1 || echo 3)"
else
  selected torch-transformers && record torch-transformers SKIP-NOPY 0
fi
if [ "$quick" = no ]; then
  bench fp16-b1-ops fp16 1 --ops
  bench fp32-b1-ops fp32 1 --ops
  bench fp16-b3-ops fp16 3 --ops
fi
# The decoder-step kernel's tile (F2_VULKAN_GEMV_TILE=WG,NC: invocations
# per workgroup, columns per workgroup) on a step's shapes, the default
# (256,8) first
if [ -x "$B/bench-kernels" ] && [ "$quick" = no ]; then
  # shellcheck disable=SC2016  # expanded by the inner bash
  run_part bench-gemv-tiles 120 all bash -c '
    for tile in 256,8 128,4 256,16 64,4; do
      for shape in 1x768x768 1x3072x768 1x768x51289; do
        F2_VULKAN_GEMV_TILE=$tile "$1" --backends vulkan --device "$2" \
          --variant tiled --min-time 0.1 --shape "$shape" | sed -n "s/^matmul/tile $tile:/p"
      done
    done' bench-gemv-tiles "$B/bench-kernels" "$device"
fi
if [ "$quick" = no ]; then
  # four streams without and with batching (last: the first cut when the
  # budget runs out)
  bench fp16-streams4-batch1 fp16 1 --streams 4 --batch 1
  bench fp16-streams4-batch4 fp16 1 --streams 4 --batch 4
fi

# 16 beams through the CLI, the same ids on the reference, cpu and Vulkan
if [ "$quick" = no ] && command -v python3 >/dev/null; then
  run_part golden-wide-beams 300 tests python3 "$root/tests/test-wide-beams.py" "$B/florence2-cli"
fi

finish "$failed"
