#!/usr/bin/env bash
# camera.sh: live analysis of a V4L2 camera, shown in a window.
#
#   camera.sh [MODEL_DIR] [DEVICE] [TASK] [PROMPT]
#
#   MODEL_DIR  Florence-2 model directory (default $FLORENCE2_MODEL)
#   DEVICE     camera (default /dev/video0)
#   TASK       a florence2 task nick (default od); see
#              `gst-inspect-1.0 florence2`
#   PROMPT     the text for tasks that take one
#   SINK       environment: the video sink (default autovideosink)
#
# Frames are never held back for the model: latency-mode=low-latency shows
# each frame at once with the latest result, and skip-when-busy drops frames
# the model has no time for.
#
# Example:
#   ./camera.sh /dev/video2 caption-to-phrase-grounding "a cup"
set -euo pipefail
. "$(dirname "$0")/common.sh"
f2_take_model "$@"
set -- "${ARGS[@]}"

PIPE=(v4l2src "device=${1:-/dev/video0}" ! videoconvert ! queue leaky=downstream max-size-buffers=2 !)
EXTRA=(latency-mode=low-latency skip-when-busy=true)
[ -z "${4:-}" ] || EXTRA+=("prompt=$4")
f2_florence2 "${2:-od}" "${EXTRA[@]}"
f2_overlay
f2_display
f2_run
