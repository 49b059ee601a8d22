#!/usr/bin/env bash
# ocr.sh: text with its regions (<OCR_WITH_REGION>): a quadrilateral and the
# text for every line read.
#
#   ocr.sh [MODEL_DIR] [INPUT] [OUTPUT]
#
#   MODEL_DIR  Florence-2 model directory (default $FLORENCE2_MODEL)
#   INPUT      video file, image sequence, URI or /dev/videoN (default
#              videotestsrc)
#   OUTPUT     annotated video (default ocr.mp4); the text goes to
#              OUTPUT.jsonl
#
# Example:
#   ./ocr.sh shop-signs.mp4 && grep -o '"label":"[^"]*"' ocr.jsonl
set -euo pipefail
. "$(dirname "$0")/common.sh"
f2_take_model "$@"
set -- "${ARGS[@]}"

PIPE=()
f2_source "${1:-}"
OUT=${2:-ocr.mp4}
PIPE+=(!)
f2_florence2 ocr-with-region "results-location=${OUT%.*}.jsonl"
f2_overlay
f2_file_sink "$OUT"
f2_run
echo "wrote $OUTPUT and ${OUT%.*}.jsonl" >&2
