#!/usr/bin/env bash
# segment.sh: referring expression segmentation: a filled polygon around
# what the expression describes.
#
#   segment.sh [MODEL_DIR] EXPRESSION [INPUT] [OUTPUT]
#
#   MODEL_DIR   Florence-2 model directory (default $FLORENCE2_MODEL)
#   EXPRESSION  e.g. "the person on the left"
#   INPUT       video file, URI or /dev/videoN (default videotestsrc)
#   OUTPUT      annotated video (default segment.mp4) and OUTPUT.jsonl
#
# Example:
#   ./segment.sh "the white car" traffic.mp4 car-mask.mp4
set -euo pipefail
. "$(dirname "$0")/common.sh"
f2_take_model "$@"
set -- "${ARGS[@]}"
[ $# -ge 1 ] || f2_die "usage: $(basename "$0") [MODEL_DIR] EXPRESSION [INPUT] [OUTPUT]"

PIPE=()
f2_source "${2:-}"
OUT=${3:-segment.mp4}
PIPE+=(!)
f2_florence2 referring-expression-segmentation "prompt=$1" "results-location=${OUT%.*}.jsonl"
f2_overlay
f2_file_sink "$OUT"
f2_run
echo "wrote $OUTPUT and ${OUT%.*}.jsonl" >&2
