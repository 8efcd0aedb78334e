"""Tokens/s of our training step under LoRA options that change its cost, in one run.

Same rows, same step (`train_throughput.run_ours`: train.train_step with micro-batches of one
row, gradient accumulation over --batch rows, step 0 untimed), on the embedded model; each
variant is a list of dotted TrainConfig overrides. Default variants: all layers with dropout
0.05 (the trainer's default) and 0, each also with peft's own LoRA forward instead of ours
(`train.fused_lora=false`, filingcontrast.lora), and LoRA on the top 15 / 10 decoder layers only
(`train.lora_layers`), where the backward pass stops early.

Usage: python bench/train_options.py [--tokens 400] [--batch 4] [--steps 3]
Prints a table, then one final JSON line {"bench": "train_options", ...}.
"""

from __future__ import annotations

import argparse
import json

from benchargs import positive_int, run
from train_throughput import run_ours

VARIANTS = {
    "all layers, dropout 0.05": ["train.lora_dropout=0.05"],
    "dropout 0.05, peft's forward": ["train.lora_dropout=0.05", "train.fused_lora=false"],
    "all layers, dropout 0": ["train.lora_dropout=0"],
    "dropout 0, peft's forward": ["train.lora_dropout=0", "train.fused_lora=false"],
    "top 15 layers, dropout 0": ["train.lora_dropout=0", "train.lora_layers=15"],
    "top 10 layers, dropout 0": ["train.lora_dropout=0", "train.lora_layers=10"],
}


def main() -> None:
    from filingcontrast.model import EMBEDDED_SPEC
    from filingcontrast.runtime import set_threads

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default=EMBEDDED_SPEC)
    ap.add_argument("--tokens", type=positive_int, default=400, help="tokens per row")
    ap.add_argument("--batch", type=positive_int, default=4, help="rows per optimizer step")
    ap.add_argument("--steps", type=positive_int, default=3, help="timed steps (+1 warm-up)")
    args = ap.parse_args()
    threads = set_threads(0)
    rows = []
    for name, overrides in VARIANTS.items():
        setting = {"tokens": args.tokens, "batch": args.batch, "checkpointing": False}
        tps = run_ours(args.base, setting, args.steps, tuple(overrides))["tokens_per_s"]
        rows.append({"variant": name, "overrides": overrides, "tokens_per_s": tps})
        print(f"{name:28} {tps:8.1f} tokens/s", flush=True)
    ref = rows[0]["tokens_per_s"]
    for r in rows:
        r["speedup_vs_default"] = r["tokens_per_s"] / ref
    print(json.dumps({"bench": "train_options", "base": args.base, "threads": threads,
                      "tokens": args.tokens, "batch": args.batch, "steps": args.steps,
                      "rows": rows}))  # fmt: skip


if __name__ == "__main__":
    run(main, "train_options")
