"""Throughput of pairwise verdicts: batched decision scoring vs generate-then-parse.

Measures, on the embedded model (or --base), pairs/s where each pair is scored in both orders:

- `dataset.score_decisions` (ours: length-sorted right-padded batches, the prompts' shared token
  prefix run once and its KV cache reused, the head on the last position only, one forward pass
  per order);
- the same without prefix sharing (every prompt token recomputed);
- naive: `model.generate` (greedy, `--gen-tokens` new tokens, one prompt at a time) and a regex
  "Filing ([AB])" on the text.

The forward-pass FLOP limit is the forward pass's FLOPs at the machine's fp32 matmul rate,
measured here with a `torch.mm` probe (2048^3, best of 5, before and after the timings; the
higher one). Forward FLOPs = 2 x params x tokens for the weights every token goes through (the
non-embedding parameters: the LM head runs on one position per prompt) plus causal attention's
score and value products, counted exactly (`attention_flops`). The ratio without attention
("weights only") and with all parameters are reported too. All are FLOPs of the full
computation (the work prefix sharing saves counts as done), except "executed", which counts
the shared prefix once, as it runs: the hardware efficiency of what was computed.

Prompts: by default synthetic ones of equal length (`--prompt-tokens`), so batches carry no
padding and need no attention mask; `--pairs-dir DIR --split test` scores the first `--pairs`
rows of a pairs split instead, in both orders exactly as `evaluate` does (real digests of
different lengths: padded batches with a mask). FLOPs count real tokens only, so padding is
waste against the limit.

Usage: python bench/compare_throughput.py [--pairs 8] [--prompt-tokens 1024] [--batch-size 8]
       [--pairs-dir runs/demo/pairs --split test]
Prints a table, then one final JSON line {"bench": "compare_throughput", ...}.
"""

from __future__ import annotations

import argparse
import json
import re
import time

import numpy as np
import torch
from benchargs import nonneg_int, positive_int, run

from filingcontrast.config import TrainConfig
from filingcontrast.dataset import PromptFormatter, score_decisions, shared_prefix_len
from filingcontrast.errors import UserError
from filingcontrast.model import EMBEDDED_SPEC, load_base
from filingcontrast.runtime import set_threads

WORDS = (
    "revenue increased guidance raised earnings per share consensus quarter results net income "
    "operating margin cash flow officer resigned agreement credit facility notes offering dividend"
).split()


