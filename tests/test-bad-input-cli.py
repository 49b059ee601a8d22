#!/usr/bin/env python3
"""florence2-cli on bad input: each case must exit non-zero (not by a
signal) with a message on stderr that names the problem. With --valgrind,
every run goes through valgrind and any memory error or definite leak fails.

Usage: test-bad-input-cli.py CLI [--valgrind]"""
import os
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def main():
    cli = sys.argv[1]
    use_valgrind = "--valgrind" in sys.argv[2:]
    golden = os.environ.get("F2_GOLDEN_DIR", "")
    model = os.path.join(golden, "tiny", "model")
    image = os.path.join(golden, "tiny", "images", "shapes_640x480.png")
    if not os.path.isdir(model):
        print("SKIP: no golden data (F2_GOLDEN_DIR)")
        return SKIP
    if use_valgrind and shutil.which("valgrind") is None:
        print("SKIP: valgrind is not installed")
        return SKIP

    tmp = tempfile.mkdtemp(prefix="f2-bad-input-")
    # a model directory without weights, and one with a truncated file
    no_weights = os.path.join(tmp, "no-weights")
    os.mkdir(no_weights)
    for name in ("config.json", "preprocessor_config.json", "tokenizer.json", "vocab.json"):
        shutil.copy(os.path.join(model, name), no_weights)
    truncated = os.path.join(tmp, "truncated")
    shutil.copytree(no_weights, truncated)
    with open(os.path.join(model, "model.safetensors"), "rb") as f:
        data = f.read()
    with open(os.path.join(truncated, "model.safetensors"), "wb") as f:
        f.write(data[: len(data) // 3])
    not_an_image = os.path.join(tmp, "text.png")
    with open(not_an_image, "w") as f:
        f.write("this is not a picture\n")

    base = ["--device", "cpu", "--max-new-tokens", "2", "--num-beams", "1"]
    cases = [
        ("missing model directory", ["--model", os.path.join(tmp, "nope"), "--task", "<OD>", image], "does not exist"),
        ("no weights", ["--model", no_weights, "--task", "<OD>", image], "model.safetensors"),
        ("truncated weights", ["--model", truncated, "--task", "<OD>", image], "model.safetensors"),
        ("unknown task", ["--model", model, "--task", "<NOPE>", image], "unknown task"),
        ("text for a task without input", ["--model", model, "--task", "<OD>", "--prompt", "a dog", image], "<OD>"),
        ("missing text", ["--model", model, "--task", "<CAPTION_TO_PHRASE_GROUNDING>", image], "text"),
        ("malformed region", ["--model", model, "--task", "<REGION_TO_DESCRIPTION>", "--prompt", "<loc_1><loc_2>", image], "loc"),
        ("region out of range", ["--model", model, "--task", "<REGION_TO_OCR>", "--prompt", "<loc_1><loc_2><loc_3><loc_1000>", image], "loc"),
        ("image that cannot be decoded", ["--model", model, "--task", "<OD>", not_an_image], "text.png"),
        ("missing image", ["--model", model, "--task", "<OD>", os.path.join(tmp, "none.png")], "none.png"),
        ("bad precision", ["--model", model, "--precision", "fp8", image], "fp8"),
        ("no image", ["--model", model], "image"),
    ]
    failures = 0
    for name, args, expect in cases:
        cmd = [cli] + base + args
        if use_valgrind:
            cmd = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite"] + cmd
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        err = run.stderr.strip()
        problems = []
        if run.returncode == 0:
            problems.append("exited 0")
        if run.returncode < 0:
            problems.append(f"killed by signal {-run.returncode}")
        if run.returncode == 99:
            problems.append("valgrind found errors")
        if expect.lower() not in err.lower():
            problems.append(f"message does not mention '{expect}'")
        status = "FAIL" if problems else "ok  "
        first = err.splitlines()[-1] if err else "(no message)"
        print(f"{status} {name}: {first}" + (f"  [{'; '.join(problems)}]" if problems else ""))
        if problems:
            print(err)
        failures += bool(problems)
    shutil.rmtree(tmp)
    print(f"# {len(cases) - failures}/{len(cases)} bad inputs handled")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
