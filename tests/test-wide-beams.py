#!/usr/bin/env python3
"""16 beams, the most the CLI and the element accept, end to end on the tiny
golden model: on the plain-C reference device, on the cpu backend and on
Vulkan (the first Vulkan device, or F2_VULKAN_DEVICE; lavapipe in CI), in
fp32. Beam search asks top-k for 2 candidates
per beam, so this is top-k with k = 32 inside a real decoder loop.

  test-wide-beams.py FLORENCE2_CLI

Every device must finish every case and produce the reference's ids (fp32
matches the reference exactly, as in the golden tests); 17 beams are
refused with a message. Exits 77 (skipped) when the golden data is absent.
"""

import json
import os
import subprocess
import sys

SKIP = 77
BEAMS = 16
MAX_NEW_TOKENS = 20
# (task, prompt): a detection and a caption, both from the golden cases
CASES = [("od", None), ("caption-to-phrase-grounding", "a red rectangle")]


def run(cli, model, image, device, task, prompt, beams=BEAMS):
    cmd = [cli, "--model", model, "--task", task, "--num-beams", str(beams),
           "--max-new-tokens", str(MAX_NEW_TOKENS), "--precision", "fp32"]
    if device == "vulkan":
        device = os.environ.get("F2_VULKAN_DEVICE") or "0"
    cmd += ["--device", device]
    if prompt is not None:
        cmd += ["--prompt", prompt]
    cmd.append(image)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def main():
    cli = sys.argv[1]
    tiny = os.path.join(os.environ.get("F2_GOLDEN_DIR", ""), "tiny")
    if not os.path.isfile(os.path.join(tiny, "model", "config.json")):
        print("SKIP: no golden data (F2_GOLDEN_DIR)")
        return SKIP
    model = os.path.join(tiny, "model")
    image = os.path.join(tiny, "images", "shapes_640x480.png")
    failures = 0

    for task, prompt in CASES:
        ids = {}
        for device in ("reference", "cpu", "vulkan"):
            res = run(cli, model, image, device, task, prompt)
            if res.returncode != 0:
                print(f"FAIL {task} {BEAMS} beams on {device}: exit "
                      f"{res.returncode}: {res.stderr.strip()[-2000:]}")
                failures += 1
                continue
            out = json.loads(res.stdout.splitlines()[0])
            gen = out["generated_ids"]
            # decoder start, then <s>; at most MAX_NEW_TOKENS after the start
            if gen[:2] != [2, 0] or len(gen) > MAX_NEW_TOKENS + 1 or not out["text"]:
                print(f"FAIL {task} on {device}: odd output {out}")
                failures += 1
                continue
            ids[device] = gen
            print(f"ok   {task} {BEAMS} beams on {device}: {len(gen)} ids, "
                  f"text {out['text'][:60]!r}")
        for device in ("cpu", "vulkan"):
            if device in ids and "reference" in ids and ids[device] != ids["reference"]:
                print(f"FAIL {task}: {device} {ids[device]} != reference {ids['reference']}")
                failures += 1

    # one beam more than the limit: refused up front, with the limit named
    res = run(cli, model, image, "reference", "od", None, beams=BEAMS + 1)
    if res.returncode == 0 or "16" not in res.stderr:
        print(f"FAIL {BEAMS + 1} beams: exit {res.returncode}, stderr {res.stderr.strip()!r}")
        failures += 1
    else:
        print(f"ok   {BEAMS + 1} beams refused: {res.stderr.strip()}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
