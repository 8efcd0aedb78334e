"""Training throughput: our LoRA step vs TRL's SFTTrainer (completion-only loss), same data.

    python bench/train_throughput.py [--steps 4] [--base smollm2-135m-instruct]

Each (trainer, allocator, setting) runs in its own subprocess, which reports tokens/s over the
timed steps (after one warm-up step), its own peak RSS (`resource.getrusage(RUSAGE_SELF).
ru_maxrss`) and the allocator it ran with. Settings: ~400-token rows at batch 4 without gradient
checkpointing, and 2048-token rows at batch 1 with checkpointing. Ours runs as the
`filingcontrast` commands run it (mimalloc preloaded, runtime.allocator_env), with glibc malloc,
and with glibc plus `train.lean_memory`; at 2048 also with selective checkpointing
(`train.grad_checkpointing=selective`) and without checkpointing (what our `auto` default picks
for one 2048-token row). TRL runs as its users run it (glibc) and, so that the allocator's share
of a speedup is visible, with the same mimalloc preload as ours. Each row is compared with TRL
checkpointing as ours does (on for full and selective; TRL's SFTConfig checkpoints by default).
Both trainers: LoRA r16/alpha 32/dropout 0.05 on all linear projections, AdamW lr 2e-4, fp32 on
CPU. Prints a table, then one JSON line (DESIGN.md).
TRL is a bench-only extra: `pip install -e .[bench]`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchargs import positive_int, run

SETTINGS = [
    {"name": "400x4", "tokens": 400, "batch": 4, "checkpointing": False},
    {"name": "2048x1", "tokens": 2048, "batch": 1, "checkpointing": True},
]


TRAINERS = {
    "ours": (),
    "ours_lean": ("train.lean_memory=true",),
    "ours_selective": ("train.grad_checkpointing=selective",),
    "ours_no_ckpt": ("train.grad_checkpointing=off",),
}
"""Our trainer's variants: the setting as specified, with `train.lean_memory`
(runtime.lean_allocator), and, where the setting checkpoints, with selective checkpointing and
without checkpointing (what `grad_checkpointing=auto` picks for one 2048-token row). Each row
is compared with TRL checkpointing as ours does (TRL has no selective mode: full for it)."""

OUR_RUNS = [
    ("ours", "mimalloc"),
    ("ours", "system"),
    ("ours_lean", "system"),
    ("ours_selective", "mimalloc"),
    ("ours_no_ckpt", "mimalloc"),
]
"""(variant, allocator) pairs timed per setting: the CLI's default allocator, glibc, glibc with
lean_memory (which only tunes glibc), and the checkpointing variants as the CLI runs them."""

CHECKPOINTING_ONLY = ("ours_selective", "ours_no_ckpt")
"""Variants that only mean something in a setting with checkpointing."""


def make_rows(tokenizer, target_tokens: int, n: int, seed: int = 0) -> list[dict]:
    """Pairs rows whose chat-formatted prompt + answer is about `target_tokens` long."""
    import random

    from filingcontrast.dataset import PromptFormatter

    rng = random.Random(seed)
    words = "revenue guidance quarter company filed results increased margin outlook board".split()
    fmt = PromptFormatter(tokenizer, "chat", "You compare SEC 8-K filings.")
    rows = []
    for i in range(n):
        winner = rng.choice("AB")
        output = (
            f"Filing {winner} resulted in better performance. Confidence: high. Analysis: "
            f"Filing {winner} reported stronger results and raised guidance."
        )
        body = []
        while True:
            text = " ".join(body)
            instr = f"Compare Filing A and Filing B. Which is better?\n\nFiling A:\n{text}"
            n_tok = len(fmt.prompt_ids(instr)) + len(fmt.answer_ids(output)) + 1
            if n_tok >= target_tokens - 8:
                break
            body += [rng.choice(words) for _ in range(max(1, (target_tokens - n_tok) // 2))]
        rows.append({"instruction": instr, "input": "", "output": output,
                     "meta": {"winner": winner, "pair_id": str(i)}})  # fmt: skip
    return rows


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def run_ours(base: str, setting: dict, steps: int, overrides: tuple[str, ...] = ()) -> dict:
    """Our trainer's optimizer step (train.train_step) with its defaults: micro-batches of one
    row and gradient accumulation over the setting's batch (same effective batch and loss).
    `overrides`: extra dotted TrainConfig settings (bench/train_options.py)."""
    from accelerate import Accelerator
    from transformers import get_cosine_schedule_with_warmup

    from filingcontrast.config import load_config
    from filingcontrast.dataset import PromptFormatter, encode_rows
    from filingcontrast.train import (
        _module,
        build_model,
        checkpointing_mode,
        enable_checkpointing,
        make_optimizer,
        prepare_process,
        train_step,
    )

    checkpointing = "on" if setting["checkpointing"] else "off"
    cfg = load_config(None, [f'base="{base}"', "train.batch_size=1", "train.lr=2e-4",
                             f"train.grad_accum={setting['batch']}",
                             f"train.grad_checkpointing={checkpointing}", *overrides])  # fmt: skip
    prepare_process(cfg.train, "cpu")
    model, tok = build_model(cfg, "cpu")
    mode = checkpointing_mode(cfg.train, setting["tokens"])
    if mode:
        enable_checkpointing(model, selective=mode == "selective")
    model.train()
    fmt = PromptFormatter(tok, "chat", cfg.train.system_prompt)
    rows = make_rows(tok, setting["tokens"], setting["batch"] * (steps + 1))
    examples, _ = encode_rows(fmt, rows, setting["tokens"] + 64)
    acc = Accelerator(cpu=True)
    wrapped = acc.prepare_model(_module(model, 1.0))
    opt = make_optimizer(model, cfg.train)
    sched = get_cosine_schedule_with_warmup(opt, 0, steps + 1)
    times, tokens = [], 0
    for s in range(steps + 1):
        step = [[i] for i in range(s * setting["batch"], (s + 1) * setting["batch"])]
        t0 = time.perf_counter()
        _, n_tok, _ = train_step(wrapped, acc, examples, step, cfg.train, tok.pad_token_id,
                                 opt, sched)  # fmt: skip
        if s:  # step 0 is warm-up
            times.append(time.perf_counter() - t0)
            tokens += n_tok
    return {"tokens_per_s": tokens / sum(times), "peak_rss_gb": _peak_rss_gb(),
            "step_s": sum(times) / len(times), "checkpointing": mode or "off"}  # fmt: skip


def run_trl(base: str, setting: dict, steps: int, checkpointing: bool | None = None) -> dict:
    """TRL's SFTTrainer on the same rows; `checkpointing` overrides the setting's."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from filingcontrast.dataset import PromptFormatter
    from filingcontrast.model import load_base
    from filingcontrast.runtime import set_threads

    set_threads(0)
    model, tok = load_base(base, device="cpu")
    fmt = PromptFormatter(tok, "chat", "You compare SEC 8-K filings.")
    rows = make_rows(tok, setting["tokens"], setting["batch"] * (steps + 1))
    data = Dataset.from_list([
        {"prompt": [{"role": "system", "content": fmt.system_prompt},
                    {"role": "user", "content": r["instruction"]}],
         "completion": [{"role": "assistant", "content": r["output"]}]}
        for r in rows
    ])  # fmt: skip

    class Timer(TrainerCallback):
        """Each step's time and the trainer's own count of the non-padding tokens it has fed
        (whatever order its sampler chose)."""

        def __init__(self) -> None:
            self.times: list[float] = []
            self.seen: list[int] = []

        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.times.append(time.perf_counter() - self.t0)
            self.seen.append(state.num_input_tokens_seen)

    timer = Timer()
    args = SFTConfig(
        output_dir="/tmp/trl-bench", per_device_train_batch_size=setting["batch"],
        max_steps=steps + 1, learning_rate=2e-4, lr_scheduler_type="cosine", logging_steps=1,
        report_to=[], save_strategy="no", use_cpu=True, bf16=False, fp16=False,
        gradient_checkpointing=setting["checkpointing"] if checkpointing is None else checkpointing,
        completion_only_loss=True,
        max_length=setting["tokens"] + 64, dataloader_num_workers=0, shuffle_dataset=False,
        disable_tqdm=True, include_num_input_tokens_seen="non_padding",
    )  # fmt: skip
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                      task_type="CAUSAL_LM")  # fmt: skip
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok,
                         peft_config=lora, callbacks=[timer])  # fmt: skip
    trainer.train()
    timed = timer.times[1:]
    tokens = timer.seen[-1] - timer.seen[0]  # after the warm-up step
    return {"tokens_per_s": tokens / sum(timed), "peak_rss_gb": _peak_rss_gb(),
            "step_s": sum(timed) / len(timed)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=positive_int, default=4,
                    help="timed steps per setting (+1 warm-up)")  # fmt: skip
    ap.add_argument("--base", default="smollm2-135m-instruct")
    names = [s["name"] for s in SETTINGS]
    ap.add_argument("--settings", default=",".join(names), help=f"some of {','.join(names)}")
    ap.add_argument("--worker", help=argparse.SUPPRESS)  # "ours:400x4" inside the subprocess
    args = ap.parse_args()
    unknown = [n for n in args.settings.split(",") if n not in names]
    if unknown:
        ap.error(f"--settings {args.settings!r}: choose from {','.join(names)}")
    if args.worker:
        who, name = args.worker.split(":")
        setting = next(s for s in SETTINGS if s["name"] == name)
        if who in ("trl_ckpt", "trl_no_ckpt"):
            res = run_trl(args.base, setting, args.steps, who == "trl_ckpt")
        else:
            res = run_ours(args.base, setting, args.steps, TRAINERS[who])
        from filingcontrast.runtime import active_allocator

        print("RESULT " + json.dumps({**res, "allocator": active_allocator()}), flush=True)
        return
    rows = []
    for setting in [s for s in SETTINGS if s["name"] in args.settings.split(",")]:
        ours = {
            (who, alloc): _worker(who, alloc, setting, args)
            for who, alloc in OUR_RUNS
            if setting["checkpointing"] or who not in CHECKPOINTING_ONLY
        }
        # TRL with checkpointing on or off as ours (TRL has no selective mode: full for it)
        modes = sorted({res["checkpointing"] != "off" for res in ours.values()})
        trl = {
            (on, alloc): _worker("trl_ckpt" if on else "trl_no_ckpt", alloc, setting, args)
            for on in modes
            for alloc in ("system", "mimalloc")
        }
        for (who, _), res in ours.items():
            on = res["checkpointing"] != "off"
            base, same = trl[on, "system"], trl[on, res["allocator"]]
            rows.append({
                "setting": setting["name"], "checkpointing": setting["checkpointing"],
                "trainer": who, "allocator": res["allocator"],
                "ours_checkpointing": res["checkpointing"],
                "ours_tokens_per_s": res["tokens_per_s"], "trl_tokens_per_s": base["tokens_per_s"],
                "speedup": res["tokens_per_s"] / base["tokens_per_s"],
                "ours_peak_rss_gb": res["peak_rss_gb"], "trl_peak_rss_gb": base["peak_rss_gb"],
                "rss_ratio": res["peak_rss_gb"] / base["peak_rss_gb"],
                "trl_same_allocator_tokens_per_s": same["tokens_per_s"],
                "speedup_same_allocator": res["tokens_per_s"] / same["tokens_per_s"],
                "trl_same_allocator_peak_rss_gb": same["peak_rss_gb"],
                "rss_ratio_same_allocator": res["peak_rss_gb"] / same["peak_rss_gb"],
            })  # fmt: skip
    print("TRL = TRL as its users run it (glibc); TRL* = TRL with our row's allocator")
    print(f"{'setting':<8} {'trainer':<14} {'alloc':<8} {'ckpt':<9} {'tok/s':>7} {'TRL':>6} "
          f"{'speedup':>8} {'TRL*':>6} {'vs TRL*':>8} {'GB':>5} {'TRL GB':>6} {'ratio':>5} "
          f"{'TRL* GB':>7} {'ratio*':>6}")  # fmt: skip
    for r in rows:
        print(f"{r['setting']:<8} {r['trainer']:<14} {r['allocator']:<8} "
              f"{r['ours_checkpointing']:<9} {r['ours_tokens_per_s']:>7.1f} "
              f"{r['trl_tokens_per_s']:>6.1f} {r['speedup']:>7.2f}x "
              f"{r['trl_same_allocator_tokens_per_s']:>6.1f} {r['speedup_same_allocator']:>7.2f}x "
              f"{r['ours_peak_rss_gb']:>5.2f} {r['trl_peak_rss_gb']:>6.2f} {r['rss_ratio']:>5.2f} "
              f"{r['trl_same_allocator_peak_rss_gb']:>7.2f} "
              f"{r['rss_ratio_same_allocator']:>6.2f}")  # fmt: skip
    first = rows[0]
    print(json.dumps({
        "bench": "train_throughput", "rows": rows,
        "ours_tokens_per_s": first["ours_tokens_per_s"], "trl_tokens_per_s": first["trl_tokens_per_s"],
        "speedup_vs_trl": first["speedup"], "ours_peak_rss_gb": first["ours_peak_rss_gb"],
        "trl_peak_rss_gb": first["trl_peak_rss_gb"], "peak_rss_ratio_vs_trl": first["rss_ratio"],
        "allocator": first["allocator"], "trl_allocator": "system",
        "trl_same_allocator_tokens_per_s": first["trl_same_allocator_tokens_per_s"],
        "speedup_vs_trl_same_allocator": first["speedup_same_allocator"],
        "versions": library_versions(),
    }))  # fmt: skip


