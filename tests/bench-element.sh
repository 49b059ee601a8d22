#!/bin/bash
# Throughput of one florence2 element fed as fast as it takes frames (a
# non-live source, so frames queue as they do behind a camera the element
# cannot keep up with).
#
#   tests/bench-element.sh BUILD_DIR MODEL_DIR FRAMES BATCH_SIZE [PROPERTY=VALUE...]
#
# Runs the pipeline twice: with no frames (start-up: loading the model and
# the working memory) and with FRAMES frames, and prints the frames per
# second of the difference. A model with random weights of the real shapes:
#   BUILD_DIR/tools/florence2-random-checkpoint CONFIG_DIR MODEL_DIR
set -euo pipefail

if [ $# -lt 4 ]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
build=$(cd "$1" && pwd)
model=$2
frames=$3
batch=$4
shift 4

export GST_PLUGIN_PATH="$build/gst"
export GST_REGISTRY="$build/bench-element-registry.bin"
export LD_LIBRARY_PATH="$build/gst/florence2${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

run () {
  local n=$1 start end
  shift
  start=$(date +%s.%N)
  gst-launch-1.0 -q videotestsrc num-buffers="$n" ! \
    video/x-raw,width=640,height=480 ! videoconvert ! \
    florence2 model="$model" batch-size="$batch" "$@" ! fakesink >&2 || {
      echo "the pipeline failed" >&2
      exit 1
    }
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f", e - s }'
}

startup=$(run 0 "$@")
total=$(run "$frames" "$@")
awk -v b="$batch" -v n="$frames" -v s="$startup" -v t="$total" 'BEGIN {
  printf "batch-size %s, %s frames: start-up %s s, all %s s, %.3f frames/s\n",
      b, n, s, t, n / (t - s) }'