def matmul_gflops(n: int = 2048, reps: int = 5) -> float:
    """Best-of-`reps` fp32 GFLOP/s of an n x n x n torch.mm on this machine."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / timed(lambda: torch.mm(a, b), reps) / 1e9


def make_instructions(formatter: PromptFormatter, pairs: int, tokens: int, seed: int) -> tuple:
    """Both orders of `pairs` synthetic comparisons, each prompt about `tokens` long."""
    rng = np.random.default_rng(seed)
    overhead = len(formatter.decision_prompt_ids("Compare Filing A () and Filing B ()."))
    per_digest = max(8, (tokens - overhead) // 2)
    ab, ba = [], []
    for _ in range(pairs):
        # ~1.3 words per token for this vocabulary; trimmed by tokens below.
        da, db = (" ".join(rng.choice(WORDS, size=per_digest)) for _ in range(2))
        da = formatter.tokenizer.decode(formatter.tokenizer(da).input_ids[:per_digest])
        db = formatter.tokenizer.decode(formatter.tokenizer(db).input_ids[:per_digest])
        ab.append(f"Compare Filing A ({da}) and Filing B ({db}). Which is better?")
        ba.append(f"Compare Filing A ({db}) and Filing B ({da}). Which is better?")
    return ab, ba


def real_instructions(pairs_dir: str, split: str, pairs: int) -> tuple:
    """Both orders of the first `pairs` rows of a pairs split, as `evaluate` scores them."""
    from filingcontrast.pairs import load_pairs, swapped_instruction

    rows = load_pairs(pairs_dir, split)[:pairs]
    if len(rows) < pairs:
        raise UserError(f"--pairs {pairs}: {pairs_dir} has only {len(rows)} {split} pairs")
    return [r["instruction"] for r in rows], [swapped_instruction(r) for r in rows]


def attention_flops(config, n_tokens: int) -> int:
    """Forward FLOPs of causal self-attention over one prompt of `n_tokens`: the query at
    position i (1-based) takes 2*d*i for its scores and 2*d*i for the weighted values, in every
    layer (d = heads x head_dim); summed over i = 1..n that is 2*L*d*n*(n+1). Counted exactly for
    the causal mask, i.e. half of the full-square figure some MFU conventions use."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    d = config.num_attention_heads * head_dim
    return 2 * config.num_hidden_layers * d * n_tokens * (n_tokens + 1)


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (allocator, kernels)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def naive_generate(model, formatter, instructions: list[str], new_tokens: int) -> list[str]:
    """Generate the answer's start greedily and parse "Filing A/B" out of the text."""
    out = []
    for text in instructions:
        ids = torch.tensor([formatter.prompt_ids(text)])  # (1, T)
        with torch.inference_mode():
            gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                 max_new_tokens=new_tokens, do_sample=False,
                                 pad_token_id=formatter.tokenizer.pad_token_id)  # fmt: skip
        answer = formatter.tokenizer.decode(gen[0, ids.shape[1] :], skip_special_tokens=True)
        m = re.search(r"Filing ([AB])", answer)
        out.append(m.group(1) if m else "?")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default=EMBEDDED_SPEC)
    ap.add_argument("--pairs", type=positive_int, default=8)
    ap.add_argument("--prompt-tokens", type=positive_int, default=1024)
    ap.add_argument("--batch-size", type=positive_int, default=8)
    ap.add_argument("--gen-tokens", type=positive_int, default=16)
    ap.add_argument("--naive-pairs", type=positive_int, default=2)
    ap.add_argument("--repeats", type=positive_int, default=2)
    ap.add_argument("--threads", type=nonneg_int, default=0, help="0 = every usable CPU")
    ap.add_argument("--pairs-dir", help="score real pairs from this pairs directory")
    ap.add_argument("--split", default="test", help="split of --pairs-dir (default test)")
    args = ap.parse_args()

    threads = set_threads(args.threads)
    real = real_instructions(args.pairs_dir, args.split, args.pairs) if args.pairs_dir else None
    model, tok = load_base(args.base, device="cpu")
    tc = TrainConfig()
    fmt = PromptFormatter(tok, template=tc.template, system_prompt=tc.system_prompt)
    ab, ba = real or make_instructions(fmt, args.pairs, args.prompt_tokens, seed=0)
    both = ab + ba
    prompt_ids = [fmt.decision_prompt_ids(t) for t in both]
    lengths = [len(p) for p in prompt_ids]
    tokens = sum(lengths)
    attn_flops = sum(attention_flops(model.config, n) for n in lengths)
    # What prefix sharing does not compute: the shared prefix of all but one prompt (its
    # weights and its own attention; the rest still attends to its cached keys).
    shared = shared_prefix_len(prompt_ids)
    skipped_tokens = (len(both) - 1) * shared
    skipped_attn = (len(both) - 1) * attention_flops(model.config, shared)
    params_all = sum(p.numel() for p in model.parameters())
    params_body = params_all - model.get_input_embeddings().weight.numel()
    probe_before = matmul_gflops()

    t_ours = timed(lambda: score_decisions(model, fmt, both, args.batch_size), args.repeats)
    t_noshare = timed(
        lambda: score_decisions(model, fmt, both, args.batch_size, share_prefix=False),
        args.repeats,
    )
    naive_both = ab[: args.naive_pairs] + ba[: args.naive_pairs]
    t_naive = timed(lambda: naive_generate(model, fmt, naive_both, args.gen_tokens), 1)
    naive_pps = args.naive_pairs / t_naive
    # The limit is the machine's best rate: probe before and after (other load varies).
    probe = max(probe_before, matmul_gflops())

    rows = []
    for name, secs, n_pairs, toks, skipped in (
        ("dataset.score_decisions", t_ours, args.pairs, tokens, (skipped_tokens, skipped_attn)),
        ("  without prefix sharing", t_noshare, args.pairs, tokens, (0, 0)),
    ):
        weights_gflops = 2 * params_body * toks / secs / 1e9
        gflops = weights_gflops + attn_flops / secs / 1e9
        executed = 2 * params_body * (toks - skipped[0]) + attn_flops - skipped[1]
        rows.append({
            "method": name, "pairs_per_s": n_pairs / secs, "tokens_per_s": toks / secs,
            "gflops": gflops, "ratio_to_limit": gflops / probe,
            "ratio_to_limit_executed": executed / secs / 1e9 / probe,
            "ratio_to_limit_weights_only": weights_gflops / probe,
            "ratio_to_limit_all_params": 2 * params_all * toks / secs / 1e9 / probe,
        })  # fmt: skip
    rows.append({"method": f"generate({args.gen_tokens})+regex", "pairs_per_s": naive_pps,
                 "tokens_per_s": None, "gflops": None, "ratio_to_limit": None,
                 "ratio_to_limit_executed": None, "ratio_to_limit_weights_only": None,
                 "ratio_to_limit_all_params": None})  # fmt: skip

    print(f"model {args.base}: {params_all / 1e6:.1f}M params ({params_body / 1e6:.1f}M "
          f"non-embedding), {threads} threads, fp32 mm probe {probe:.1f} GFLOP/s")  # fmt: skip
    source = f"{args.pairs_dir} ({args.split})" if args.pairs_dir else "synthetic, equal lengths"
    print(f"{args.pairs} pairs x 2 orders, ~{tokens / len(both):.0f} tokens per prompt "
          f"({min(lengths)}-{max(lengths)}; {source})")  # fmt: skip
    print(f"shared prefix {shared} tokens, run once instead of {len(both)} times")
    print(f"{'method':32} {'pairs/s':>9} {'tok/s':>9} {'GFLOP/s':>9} {'% limit':>8} "
          f"{'executed':>9} {'weights only':>12}")  # fmt: skip
    pct = lambda v: f"{100 * v:.0f}%" if v else "-"  # noqa: E731
    for r in rows:
        tps = f"{r['tokens_per_s']:.0f}" if r["tokens_per_s"] else "-"
        gf = f"{r['gflops']:.1f}" if r["gflops"] else "-"
        print(f"{r['method']:32} {r['pairs_per_s']:9.3f} {tps:>9} {gf:>9} "
              f"{pct(r['ratio_to_limit']):>8} {pct(r['ratio_to_limit_executed']):>9} "
              f"{pct(r['ratio_to_limit_weights_only']):>12}")  # fmt: skip
    ours = rows[0]
    print(json.dumps({
        "bench": "compare_throughput", "base": args.base, "threads": threads,
        "pairs": args.pairs, "tokens_per_prompt": tokens / len(both),
        "prompts": args.pairs_dir or "synthetic",
        "batch_size": args.batch_size, "matmul_gflops": probe, "rows": rows,
        "shared_prefix_tokens": shared,
        "ours_pairs_per_s": ours["pairs_per_s"], "ratio_to_flop_limit": ours["ratio_to_limit"],
        "ratio_to_flop_limit_executed": ours["ratio_to_limit_executed"],
        "naive_pairs_per_s": naive_pps, "speedup_vs_naive": ours["pairs_per_s"] / naive_pps,
    }))  # fmt: skip


if __name__ == "__main__":
    run(main, "compare_throughput")