def library_versions() -> dict[str, str | None]:
    """The libraries a ratio depends on (a newer TRL changed its default loss: the figures
    hold for the versions recorded here)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in ("torch", "transformers", "peft", "accelerate", "trl"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _worker(who: str, allocator: str, setting: dict, args: argparse.Namespace) -> dict:
    """Run one (trainer, allocator, setting) in a fresh subprocess: its own peak RSS."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", f"{who}:{setting['name']}",
         "--steps", str(args.steps), "--base", args.base],
        capture_output=True, text=True, env=_allocator_env(allocator),
    )  # fmt: skip
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    if out.returncode or not line:
        tail = out.stderr.strip().splitlines()
        if len(tail) == 1:  # a one-line user error (run() below), e.g. a base that does not load
            message = tail[0].removeprefix("train_throughput: ")
            sys.exit(f"train_throughput: {who} {setting['name']}: {message}")
        sys.exit(f"{who} {setting['name']} failed:\n{out.stderr[-3000:]}")
    res = json.loads(line[-1][7:])
    if res["allocator"] != allocator:  # e.g. cmeel-mimalloc not installed: say so, never mislabel
        sys.exit(f"train_throughput: {who} {setting['name']}: asked for {allocator}, ran "
                 f"{res['allocator']} (mimalloc needs Linux, the cmeel-mimalloc wheel that "
                 "`pip install -e .` brings, and no LD_PRELOAD of your own)")  # fmt: skip
    return res


def _allocator_env(allocator: str) -> dict[str, str]:
    """The environment of a worker that runs with `allocator` (`mimalloc` or `system`): the
    CLI's own choice (runtime.allocator_env) for a new process, where nothing is loaded yet;
    it also takes a mimalloc preload this script inherited out for `system`."""
    from filingcontrast.runtime import ALLOCATOR_ENV, allocator_env

    env = {**os.environ, ALLOCATOR_ENV: allocator}
    return allocator_env(env, loaded="system") or env


if __name__ == "__main__":
    run(main, "train_throughput")
