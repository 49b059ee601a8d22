#!/usr/bin/env python3
"""The CLI contract against the reference: for every golden case, run
florence2-cli greedy and with 3 beams (max-new-tokens 40) and compare
input_ids, generated_ids, text and the post-processed result exactly
(numbers as float32), and the shape of the JSON object.

Usage: test-golden-cli.py CLI [DEVICE] [PRECISION]
Exits 77 (skipped) without golden data."""
import json
import os
import struct
import subprocess
import sys

SKIP = 77


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def same(got, want, path="$"):
    if isinstance(want, dict):
        if not isinstance(got, dict) or list(got) != list(want):
            return f"{path}: keys {list(got) if isinstance(got, dict) else got} != {list(want)}"
        for k in want:
            why = same(got[k], want[k], f"{path}.{k}")
            if why:
                return why
        return None
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return f"{path}: length differs"
        for i, (g, w) in enumerate(zip(got, want)):
            why = same(g, w, f"{path}[{i}]")
            if why:
                return why
        return None
    if isinstance(want, float) or isinstance(got, float):
        return None if f32(float(got)) == f32(float(want)) else f"{path}: {got} != {want}"
    return None if got == want else f"{path}: {got!r} != {want!r}"


def main():
    cli = sys.argv[1]
    device = sys.argv[2] if len(sys.argv) > 2 else "cpu"
    precision = sys.argv[3] if len(sys.argv) > 3 else "fp32"
    golden = os.environ.get("F2_GOLDEN_DIR", "")
    tiny = os.path.join(golden, "tiny")
    if not os.path.isdir(tiny):
        print("SKIP: no golden data (F2_GOLDEN_DIR)")
        return SKIP
    index = json.load(open(os.path.join(tiny, "index.json")))
    failures = 0
    checks = 0
    for entry in index["cases"]:
        case = json.load(open(os.path.join(tiny, entry["json"])))
        for which, beams in (("greedy", 1), ("beam", 3)):
            cmd = [cli, "--model", os.path.join(tiny, "model"), "--task", case["task"],
                   "--num-beams", str(beams), "--max-new-tokens", "40",
                   "--precision", precision]
            if device != "vulkan":      # "vulkan": the first Vulkan device
                cmd += ["--device", device]
            if case["text_input"] is not None:
                cmd += ["--prompt", case["text_input"]]
            cmd.append(os.path.join(tiny, entry["image"]))
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            checks += 1
            if run.returncode != 0:
                print(f"FAIL {entry['case_id']} {which}: exit {run.returncode}: {run.stderr.strip()}")
                failures += 1
                continue
            out = json.loads(run.stdout.splitlines()[0])
            want = case[which]
            problems = []
            for key in ("task", "prompt", "input_ids", "generated_ids", "text", "result",
                        "image_size", "timings_ms"):
                if key not in out:
                    problems.append(f"missing key {key}")
            if out.get("input_ids") != case["input_ids"]:
                problems.append("input_ids differ")
            if out.get("prompt") != case["prompt"]:
                problems.append("prompt differs")
            if out.get("generated_ids") != want["sequence"]:
                problems.append("generated_ids differ")
            if out.get("text") != want["text"]:
                problems.append("text differs")
            why = same(out.get("result"), want["post_process"]["ok"])
            if why:
                problems.append("result differs: " + why)
            if out.get("image_size") != case["image_size_wh"]:
                problems.append("image_size differs")
            status = "ok  " if not problems else "FAIL"
            print(f"{status} {entry['case_id']} {which}" + ("" if not problems else ": " + "; ".join(problems)))
            failures += bool(problems)
    print(f"# florence2-cli {device} {precision}: {checks - failures}/{checks} cases identical")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
