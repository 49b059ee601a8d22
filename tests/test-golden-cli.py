#!/usr/bin/env python3
"""The CLI contract against the reference: for every golden case, run
florence2-cli greedy and with 3 beams (max-new-tokens 40) and compare
input_ids, generated_ids, text and the post-processed result exactly
(numbers as float32), and the shape of the JSON object. With --dump, the
first case of each image writes its intermediate tensors: each must have the
golden name and shape and lie within DUMP_TOL of the golden values (largest
absolute error relative to the largest golden magnitude, as in
test-golden-stages). With --batch 2, each case's image runs in a batch
beside another image and its JSON line must again be the reference's.

Usage: test-golden-cli.py CLI [DEVICE] [PRECISION]
Exits 77 (skipped) without golden data."""
import array
import json
import os
import struct
import subprocess
import sys
import tempfile

SKIP = 77
DUMP_TOL = 2e-4
# what a dump must hold (the vision stages come on top of these)
DUMP_NAMES = ("pixel_values", "vision_tower_out", "image_features", "inputs_embeds",
              "encoder_last_hidden_state", "decoder_logits_step0")


def read_safetensors(path):
    """{name: (shape, float32 array)} of an F32 safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        begin, end = info["data_offsets"]
        values = array.array("f")
        values.frombytes(data[8 + n + begin:8 + n + end])
        out[name] = (info["shape"], values)
    return out


def check_dump(dump_file, golden_files):
    """Problems of a dump against the golden tensors of the same names."""
    golden = {}
    for path in golden_files:
        golden.update(read_safetensors(path))
    got = read_safetensors(dump_file)
    problems = [f"dump lacks {name}" for name in DUMP_NAMES if name not in got]
    compared = set()
    for name, (shape, values) in got.items():
        want = golden.get(name)
        if want is None and name.startswith("stage"):
            # the golden files keep only the first rows of the large stages
            want = golden.get(name + "_rows0_24")
            if want is not None:
                shape, values = want[0], values[:len(want[1])]
        if want is None:
            continue
        if shape != want[0]:
            problems.append(f"{name}: shape {shape} != {want[0]}")
            continue
        scale = max(max(abs(x) for x in want[1]), 1e-30)
        err = max(abs(a - b) for a, b in zip(values, want[1])) / scale
        compared.add(name)
        if not err <= DUMP_TOL:
            problems.append(f"{name}: relative error {err:.3e} > {DUMP_TOL:.0e}")
    stages = [f"stage{s}_{kind}" for s in range(1, 5) for kind in ("conv_out", "out")]
    problems += [f"dump lacks {name}" for name in stages if name not in got]
    problems += [f"{name} was not compared" for name in DUMP_NAMES if name not in compared]
    return problems


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


def check_batches(cli, tiny, index, device, precision):
    """(failures, checks) of --batch 2 runs: each case's image first, with
    another image of the set beside it in the batch, greedy and beam search
    in turn; the first JSON line must be the reference's."""
    images = sorted({entry["image"] for entry in index["cases"]})
    failures = checks = 0
    for n, entry in enumerate(index["cases"]):
        case = json.load(open(os.path.join(tiny, entry["json"])))
        which, beams = (("greedy", 1), ("beam", 3))[n % 2]
        other = next(image for image in images if image != entry["image"])
        cmd = [cli, "--model", os.path.join(tiny, "model"), "--task", case["task"],
               "--num-beams", str(beams), "--max-new-tokens", "40",
               "--precision", precision, "--batch", "2",
               "--device", os.environ.get("F2_VULKAN_DEVICE") or "0"
               if device == "vulkan" else device]
        if case["text_input"] is not None:
            cmd += ["--prompt", case["text_input"]]
        cmd += [os.path.join(tiny, entry["image"]), os.path.join(tiny, other)]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        lines = run.stdout.splitlines()
        out = json.loads(lines[0]) if len(lines) == 2 else {}
        want = case[which]
        ok = (run.returncode == 0 and out.get("generated_ids") == want["sequence"]
              and out.get("text") == want["text"]
              and out.get("image") == os.path.join(tiny, entry["image"])
              and not same(out.get("result"), want["post_process"]["ok"]))
        checks += 1
        print(f"{'ok  ' if ok else 'FAIL'} --batch 2 {entry['case_id']} {which}"
              + ("" if ok else f": exit {run.returncode} {run.stderr.strip()}"))
        failures += not ok
    return failures, checks


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
    dumped_images = set()
    dump_root = tempfile.TemporaryDirectory(prefix="f2-cli-dump-")
    for entry in index["cases"]:
        case = json.load(open(os.path.join(tiny, entry["json"])))
        for which, beams in (("greedy", 1), ("beam", 3)):
            cmd = [cli, "--model", os.path.join(tiny, "model"), "--task", case["task"],
                   "--num-beams", str(beams), "--max-new-tokens", "40",
                   "--precision", precision]
            # "vulkan": the Vulkan device under test (lavapipe in CI)
            cmd += ["--device", os.environ.get("F2_VULKAN_DEVICE") or "0"
                    if device == "vulkan" else device]
            if case["text_input"] is not None:
                cmd += ["--prompt", case["text_input"]]
            dump_dir = None
            if which == "greedy" and entry["image"] not in dumped_images:
                dumped_images.add(entry["image"])
                dump_dir = os.path.join(dump_root.name, entry["case_id"])
                cmd += ["--dump", dump_dir]
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
            if dump_dir is not None:
                stem = os.path.splitext(os.path.basename(entry["image"]))[0]
                dump_file = os.path.join(dump_dir, stem + ".safetensors")
                if not os.path.isfile(dump_file):
                    problems.append(f"--dump wrote no {stem}.safetensors")
                else:
                    image_tensors = os.path.splitext(os.path.join(tiny, entry["image"]))[0]
                    problems += check_dump(dump_file, [image_tensors + ".safetensors",
                                                       os.path.join(tiny, entry["tensors"])])
            status = "ok  " if not problems else "FAIL"
            print(f"{status} {entry['case_id']} {which}" + ("" if not problems else ": " + "; ".join(problems)))
            failures += bool(problems)
    print(f"# florence2-cli {device} {precision}: {checks - failures}/{checks} cases identical"
          f" ({len(dumped_images)} with --dump checked against the golden tensors)")
    batch_failures, batch_checks = check_batches(cli, tiny, index, device, precision)
    failures += batch_failures
    print(f"# florence2-cli --batch 2: {batch_checks - batch_failures}/{batch_checks} cases identical")
    dump_root.cleanup()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
