# shellcheck shell=bash
# Shared by the example scripts: source it, do not run it.
#
# The scripts build a gst-launch-1.0 command line in the bash array PIPE, one
# argument per element property, so paths and prompts with spaces survive.
#
# Environment understood by every script:
#   FLORENCE2_MODEL      model directory (or a hub repository id, fetched with
#                        florence2-download) when none is given as argument 1
#   FLORENCE2_DEVICE     auto (default: the first GPU, else cpu), cpu,
#                        reference, or a Vulkan device index or name
#   FLORENCE2_PRECISION  auto (default), fp32, bf16 (cpu) or fp16 (Vulkan)
#   FLORENCE2_PROPS      more florence2 properties, e.g.
#                        "num-beams=1 max-new-tokens=64"
#   NUM_BUFFERS          frames of videotestsrc when no input is given (100)
#   GST_LAUNCH           the launcher (default gst-launch-1.0)
# With an uninstalled build, run through `meson devenv -C BUILD` or set
# GST_PLUGIN_PATH=BUILD/gst:BUILD/overlay.

f2_die() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}

f2_have() {
  gst-inspect-1.0 --exists "$1" 2>/dev/null
}

# f2_take_model "$@": sets MODEL, and ARGS to the arguments after it. The first
# argument is the model when it is a directory with a config.json in it.
f2_take_model() {
  MODEL=""
  if [ $# -gt 0 ] && [ -f "$1/config.json" ]; then
    MODEL=$1
    shift
  elif [ -n "${FLORENCE2_MODEL:-}" ]; then
    MODEL=$FLORENCE2_MODEL
  fi
  # shellcheck disable=SC2034  # read by the script that sources this
  ARGS=("$@")
  [ -n "$MODEL" ] || f2_die "no model: give a model directory as the first argument or set
FLORENCE2_MODEL (download one with: export FLORENCE2_MODEL=\$(florence2-download))"
  if [ ! -d "$MODEL" ]; then
    # A hub repository id: resolve it through the download tool's cache
    local dl
    dl=$(command -v florence2-download || echo "$(dirname "$0")/../tools/florence2-download")
    MODEL=$("$dl" "$MODEL" | tail -n 1) || f2_die "cannot get the model '$MODEL'"
  fi
}

# f2_florence2 TASK [PROPERTY=VALUE...]: appends the florence2 element.
f2_florence2() {
  local task=$1
  shift
  PIPE+=(florence2 "model=$MODEL" "task=$task")
  [ -z "${FLORENCE2_DEVICE:-}" ] || PIPE+=("device=$FLORENCE2_DEVICE")
  [ -z "${FLORENCE2_PRECISION:-}" ] || PIPE+=("precision=$FLORENCE2_PRECISION")
  local extra
  read -r -a extra <<<"${FLORENCE2_PROPS:-}"
  PIPE+=("${extra[@]}" "$@")
}

# f2_source INPUT: appends a source giving raw video. INPUT: empty or "test"
# (videotestsrc), /dev/videoN (camera), a URI (rtsp://, http://, file://) or
# a file name.
f2_source() {
  local input=${1:-test}
  case "$input" in
    test)
      PIPE+=(videotestsrc "num-buffers=${NUM_BUFFERS:-100}" is-live=false !
        "video/x-raw,width=640,height=480,framerate=30/1")
      ;;
    /dev/video*)
      PIPE+=(v4l2src "device=$input")
      ;;
    *://*)
      PIPE+=(uridecodebin "uri=$input")
      ;;
    *)
      [ -f "$input" ] || f2_die "$input: no such file"
      PIPE+=(filesrc "location=$input" ! decodebin)
      ;;
  esac
  PIPE+=(! videoconvert ! queue)
}

# f2_overlay: appends florence2overlay (the drawings), when it is installed.
f2_overlay() {
  if f2_have florence2overlay; then
    PIPE+=(! florence2overlay)
  else
    echo "$(basename "$0"): no florence2overlay element: the video carries no drawings" >&2
  fi
}

# f2_file_sink OUTPUT: appends an encoder, a muxer and a filesink. H.264 in
# MP4 (or Matroska for .mkv) with x264enc (gstreamer1.0-plugins-ugly) or
# openh264enc (gstreamer1.0-plugins-bad); VP8 in WebM otherwise
# (gstreamer1.0-plugins-good). Sets OUTPUT to the file actually written.
f2_file_sink() {
  OUTPUT=$1
  local mux=mp4mux
  case "$OUTPUT" in *.mkv) mux=matroskamux ;; esac
  # 8-bit 4:2:0: what every player decodes (x264enc would pick 4:4:4 for RGB)
  PIPE+=(! videoconvert ! "video/x-raw,format=I420")
  if f2_have x264enc; then
    PIPE+=(! x264enc tune=zerolatency speed-preset=veryfast ! h264parse ! "$mux")
  elif f2_have openh264enc; then
    PIPE+=(! openh264enc ! h264parse ! "$mux")
  elif f2_have vp8enc; then
    OUTPUT=${OUTPUT%.*}.webm
    echo "$(basename "$0"): no H.264 encoder (install gstreamer1.0-plugins-ugly);" \
      "writing VP8 to $OUTPUT" >&2
    PIPE+=(! vp8enc deadline=1 ! webmmux)
  else
    f2_die "no video encoder: install gstreamer1.0-plugins-ugly (x264enc)"
  fi
  PIPE+=(! filesink "location=$OUTPUT")
}

# f2_display: appends a window (or $SINK, e.g. SINK=fakesink when headless).
f2_display() {
  local sink
  read -r -a sink <<<"${SINK:-autovideosink sync=false}"
  PIPE+=(! videoconvert ! "${sink[@]}")
}

# f2_run: runs the pipeline; -e turns Ctrl-C into an end of stream so the
# file is finalised.
f2_run() {
  echo "+ ${GST_LAUNCH:-gst-launch-1.0} -e ${PIPE[*]}" >&2
  ${GST_LAUNCH:-gst-launch-1.0} -e "${PIPE[@]}"
}
