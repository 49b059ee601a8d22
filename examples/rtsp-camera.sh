#!/usr/bin/env bash
# rtsp-camera.sh: analysis of an RTSP camera stream, shown in a window or
# written to a file.
#
#   rtsp-camera.sh [MODEL_DIR] URL [TASK] [OUTPUT]
#
#   MODEL_DIR  Florence-2 model directory (default $FLORENCE2_MODEL)
#   URL        rtsp://[user:password@]host[:port]/path
#   TASK       a florence2 task nick (default od)
#   OUTPUT     a file to write (.mp4/.mkv); default: a window ($SINK)
#   PROMPT     environment: the text for tasks that take one
#   LATENCY    environment: rtspsrc jitter buffer in ms (default 200)
# The results also go to rtsp-results.jsonl (RESULTS to change).
#
# Example:
#   ./rtsp-camera.sh rtsp://192.168.1.20:554/stream1 od gate.mp4
set -euo pipefail
. "$(dirname "$0")/common.sh"
f2_take_model "$@"
set -- "${ARGS[@]}"
[ $# -ge 1 ] || f2_die "usage: $(basename "$0") [MODEL_DIR] URL [TASK] [OUTPUT]"
case "$1" in rtsp://* | rtsps://* | rtspt://*) ;; *) f2_die "$1: not an rtsp:// URL" ;; esac

PIPE=(rtspsrc "location=$1" "latency=${LATENCY:-200}" ! decodebin ! videoconvert !
  queue leaky=downstream max-size-buffers=2 !)
EXTRA=(latency-mode=low-latency skip-when-busy=true
  "results-location=${RESULTS:-rtsp-results.jsonl}")
[ -z "${PROMPT:-}" ] || EXTRA+=("prompt=$PROMPT")
f2_florence2 "${2:-od}" "${EXTRA[@]}"
f2_overlay
if [ -n "${3:-}" ]; then
  f2_file_sink "$3"
else
  f2_display
fi
f2_run
