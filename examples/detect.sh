#!/usr/bin/env bash
# detect.sh: object detection (<OD>) drawn on the video, written to a file.
#
#   detect.sh [MODEL_DIR] [INPUT] [OUTPUT]
#
#   MODEL_DIR  Florence-2 model directory (default $FLORENCE2_MODEL)
#   INPUT      video file, URI or /dev/videoN (default: 100 frames of
#              videotestsrc, NUM_BUFFERS to change)
#   OUTPUT     annotated video (default detect.mp4; H.264 with x264enc or
#              openh264enc, VP8/WebM when neither is installed)
# The detections also go to OUTPUT's name with .jsonl, one JSON object a frame.
#
# Example:
#   FLORENCE2_MODEL=$(florence2-download) ./detect.sh street.mp4 street-od.mp4
set -euo pipefail
. "$(dirname "$0")/common.sh"
f2_take_model "$@"
set -- "${ARGS[@]}"

PIPE=()
f2_source "${1:-}"
OUT=${2:-detect.mp4}
PIPE+=(!)
f2_florence2 od "results-location=${OUT%.*}.jsonl"
f2_overlay
f2_file_sink "$OUT"
f2_run
echo "wrote $OUTPUT and ${OUT%.*}.jsonl" >&2
