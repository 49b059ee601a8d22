#!/usr/bin/env bash
# caption.sh: a paragraph describing the video every INTERVAL frames
# (<MORE_DETAILED_CAPTION>), written as JSON lines; no video is written.
#
#   caption.sh [MODEL_DIR] [INPUT] [OUTPUT_JSONL]
#
#   MODEL_DIR     Florence-2 model directory (default $FLORENCE2_MODEL)
#   INPUT         video file, URI or /dev/videoN (default videotestsrc)
#   OUTPUT_JSONL  default captions.jsonl: one object per captioned frame,
#                 the caption under florence2.text
#   INTERVAL      environment: run the model on every Nth frame (default 30)
#
# Example:
#   INTERVAL=150 ./caption.sh holiday.mp4 holiday.jsonl
set -euo pipefail
. "$(dirname "$0")/common.sh"
f2_take_model "$@"
set -- "${ARGS[@]}"

PIPE=()
f2_source "${1:-}"
OUT=${2:-captions.jsonl}
PIPE+=(!)
f2_florence2 more-detailed-caption "results-location=$OUT" \
  "inference-interval=${INTERVAL:-30}"
PIPE+=(! fakesink)
f2_run
echo "wrote $OUT" >&2
