#!/usr/bin/env python3
"""florence2-cli on bad input: each case must exit non-zero (not by a
signal, not hanging) with a message on stderr that names the problem. With
--valgrind, every run goes through valgrind and any memory error or definite
leak fails. Hostile model directories are broken copies of the golden tiny
model: deep JSON nesting, absurd settings, non-finite weights, FIFOs and
dangling links where files belong, images that declare huge sizes.

Usage: test-bad-input-cli.py CLI [--valgrind]"""
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

SKIP = 77
MODEL_FILES = ("config.json", "preprocessor_config.json", "tokenizer.json", "vocab.json")


def copy_model(model, tmp, name, with_weights=True):
    """A copy of the golden model directory to break."""
    out = os.path.join(tmp, name)
    os.mkdir(out)
    for f in MODEL_FILES + (("model.safetensors",) if with_weights else ()):
        shutil.copy(os.path.join(model, f), out)
    return out


def edit_json(path, edit):
    with open(path) as f:
        data = json.load(f)
    edit(data)
    with open(path, "w") as f:
        json.dump(data, f)


def deep_json(depth):
    return "{\"a\": " + "[" * depth + "1" + "]" * depth + "}"


def edit_tensor(path, name, edit):
    """Rewrite the float32 data of tensor @name in a safetensors file:
    @edit gets and returns a list of floats."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    t = header[name]
    assert t["dtype"] == "F32"
    begin, end = (8 + n + o for o in t["data_offsets"])
    values = list(struct.unpack(f"<{(end - begin) // 4}f", data[begin:end]))
    data[begin:end] = struct.pack(f"<{len(values)}f", *edit(values))
    with open(path, "wb") as f:
        f.write(data)


def png(path, w, h, rows):
    """A grey PNG that declares @w x @h pixels and holds @rows rows of zeros."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    z = zlib.compressobj(9)
    row = b"\0" * (1 + w)
    idat = b"".join(z.compress(row) for _ in range(rows)) + z.flush()
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def run_measured(cmd, timeout):
    """Run @cmd in a child Python so that its peak RSS can be read alone:
    returns (returncode, stderr, peak RSS in MiB), or None on a timeout."""
    probe = ("import resource, subprocess, sys\n"
             "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
             "sys.stderr.write(r.stderr)\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)\n"
             "sys.exit(r.returncode if r.returncode >= 0 else 128 - r.returncode)\n")
    try:
        run = subprocess.run([sys.executable, "-c", probe] + cmd, capture_output=True,
                             text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    rc = run.returncode - 256 if run.returncode > 128 else run.returncode
    return rc, run.stderr, int(run.stdout.strip() or 0)


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

    # hostile model directories, each a broken copy of the golden one
    deep_config = copy_model(model, tmp, "deep-config")
    with open(os.path.join(deep_config, "config.json"), "w") as f:
        f.write(deep_json(1000000))
    deep_tokenizer = copy_model(model, tmp, "deep-tokenizer")
    with open(os.path.join(deep_tokenizer, "tokenizer.json"), "w") as f:
        f.write(deep_json(1000000))
    deep_header = copy_model(model, tmp, "deep-header", with_weights=False)
    header = ("{\"w\": " + "[" * 1000000).encode()
    with open(os.path.join(deep_header, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
    beams = copy_model(model, tmp, "absurd-beams")
    edit_json(os.path.join(beams, "config.json"),
              lambda c: c["text_config"].update(num_beams=1000))
    std = copy_model(model, tmp, "zero-std")
    edit_json(os.path.join(std, "preprocessor_config.json"),
              lambda c: c.update(image_std=[0.229, 0, 0.225]))
    nan_weights = copy_model(model, tmp, "nan-weights")
    edit_tensor(os.path.join(nan_weights, "model.safetensors"), "language_model.lm_head.weight",
                lambda v: v[:100] + [float("nan")] + v[101:])
    # finite weights whose logits overflow: caught at run time
    overflow = copy_model(model, tmp, "overflowing-logits")
    edit_tensor(os.path.join(overflow, "model.safetensors"), "language_model.lm_head.weight",
                lambda v: [3e38] * len(v))
    fifo = copy_model(model, tmp, "fifo-config")
    os.unlink(os.path.join(fifo, "config.json"))
    os.mkfifo(os.path.join(fifo, "config.json"))
    dangling = copy_model(model, tmp, "dangling-config")
    os.unlink(os.path.join(dangling, "config.json"))
    os.symlink("moved-away/config.json", os.path.join(dangling, "config.json"))
    dir_weights = copy_model(model, tmp, "directory-weights", with_weights=False)
    os.mkdir(os.path.join(dir_weights, "model.safetensors"))
    model_file = os.path.join(tmp, "model-file")
    shutil.copy(os.path.join(model, "config.json"), model_file)
    # images whose headers declare more than is decoded (8192 a side)
    claims_huge = os.path.join(tmp, "claims-huge.png")
    png(claims_huge, 100000, 100000, 4)
    too_large = os.path.join(tmp, "too-large.png")
    png(too_large, 12000, 12000, 12000)

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
        ("no new tokens", ["--model", model, "--max-new-tokens", "0", image], "max-new-tokens"),
        ("too many new tokens", ["--model", model, "--max-new-tokens", "5000", image], "1..1024"),
        ("no beams", ["--model", model, "--num-beams", "0", image], "num-beams"),
        ("deeply nested config.json", ["--model", deep_config, image], "64 levels"),
        ("deeply nested tokenizer.json", ["--model", deep_tokenizer, image], "64 levels"),
        ("deeply nested safetensors header", ["--model", deep_header, image], "64 levels"),
        ("absurd num_beams in config.json", ["--model", beams, image], "num_beams is 1000"),
        ("zero image_std", ["--model", std, image], "image_std[1]"),
        ("NaN in the weights", ["--model", nan_weights, image], "language_model.lm_head.weight"),
        ("logits that overflow, greedy", ["--model", overflow, image], "not finite"),
        ("logits that overflow, beams", ["--model", overflow, "--num-beams", "3", image], "not finite"),
        ("config.json is a FIFO", ["--model", fifo, image], "FIFO"),
        ("config.json is a dangling link", ["--model", dangling, image], "dangling"),
        ("model.safetensors is a directory", ["--model", dir_weights, image], "is a directory"),
        ("model path is a file", ["--model", model_file, image], "not a directory"),
        ("image that claims 100000 x 100000", ["--model", model, claims_huge], "8192"),
        ("image of 12000 x 12000", ["--model", model, too_large], "12000 x 12000"),
        ("negative threads", ["--model", model, "--threads", "-1", image], "--threads"),
        ("absurd threads", ["--model", model, "--threads", "100000", image], "--threads"),
        ("batch of 0", ["--model", model, "--batch", "0", image], "--batch"),
        ("batch of 17", ["--model", model, "--batch", "17", image], "--batch"),
        ("batch with --dump", ["--model", model, "--batch", "2", "--dump", "/tmp/f2-no-dump", image], "--dump"),
        ("unknown device", ["--model", model, "--device", "nosuchgpu", image], "nosuchgpu"),
        ("fp16 on the cpu backend", ["--model", model, "--precision", "fp16", image], "fp16"),
        ("bf16 on a Vulkan device", ["--model", model, "--device", "0", "--precision", "bf16", image], "bf16"),
        ("fp32 only on the reference", ["--model", model, "--device", "reference", "--precision", "bf16", image], "fp32"),
        # a CPU without AVX512_BF16, as oneDNN sees it when told to stop at AVX-512
        ("bf16 without AVX512_BF16", ["--model", model, "--precision", "bf16", image], "AVX512_BF16",
         {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}),
    ]
    failures = 0
    baseline_rss = None
    if not use_valgrind:
        # peak RSS of a normal run: a refused image must not add to it
        measured = run_measured([cli] + base + ["--model", model, image], 600)
        baseline_rss = measured[2] if measured else None
    for name, args, expect, *env in cases:
        cmd = [cli] + base + args
        saved = {k: os.environ.get(k) for k in (env[0] if env else {})}
        os.environ.update(env[0] if env else {})
        if use_valgrind:
            cmd = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
                   "--suppressions=" + os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                    "valgrind.supp")] + cmd
        measured = run_measured(cmd, 900 if use_valgrind else 180)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v
        problems = []
        if measured is None:
            # a FIFO read without care waits for a writer forever
            measured = (0, "", 0)
            problems.append("hung (timed out)")
        returncode, err, rss = measured
        err = err.strip()
        if returncode == 0 and not problems:
            problems.append("exited 0")
        if returncode < 0:
            problems.append(f"killed by signal {-returncode}")
        if returncode == 99:
            problems.append("valgrind found errors")
        if baseline_rss is not None and name.startswith("image") and rss > baseline_rss + 100:
            problems.append(f"peak RSS {rss} MiB, {rss - baseline_rss} MiB above a normal run: "
                            "the image was decoded before its size was checked")
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
