#!/usr/bin/env bash
# grounding.sh: phrase grounding: boxes for the phrases of a caption.
#
#   grounding.sh [MODEL_DIR] PHRASE [INPUT] [OUTPUT]
#
#   MODEL_DIR  Florence-2 model directory (default $FLORENCE2_MODEL)
#   PHRASE     the caption whose phrases to find, e.g. "a man with a red hat"
#   INPUT      video file, URI or /dev/videoN (default videotestsrc)
#   OUTPUT     annotated video (default grounding.mp4) and OUTPUT.jsonl
#
# Example:
#   ./grounding.sh ~/models/Florence-2-base "a dog and a ball" park.mp4
set -euo pipefail
. "$(dirname "$0")/common.sh"
f2_take_model "$@"
set -- "${ARGS[@]}"
[ $# -ge 1 ] || f2_die "usage: $(basename "$0") [MODEL_DIR] PHRASE [INPUT] [OUTPUT]"

PIPE=()
f2_source "${2:-}"
OUT=${3:-grounding.mp4}
PIPE+=(!)
f2_florence2 caption-to-phrase-grounding "prompt=$1" "results-location=${OUT%.*}.jsonl"
f2_overlay
f2_file_sink "$OUT"
f2_run
echo "wrote $OUTPUT and ${OUT%.*}.jsonl" >&2
