"""Tokens/s of our training step under LoRA options that change its cost, in one run.

Same rows, same step (train.train_step: micro-batches of one row, gradient accumulation over
--batch rows), on the embedded model; each variant is a list of dotted TrainConfig overrides.
Default variants: all layers with dropout 0.05 (the trainer's default) and 0, and LoRA on the top
15 / 10 decoder layers only (`train.lora_layers`), where the backward pass stops early.

Usage: python bench/train_options.py [--tokens 400] [--batch 4] [--steps 3]
Prints a table, then one final JSON line {"bench": "train_options", ...}.
"""

from __future__ import annotations

import argparse
import json
import time

from train_throughput import make_rows

VARIANTS = {
    "all layers, dropout 0.05": ["train.lora_dropout=0.05"],
    "all layers, dropout 0": ["train.lora_dropout=0"],
    "top 15 layers, dropout 0": ["train.lora_dropout=0", "train.lora_layers=15"],
    "top 10 layers, dropout 0": ["train.lora_dropout=0", "train.lora_layers=10"],
}


def run(base: str, overrides: list[str], tokens: int, batch: int, steps: int) -> float:
    import torch
    from accelerate import Accelerator
    from transformers import get_cosine_schedule_with_warmup

    from filingcontrast.config import load_config
    from filingcontrast.dataset import PromptFormatter, encode_rows
    from filingcontrast.train import _module, build_model, train_step

    cfg = load_config(
        None,
        [f'base="{base}"', "train.batch_size=1", f"train.grad_accum={batch}", *overrides],
    )
    model, tok = build_model(cfg, "cpu")
    model.train()
    fmt = PromptFormatter(tok, "chat", cfg.train.system_prompt)
    examples, _ = encode_rows(fmt, make_rows(tok, tokens, batch * (steps + 1)), tokens + 64)
    acc = Accelerator(cpu=True)
    wrapped = acc.prepare_model(_module(model, 1.0))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    sched = get_cosine_schedule_with_warmup(opt, 0, steps + 1)
    seconds, n_tokens = 0.0, 0
    for s in range(steps + 1):
        step = [[i] for i in range(s * batch, (s + 1) * batch)]
        t0 = time.perf_counter()
        _, n, _ = train_step(wrapped, acc, examples, step, cfg.train, tok.pad_token_id, opt, sched)
        if s:  # step 0 is warm-up
            seconds += time.perf_counter() - t0
            n_tokens += n
    return n_tokens / seconds


def main() -> None:
    from filingcontrast.model import EMBEDDED_SPEC
    from filingcontrast.runtime import set_threads

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default=EMBEDDED_SPEC)
    ap.add_argument("--tokens", type=int, default=400)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    threads = set_threads(0)
    rows = []
    for name, overrides in VARIANTS.items():
        tps = run(args.base, overrides, args.tokens, args.batch, args.steps)
        rows.append({"variant": name, "overrides": overrides, "tokens_per_s": tps})
        print(f"{name:28} {tps:8.1f} tokens/s", flush=True)
    ref = rows[0]["tokens_per_s"]
    for r in rows:
        r["speedup_vs_default"] = r["tokens_per_s"] / ref
    print(json.dumps({"bench": "train_options", "base": args.base, "threads": threads,
                      "tokens": args.tokens, "batch": args.batch, "steps": args.steps,
                      "rows": rows}))  # fmt: skip


if __name__ == "__main__":
    main()
