#!/usr/bin/env python3
"""Times Hugging Face transformers' own Florence-2 model at the shapes of a
Florence-2 config, with random weights, so that bench-florence2's figures
have a baseline measured on the same machine. For each precision and
attention implementation it times the stages bench-florence2 prints:

  vision    the DaViT tower and the image projection (get_image_features)
  encoder   the text encoder over 577 image tokens and the <OD> prompt
  step      one decoder step with the key/value cache, LM head and argmax
            included, for 1 and for 3 rows (beams)
  od        model.generate() for <OD> from pixels, the given number of
            tokens forced (min_new_tokens = max_new_tokens), 1 and 3 beams

It prints a table, then one JSON line per measurement (prefix "json: ").
Each figure is the median of --repeat timed runs after two warm-up runs.

  bench-transformers.py [--config DIR] [--device cuda|cpu]
      [--precisions fp16,fp32] [--attention sdpa,eager] [--beams 1,3]
      [--tokens 64] [--repeat N]

The config is the original (remote-code) Florence-2 layout this project
reads; it is translated to transformers' native Florence2Config, whose
vocabulary, like the released native checkpoints', holds one more token
(<image>) and is padded to a multiple of 64.

Exit status: 0 timed; 77 torch, transformers or the device is missing;
1 some measurement failed (the others are still printed); 2 bad usage.
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import time
import traceback

SKIP = 77
IMAGE_TOKENS = 577
OD_PROMPT = "Locate the objects with category name in the image."
# generation settings that the native config must not carry (generate gets
# them as arguments instead)
GENERATION_KEYS = ("num_beams", "early_stopping", "no_repeat_ngram_size",
                   "forced_bos_token_id", "forced_eos_token_id", "max_length",
                   "min_length", "length_penalty")


def parse_args():
    here = os.path.dirname(os.path.abspath(__file__))
    default_config = os.path.join(
        os.environ.get("F2_CONFIGS_DIR", os.path.join(here, "..", "..", "shared", "florence2-configs")),
        "base")
    p = argparse.ArgumentParser(
        description="Time transformers' native Florence-2 (random weights) per stage.")
    p.add_argument("--config", default=default_config,
                   help="folder with the original config.json, preprocessor_config.json "
                        "and tokenizer.json (default: $F2_CONFIGS_DIR/base)")
    p.add_argument("--device", default="cuda", help="torch device (default cuda)")
    p.add_argument("--precisions", default="fp16,fp32", help="fp16, bf16 and/or fp32")
    p.add_argument("--attention", default="sdpa,eager",
                   help="attention implementations (sdpa, eager, ...)")
    p.add_argument("--beams", default="1,3", help="beam counts for the step and od rows")
    p.add_argument("--tokens", type=int, default=64, help="tokens generated per frame (forced)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per figure")
    args = p.parse_args()
    if args.tokens < 2 or args.repeat < 1:
        p.error("--tokens needs at least 2 and --repeat at least 1")
    try:
        args.beams = [int(b) for b in args.beams.split(",")]
    except ValueError:
        p.error("--beams takes comma-separated counts, like 1,3")
    if any(b < 1 for b in args.beams):
        p.error("--beams takes counts of 1 or more")
    args.precisions = args.precisions.split(",")
    args.attention = args.attention.split(",")
    return args


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def native_config(config_dir):
    """The native Florence2Config for an original config.json."""
    from transformers import Florence2Config

    raw = read_json(os.path.join(config_dir, "config.json"))
    v = raw["vision_config"]
    vision = {
        "depths": v["depths"],
        "patch_size": v["patch_size"],
        "patch_stride": v["patch_stride"],
        "patch_padding": v["patch_padding"],
        "patch_prenorm": v["patch_prenorm"],
        "embed_dim": v["dim_embed"],
        "num_heads": v["num_heads"],
        "num_groups": v["num_groups"],
        "window_size": v["window_size"],
        "projection_dim": v["projection_dim"],
        "max_temporal_embeddings": v["visual_temporal_embedding"]["max_temporal_embeddings"],
        "max_position_embeddings": v["image_pos_embed"]["max_pos_embeddings"],
    }
    text = {k: val for k, val in raw["text_config"].items() if k not in GENERATION_KEYS}
    image_token_id = text["vocab_size"]
    text["vocab_size"] = (image_token_id + 1 + 63) // 64 * 64
    return Florence2Config(text_config=text, vision_config=vision,
                           image_token_id=image_token_id)


def image_size(config_dir):
    try:
        size = read_json(os.path.join(config_dir, "preprocessor_config.json"))["size"]
        return int(size["height"]), int(size["width"])
    except (OSError, KeyError, ValueError):
        return 768, 768


def prompt_ids(config_dir):
    """The <OD> prompt's ids (with <s> and </s>), from the config's tokenizer."""
    path = os.path.join(config_dir, "tokenizer.json")
    try:
        from tokenizers import Tokenizer
        return Tokenizer.from_file(path).encode(OD_PROMPT).ids, "tokenizer.json"
    except Exception as e:  # noqa: BLE001 - any failure falls back
        print(f"note: {path} not usable ({e}); using 13 stand-in prompt ids")
        return [0] + [100 + i for i in range(11)] + [2], "stand-in"


def build_model(torch, config, attention, dtype, device):
    from transformers import Florence2ForConditionalGeneration as Model

    # made on the device where torch can (2.0 and newer): no copy, faster init
    made_on = torch.device(device) if hasattr(torch.device, "__enter__") else contextlib.nullcontext()
    with made_on:
        try:
            model = Model._from_config(config, attn_implementation=attention, dtype=dtype)
        except TypeError:
            model = Model._from_config(config, attn_implementation=attention, torch_dtype=dtype)
    return model.to(device=device, dtype=dtype).eval()


def as_features(torch, out, hidden):
    """get_image_features() gives a tensor in some versions and a model
    output in others: the projected image tokens either way."""
    if isinstance(out, torch.Tensor):
        return out
    for name in ("pooler_output", "image_embeds", "last_hidden_state"):
        t = getattr(out, name, None)
        if t is not None and t.shape[-1] == hidden:
            return t
    return out[0]


class Bench:
    def __init__(self, torch, device, repeat):
        self.torch = torch
        self.device = device
        self.repeat = repeat

    def sync(self):
        if self.device.startswith("cuda"):
            self.torch.cuda.synchronize()

    def median_ms(self, fn):
        for _ in range(2):
            fn()
        self.sync()
        times = []
        for _ in range(self.repeat):
            t0 = time.perf_counter()
            fn()
            self.sync()
            times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)


def measure(torch, args, config, ids, precision, attention, bench, report):
    from transformers.modeling_outputs import BaseModelOutput

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[precision]
    dev = args.device
    model = build_model(torch, config, attention, dtype, dev)
    hidden = config.text_config.d_model
    start_id = config.text_config.decoder_start_token_id
    row = {"precision": precision, "attention": attention,
           "attn_implementation": getattr(model.config, "_attn_implementation", attention)}

    h, w = image_size(args.config)
    gen = torch.Generator(device="cpu").manual_seed(1)
    pixels = torch.randn(1, 3, h, w, generator=gen).to(dev, dtype)
    prompt = torch.tensor([ids], device=dev)

    def vision():
        return as_features(torch, model.get_image_features(pixel_values=pixels), hidden)

    with torch.inference_mode():
        feats = vision()
        if feats.shape[1] != IMAGE_TOKENS:
            print(f"note: {feats.shape[1]} image tokens, not {IMAGE_TOKENS}")
        row["vision_ms"] = bench.median_ms(vision)
        report(row, "vision_ms")

        embeds = torch.cat([feats.to(dtype), model.get_input_embeddings()(prompt)], dim=1)
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=dev)
        encoder = model.get_encoder()

        def encode():
            return encoder(inputs_embeds=embeds, attention_mask=mask).last_hidden_state

        enc = encode()
        row["encoder_ms"] = bench.median_ms(encode)
        report(row, "encoder_ms")
        row["finite"] = bool(torch.isfinite(enc).all())

        for beams in args.beams:
            enc_b = BaseModelOutput(last_hidden_state=enc.expand(beams, -1, -1).contiguous())
            mask_b = mask.expand(beams, -1)

            def decode():
                step_ids = torch.full((beams, 1), start_id, dtype=torch.long, device=dev)
                cache = None
                for _ in range(args.tokens):
                    out = model(encoder_outputs=enc_b, attention_mask=mask_b,
                                decoder_input_ids=step_ids, past_key_values=cache,
                                use_cache=True)
                    cache = out.past_key_values
                    step_ids = out.logits[:, -1].argmax(-1, keepdim=True)
                return step_ids

            row[f"step_b{beams}_ms"] = bench.median_ms(decode) / args.tokens
            report(row, f"step_b{beams}_ms")

        image_ids = torch.full((1, IMAGE_TOKENS), config.image_token_id, dtype=torch.long, device=dev)
        input_ids = torch.cat([image_ids, prompt], dim=1)
        input_mask = torch.ones_like(input_ids)
        for beams in args.beams:
            produced = []

            def od():
                out = model.generate(input_ids=input_ids, pixel_values=pixels,
                                     attention_mask=input_mask, num_beams=beams,
                                     do_sample=False, max_new_tokens=args.tokens,
                                     min_new_tokens=args.tokens, no_repeat_ngram_size=3,
                                     forced_bos_token_id=0, early_stopping=False)
                produced.append(out.shape[-1] - 1)

            row[f"od_b{beams}_ms"] = bench.median_ms(od)
            row[f"od_b{beams}_tokens"] = produced[-1]
            if produced[-1] != args.tokens:
                print(f"note: generate() gave {produced[-1]} tokens, not {args.tokens}")
            report(row, f"od_b{beams}_ms")

    if dev.startswith("cuda"):
        row["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
        torch.cuda.reset_peak_memory_stats()
    return row


def print_table(rows, beams):
    cols = ["vision_ms", "encoder_ms"] + [f"step_b{b}_ms" for b in beams] + [f"od_b{b}_ms" for b in beams]
    heads = ["vision", "encoder"] + [f"step b{b}" for b in beams] + [f"od b{b}" for b in beams]
    print()
    print(f"{'precision':<10}{'attention':<11}" + "".join(f"{h:>11}" for h in heads) + "   (ms)")
    for r in rows:
        cells = "".join(f"{r[c]:>11.2f}" if isinstance(r.get(c), float) else f"{'-':>11}" for c in cols)
        print(f"{r['precision']:<10}{r['attn_implementation']:<11}{cells}")


def main():
    args = parse_args()
    if not os.path.isfile(os.path.join(args.config, "config.json")):
        print(f"bench-transformers: no config.json in {args.config} (give --config DIR)",
              file=sys.stderr)
        return 2
    try:
        import torch
        import transformers
        from transformers import Florence2ForConditionalGeneration
        del Florence2ForConditionalGeneration   # only its presence matters here
    except ImportError as e:
        print(f"bench-transformers: skipped: {e} (needs torch and a transformers "
              "with the native Florence-2 model, 4.56 or newer)")
        return SKIP
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench-transformers: skipped: torch sees no CUDA device (use --device cpu to time on the CPU)")
        return SKIP

    torch.manual_seed(0)
    where = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"{torch.get_num_threads()} CPU threads"
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {args.device}: {where}")
    if args.device.startswith("cuda"):
        print(f"tf32 matmul {torch.backends.cuda.matmul.allow_tf32}, tf32 cudnn {torch.backends.cudnn.allow_tf32}")
    config = native_config(args.config)
    ids, ids_from = prompt_ids(args.config)
    print(f"config {args.config}: vocabulary {config.text_config.vocab_size} "
          f"(<image> = {config.image_token_id}), {IMAGE_TOKENS} image tokens + "
          f"{len(ids)} prompt ids ({ids_from}), {args.tokens} tokens forced, "
          f"median of {args.repeat} runs")

    bench = Bench(torch, args.device, args.repeat)
    rows, failed = [], False

    def report(row, key):
        line = {k: row[k] for k in ("precision", "attention", "attn_implementation")}
        line.update(stage=key[:-3], ms=round(row[key], 3), tokens=args.tokens)
        print("json: " + json.dumps(line), flush=True)

    for precision in args.precisions:
        for attention in args.attention:
            print(f"-- {precision}, {attention}", flush=True)
            try:
                rows.append(measure(torch, args, config, ids, precision, attention,
                                    bench, report))
            except Exception:  # noqa: BLE001 - report it, go on with the rest
                failed = True
                print(f"FAILED: {precision} {attention}")
                traceback.print_exc(file=sys.stdout)
                rows.append({"precision": precision, "attention": attention,
                             "attn_implementation": attention})
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
    print_table(rows, args.beams)
    for r in rows:
        if "finite" in r and not r["finite"]:
            print(f"note: {r['precision']} {r['attention']}: the random model's encoder output "
                  "is not finite (timing is unaffected)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
