#!/usr/bin/env python3
"""Pipeline test: a PNG through `florence2 ! florence2overlay ! pngenc`, and
videotestsrc through both elements into a file. Checks: the outputs are valid
(they decode), the JSON lines are there, and the overlay changed pixels
exactly where the metadata puts the boxes (labels off, so every changed
pixel must lie on a box outline, and every box must have changed pixels on
all four sides).

Usage: test-pipeline-png.py PLUGIN_DIR"""
import json
import os
import subprocess
import sys
import tempfile

SKIP = 77
LINE = 3            # line-width used below
SLACK = LINE + 2    # antialiasing around the outline


def launch(*args, env):
    run = subprocess.run(["gst-launch-1.0", "-q"] + list(args), env=env,
                         capture_output=True, text=True, timeout=900)
    if run.returncode != 0:
        raise RuntimeError("gst-launch-1.0 failed: " + run.stderr.strip())


def decode_rgb(path, env, out):
    launch("filesrc", f"location={path}", "!", "pngdec", "!", "videoconvert", "!",
           "video/x-raw,format=RGB", "!", "filesink", f"location={out}", env=env)
    return open(out, "rb").read()


def main():
    plugin_dir = sys.argv[1]
    golden = os.environ.get("F2_GOLDEN_DIR", "")
    model = os.path.join(golden, "tiny", "model")
    image = os.path.join(golden, "tiny", "images", "shapes_640x480.png")
    if not os.path.isdir(model):
        print("SKIP: no golden data (F2_GOLDEN_DIR)")
        return SKIP
    env = dict(os.environ)
    env["GST_PLUGIN_PATH"] = plugin_dir + (":" + env["GST_PLUGIN_PATH"] if env.get("GST_PLUGIN_PATH") else "")
    tmp = tempfile.mkdtemp(prefix="f2-pipeline-")
    failures = 0

    def check(ok, what):
        nonlocal failures
        print(("ok   " if ok else "FAIL ") + what)
        failures += not ok

    # 1. a picture through both elements into pngenc
    annotated = os.path.join(tmp, "annotated.png")
    results = os.path.join(tmp, "png.jsonl")
    launch("filesrc", f"location={image}", "!", "pngdec", "!", "videoconvert", "!",
           "video/x-raw,format=RGB", "!",
           "florence2", f"model={model}", "task=od", "num-beams=3", "max-new-tokens=40",
           "precision=fp32", f"results-location={results}", "!",
           "florence2overlay", f"line-width={LINE}", "draw-labels=false", "!",
           "videoconvert", "!", "pngenc", "!", "filesink", f"location={annotated}", env=env)
    check(open(annotated, "rb").read(8) == b"\x89PNG\r\n\x1a\n", "pngenc wrote a PNG")
    lines = [json.loads(l) for l in open(results) if l.strip()]
    check(len(lines) == 1, f"one JSON line for one picture ({len(lines)})")
    boxes = [(o["x"], o["y"], o["w"], o["h"]) for o in lines[0]["objects"]] if lines else []
    check(len(boxes) > 0, f"the metadata has boxes ({boxes})")

    before = decode_rgb(image, env, os.path.join(tmp, "before.rgb"))
    after = decode_rgb(annotated, env, os.path.join(tmp, "after.rgb"))
    width, height = 640, 480
    check(len(before) == len(after) == width * height * 3, "same frame size")

    def on_outline(px, py):
        for (x, y, w, h) in boxes:
            inside = x - SLACK <= px <= x + w + SLACK and y - SLACK <= py <= y + h + SLACK
            core = x + SLACK < px < x + w - SLACK and y + SLACK < py < y + h - SLACK
            if inside and not core:
                return True
        return False

    changed = [(i // 3 % width, i // 3 // width) for i in range(0, len(after), 3)
               if after[i:i + 3] != before[i:i + 3]]
    stray = [p for p in changed if not on_outline(*p)]
    check(len(changed) > 0 and not stray,
          f"{len(changed)} pixels changed, {len(stray)} of them away from the box outlines"
          + (f" (first {stray[:3]})" if stray else ""))
    for (x, y, w, h) in boxes:
        sides = {
            "left": any(abs(px - x) <= SLACK and y <= py <= y + h for px, py in changed),
            "right": any(abs(px - (x + w)) <= SLACK and y <= py <= y + h for px, py in changed),
            "top": any(abs(py - y) <= SLACK and x <= px <= x + w for px, py in changed),
            "bottom": any(abs(py - (y + h)) <= SLACK and x <= px <= x + w for px, py in changed),
        }
        check(all(sides.values()), f"box {x},{y},{w},{h} drawn on every side {sides}")

    # 2. videotestsrc through both elements into a file
    video = os.path.join(tmp, "test.mkv")
    vresults = os.path.join(tmp, "video.jsonl")
    launch("videotestsrc", "num-buffers=6", "!", "video/x-raw,width=320,height=240,framerate=30/1",
           "!", "videoconvert", "!", "florence2", f"model={model}", "task=caption",
           "num-beams=1", "max-new-tokens=8", "inference-interval=3", "precision=fp32",
           f"results-location={vresults}", "!", "florence2overlay", "!", "videoconvert", "!",
           "jpegenc", "!", "matroskamux", "!", "filesink", f"location={video}", env=env)
    frames = os.path.join(tmp, "frames.raw")
    launch("filesrc", f"location={video}", "!", "matroskademux", "!", "jpegdec", "!",
           "videoconvert", "!", "video/x-raw,format=RGB", "!", "filesink", f"location={frames}", env=env)
    check(os.path.getsize(frames) == 6 * 320 * 240 * 3, "the video file decodes to its 6 frames")
    vlines = [json.loads(l) for l in open(vresults) if l.strip()]
    check(len(vlines) == 2 and all(l["florence2"]["task"] == "<CAPTION>" for l in vlines),
          f"two caption results for 6 frames at interval 3 ({len(vlines)})")

    print(f"# {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
