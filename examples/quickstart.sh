#!/usr/bin/env bash
# The main job in one command, on a fresh Debian 12 machine: installs the
# Debian packages, builds, gets the model, makes a sample video and runs
#   sample video -> florence2 (<OD>) -> florence2overlay -> H.264/MP4
# writing quickstart-out/annotated.mp4 and quickstart-out/results.jsonl (one
# JSON object per inference). Idempotent: run it again at any time.
#
#   examples/quickstart.sh [MODEL]
#
# MODEL: a local Florence-2 directory or a hub repository id; default
# $FLORENCE2_MODEL, else microsoft/Florence-2-base through florence2-download
# (needs internet the first time; offline, point FLORENCE2_MODEL at a local
# model directory). Environment: FLORENCE2_DEVICE (default auto: the first
# GPU, else the CPU backend; or cpu, reference, a Vulkan device index or
# name), FLORENCE2_PRECISION (auto|fp32|bf16|fp16), FRAMES (sample length, 90),
# INTERVAL (run the model every INTERVAL frames, 30).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
out=$top/quickstart-out

./packaging/install-deps.sh
if [ ! -f build/build.ninja ]; then
  meson setup build
fi
ninja -C build

model=${1:-${FLORENCE2_MODEL:-microsoft/Florence-2-base}}
if [ ! -d "$model" ]; then
  model=$("$top/tools/florence2-download" "$model" | tail -n 1)
fi
echo "model: $model" >&2

# the build's plugins, ahead of any installed copy
export GST_PLUGIN_PATH=$top/build/gst${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}
mkdir -p "$out"

# a sample clip the project makes itself: moving shapes on a test pattern
sample=$out/sample.mp4
if [ ! -s "$sample" ]; then
  gst-launch-1.0 -q videotestsrc pattern=ball num-buffers="${FRAMES:-90}" motion=sweep \
      ! video/x-raw,width=640,height=480,framerate=30/1 \
      ! compositor name=mix sink_1::xpos=400 sink_1::ypos=40 \
      ! videoconvert ! video/x-raw,format=I420 ! x264enc ! mp4mux ! filesink location="$sample" \
    videotestsrc pattern=smpte num-buffers="${FRAMES:-90}" \
      ! video/x-raw,width=200,height=150,framerate=30/1 ! mix.
fi

rm -f "$out/results.jsonl"
props=(task=od "inference-interval=${INTERVAL:-30}" num-beams=1 max-new-tokens=64)
[ -z "${FLORENCE2_DEVICE:-}" ] || props+=("device=$FLORENCE2_DEVICE")
[ -z "${FLORENCE2_PRECISION:-}" ] || props+=("precision=$FLORENCE2_PRECISION")
gst-launch-1.0 -e filesrc location="$sample" ! decodebin ! videoconvert \
    ! video/x-raw,format=RGB \
    ! florence2 model="$model" "${props[@]}" results-location="$out/results.jsonl" \
    ! florence2overlay ! videoconvert ! video/x-raw,format=I420 \
    ! x264enc ! mp4mux ! filesink location="$out/annotated.mp4"

echo "wrote $out/annotated.mp4 and $out/results.jsonl ($(wc -l < "$out/results.jsonl") results)" >&2
