"""LoRA fine-tuning with the loss on the answer only (`filingcontrast train`).

One process by default; several through `accelerate launch -m filingcontrast train ...` (DDP; each
process takes its slice of every global micro-batch, so N processes with batch b train like one
process with batch N*b). Every `save_every` steps, and on Ctrl-C, a resumable checkpoint (adapter,
optimizer, scheduler, RNG states, data position) is written to a temp dir and renamed into
`checkpoints/step-N/` with a `COMPLETE` marker written last; `--resume` continues from the latest
complete one and reproduces the loss sequence of an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import pickle
import random
import shutil
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from filingcontrast import metrics as M
from filingcontrast.config import RunConfig, TrainConfig, to_dict
from filingcontrast.dataset import (
    IGNORE,
    Example,
    PromptFormatter,
    collate,
    encode_rows,
    length_grouped_batches,
    loss_step,
    padding_share,
    pair_probabilities,
)
from filingcontrast.errors import CheckpointError, UserError, first_line
from filingcontrast.pairs import SUMMARY_TYPES, a_won, check_pairs_dir, pair_items
from filingcontrast.runtime import (
    ALLOCATOR_ENV,
    RunDir,
    active_allocator,
    atomic_write_json,
    atomic_write_text,
    check_field_types,
    iter_jsonl,
    lean_allocator,
    read_json,
    seed_everything,
    set_threads,
)

log = logging.getLogger(__name__)

META_FILE = "filingcontrast.json"
COMPLETE = "COMPLETE"


@dataclass
class TrainState:
    """Data position and best score: what a checkpoint needs besides weights and optimizer."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best: list[float] | None = None  # [valid_accuracy, -valid_loss] of the saved adapter
    losses: list[float] = field(default_factory=list)
    pending_eval: bool = False  # the epoch ended, its validation (and adapter save) is not done
    fingerprint: dict = field(default_factory=dict)  # what --resume must find unchanged


# Settings that may differ on --resume: they change neither the data order nor the numbers.
RESUME_FREE = (
    "threads",
    "save_every",
    "lean_memory",
    "grad_checkpointing",
    "checkpointing_threshold",
    "merge",
)


def run_fingerprint(cfg: RunConfig, rows: list[dict], processes: int) -> dict[str, Any]:
    """What a checkpoint can only be resumed with: base, seed, processes, the `[train]` settings
    (but RESUME_FREE) and a hash of the training rows."""
    blob = json.dumps(rows, sort_keys=True, default=str).encode()
    train = {k: v for k, v in to_dict(cfg.train).items() if k not in RESUME_FREE}
    out = {"base": cfg.base, "seed": cfg.seed, "processes": processes, "train": train,
           "train_rows": hashlib.sha256(blob).hexdigest()[:16]}  # fmt: skip
    return json.loads(json.dumps(out))  # as state.json gives it back


def _fingerprint_diff(saved: dict, now: dict) -> list[str]:
    """`key: checkpoint X, now Y` for every setting that differs (empty: resumable)."""

    def flat(fp: dict) -> dict[str, Any]:  # {"train": {"lr": x}} -> {"train.lr": x}
        out = {k: v for k, v in fp.items() if k != "train"}
        return out | {f"train.{k}": v for k, v in fp.get("train", {}).items()}

    flat_saved, flat_now = flat(saved), flat(now)
    out = []
    for key in sorted(set(flat_saved) | set(flat_now)):
        if flat_saved.get(key) != flat_now.get(key):
            if key == "train_rows":
                out.append("the training rows differ (another pairs dir, or changed pairs)")
            else:
                out.append(f"{key}: checkpoint {flat_saved.get(key)!r}, now {flat_now.get(key)!r}")
    return out


# ---------------------------------------------------------------------------------------------
# Data


def read_pairs(pairs_dir: Path, split: str) -> list[dict]:
    """Rows of `pairs_dir/<split>.jsonl` (validated by pairs.load_pairs); [] when missing."""
    from filingcontrast.pairs import load_pairs

    if not (Path(pairs_dir) / f"{split}.jsonl").exists():
        return []
    return list(load_pairs(pairs_dir, split))


def pairs_digest_meta(pairs_dir: Path) -> dict[str, Any]:
    """How the training digests were built (pairs summary.json), so that compare and rank
    build theirs the same way: `digest_tokens` and `key_facts`. Empty for hand-made pairs."""
    summary = read_json(pairs_dir / "summary.json", missing_ok=True)
    if summary is None:
        return {}
    check_field_types(pairs_dir / "summary.json", summary, SUMMARY_TYPES)
    out: dict[str, Any] = {"key_facts": summary.get("key_facts", False)}
    if summary.get("digest_tokens") is not None:
        out["digest_tokens"] = summary["digest_tokens"]
    return out


def seen_filings(train_rows: list[dict], valid_rows: list[dict]) -> dict[str, list[str]]:
    """Which filings the adapter learned from (`train`) and which chose its epoch and fitted its
    calibration (`valid`), recorded with it so that evaluate can refuse to score the first and
    flag the second."""
    from filingcontrast.pairs import pair_filings

    return {
        "train": sorted(set().union(*map(pair_filings, train_rows))),
        "valid": sorted(set().union(*map(pair_filings, valid_rows))),
    }


def with_min_gap(rows: list[dict], min_gap: float) -> list[dict]:
    """The rows whose realized gap (`meta.gap`, checked by pairs.load_pairs) is at least
    `min_gap`."""
    return [row for row in rows if row["meta"]["gap"] >= min_gap]


def _cap(rows: list[dict], cap: int, seed: int) -> list[dict]:
    """A seeded random subset of about `cap` rows in file order (all rows when cap is 0).

    Sampled by pair: both orders of a swap-augmented pair stay together (one order alone would
    teach the position the other order was there to cancel)."""
    if not cap or len(rows) <= cap:
        return rows
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(str((row.get("meta") or {}).get("pair_id", i)), []).append(i)
    order = list(groups)
    random.Random(seed).shuffle(order)
    keep: list[int] = []
    for key in order:
        if len(keep) >= cap:
            break
        keep += groups[key]
    return [rows[i] for i in sorted(keep)]


def step_plan(lengths: list[int], tc: TrainConfig, world: int, seed: int, epoch: int) -> list:
    """The epoch's optimizer steps: lists of `grad_accum` global micro-batches of row indices
    (global micro-batch = batch_size * world rows), length-grouped, order seeded per epoch."""
    batches = length_grouped_batches(lengths, tc.batch_size * world, seed + 1009 * epoch)
    return [batches[i : i + tc.grad_accum] for i in range(0, len(batches), tc.grad_accum)]


def rows_seen(
    lengths: list[int], tc: TrainConfig, world: int, seed: int, steps: int, per_epoch: int
) -> int:
    """Training rows the first `steps` optimizer steps went through (whole epochs of
    `per_epoch` steps, then the steps of the next epoch's plan): what a run stopped by
    max_steps actually trained on."""
    full, part = divmod(steps, per_epoch) if per_epoch else (0, 0)
    seen = full * len(lengths)
    if part:
        plan = step_plan(lengths, tc, world, seed, full)
        seen += sum(len(mb) for step in plan[:part] for mb in step)
    return seen


def _weight_total(examples: list[Example], decision_weight: float) -> float:
    """Loss normalizer of a set of rows: labelled next-token positions, decision token weighted."""
    total = 0.0
    for ex in examples:
        total += sum(1 for label in ex.labels[1:] if label != IGNORE)
        if ex.decision_pos >= 1:
            total += decision_weight - 1.0
    return total


# ---------------------------------------------------------------------------------------------
# Model


def build_model(cfg: RunConfig, device: str) -> tuple[Any, Any]:
    """Base model with LoRA adapters (base frozen) and its tokenizer."""
    from peft import LoraConfig, get_peft_model

    from filingcontrast.model import load_base

    tc = cfg.train
    base, tokenizer = load_base(cfg.base, device=device, dtype=tc.dtype, seed=cfg.seed)
    targets: Any = tc.lora_targets
    if targets == ["all-linear"]:
        targets = "all-linear"
    n_layers = int(base.config.num_hidden_layers)
    if tc.lora_layers > n_layers:
        raise UserError(
            f"train.lora_layers={tc.lora_layers}: {cfg.base} has only {n_layers} decoder layers"
        )
    top = list(range(n_layers - tc.lora_layers, n_layers)) if tc.lora_layers else None
    if top is not None and targets == "all-linear":
        targets = _layer_linear_names(base)  # peft takes layers_to_transform with names only
    lora = LoraConfig(
        r=tc.lora_r,
        lora_alpha=tc.lora_alpha,
        lora_dropout=tc.lora_dropout,
        target_modules=targets,
        layers_to_transform=top,
        task_type="CAUSAL_LM",
    )
    if tc.fused_lora and device == "cpu":  # elsewhere peft's dispatch (quantized layers etc.)
        from filingcontrast.lora import register_fast_lora

        register_fast_lora(lora)
    try:
        with _peft_wrapping():
            model = get_peft_model(base, lora)
    except ValueError as exc:
        # peft prints the whole offending module ("Target module LlamaModel(\n ...\n) is not
        # supported. ..."): keep its name and the verdict, on one line
        lines = str(exc).strip().splitlines() or [""]
        message = (
            lines[0] if len(lines) == 1 else f"{lines[0].rstrip('(')} {lines[-1].lstrip(') ')}"
        )
        raise UserError(f"train.lora_targets={tc.lora_targets}: {message}") from None
    return model, tokenizer


@contextmanager
def _peft_wrapping() -> Iterator[None]:
    """peft 0.21 reads transformers 5's deprecated `is_gradient_checkpointing` whenever it wraps a
    model (get_peft_model, PeftModel.from_pretrained): a FutureWarning about the two libraries'
    interplay on every adapter load, which no user of ours can act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
        )
        yield


def _layer_linear_names(base: Any) -> list[str]:
    """Leaf names of the linear projections inside the decoder layers (what `all-linear`
    means, spelled out): q_proj, k_proj, ... for Llama-style models."""
    import torch

    head = base.get_output_embeddings()
    return sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, mod in base.named_modules()
            if isinstance(mod, torch.nn.Linear) and mod is not head and ".layers." in f".{name}"
        }
    )


def prepare_process(tc: TrainConfig, device: str, processes: int = 1) -> int:
    """Process-wide settings a training run needs before the model is built: torch threads
    (returned) and, with `lean_memory` on CPU, the allocator (runtime.lean_allocator)."""
    threads = set_threads(tc.threads, processes=processes)
    if tc.lean_memory and device == "cpu":
        if active_allocator() == "mimalloc":
            log.warning(
                "train.lean_memory: tunes glibc malloc, but this process runs mimalloc (already "
                f"lean); {ALLOCATOR_ENV}=system uses glibc"
            )
        elif not lean_allocator():
            log.warning("train.lean_memory: not a glibc system, the allocator is unchanged")
    return threads


def _selective_policy(hidden_size: int) -> Callable[..., Any]:
    """Selective-checkpointing policy: keep the outputs of the attention kernels (any backend)
    and of the matmuls whose output is at most `hidden_size` wide (q, k, v, o, the MLP's down
    projection, LoRA's r-wide products); recompute the rest, i.e. the MLP's gate/up projections
    (the bulk of the activation memory) and the elementwise ops. It runs for every op of every
    checkpointed layer, forward and recomputation: the op sets are resolved once, here."""
    import torch
    from torch.utils.checkpoint import CheckpointPolicy

    aten = torch.ops.aten
    kernels = ("flash_attention", "flash_attention_for_cpu", "efficient_attention",
               "cudnn_attention", "fused_attention_overrideable")  # fmt: skip
    attention = {
        getattr(aten, f"_scaled_dot_product_{k}").default
        for k in kernels
        if hasattr(aten, f"_scaled_dot_product_{k}")
    }
    weight_arg = {aten.mm.default: 1, aten.addmm.default: 2}  # where the [in, out] matrix is

    def policy(ctx: Any, op: Any, *args: Any, **kwargs: Any) -> Any:
        if op in attention:
            return CheckpointPolicy.MUST_SAVE
        arg = weight_arg.get(op)
        if arg is not None and args[arg].shape[-1] <= hidden_size:
            return CheckpointPolicy.MUST_SAVE
        return CheckpointPolicy.PREFER_RECOMPUTE

    return policy


def checkpointing_mode(tc: TrainConfig, biggest_micro_batch: int) -> str | None:
    """Checkpointing for a run whose largest micro-batch has that many tokens: "full",
    "selective" or None (off)."""
    if tc.grad_checkpointing == "auto":
        return "full" if biggest_micro_batch > tc.checkpointing_threshold else None
    return {"on": "full", "selective": "selective", "off": None}[tc.grad_checkpointing]


def enable_checkpointing(model: Any, selective: bool = False) -> None:
    """Non-reentrant gradient checkpointing of every decoder layer plus the input-grad hook a
    frozen base needs; `selective` recomputes only what `_selective_policy` lets go
    (torch's selective activation checkpointing)."""
    kwargs: dict[str, Any] = {"use_reentrant": False}
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if selective:
        from torch.utils.checkpoint import create_selective_checkpoint_contexts

        policy = _selective_policy(int(base.config.hidden_size))
        kwargs["context_fn"] = partial(create_selective_checkpoint_contexts, policy)
    if hasattr(base, "activation_checkpointing_enable"):  # transformers >= 5 name
        base.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    model.enable_input_require_grads()


def make_optimizer(model: Any, tc: TrainConfig) -> Any:
    """AdamW over the trainable (adapter) weights; with `loraplus_ratio`, peft's LoRA+ groups."""
    import torch

    if tc.loraplus_ratio:
        from peft.optimizers import create_loraplus_optimizer

        return create_loraplus_optimizer(
            model, torch.optim.AdamW, lr=tc.lr, loraplus_lr_ratio=tc.loraplus_ratio,
            weight_decay=tc.weight_decay,
        )  # fmt: skip
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)


def _module(model: Any, decision_weight: float) -> Any:
    import torch

    class AnswerLossModule(torch.nn.Module):
        """DDP-wrappable: forward = weighted answer-loss sum over the batch (see loss_step)."""

        def __init__(self, peft_model: Any) -> None:
            super().__init__()
            self.peft = peft_model

        def forward(self, **batch: Any) -> Any:
            from filingcontrast.dataset import _answer_loss_sums

            total, _, stats = _answer_loss_sums(self.peft, batch, decision_weight)
            self.last_stats = stats
            return total

    return AnswerLossModule(model)


# ---------------------------------------------------------------------------------------------
# Saving


def _replace_dir(tmp: Path, target: Path) -> None:
    """Move a finished temp dir into place; the old target is removed only after."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def save_adapter(model: Any, tokenizer: Any, formatter: PromptFormatter, cfg: RunConfig,
                 target: Path, extra: dict | None = None) -> None:  # fmt: skip
    """PEFT adapter + tokenizer + filingcontrast.json, written to a temp dir then renamed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    meta = {
        "base": cfg.base,
        "template": formatter.template,
        "system_prompt": formatter.system_prompt,
        "decision_ids": list(formatter.decision_token_ids),
        "end_id": formatter.end_id,
        # training's longest row: evaluate fits longer test prompts to it as validation did
        "max_seq_len": cfg.train.max_seq_len,
        **(extra or {}),
    }
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    _replace_dir(tmp, target)


def save_checkpoint(run_dir: Path, model: Any, optimizer: Any, scheduler: Any,
                    state: TrainState, plan: list, keep: int = 2) -> Path:  # fmt: skip
    """Resumable checkpoint; `COMPLETE` is written last inside the temp dir before the rename."""
    import torch
    from peft import get_peft_model_state_dict

    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"step-{state.global_step:07d}"
    tmp = root / f".tmp-step-{state.global_step:07d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save(get_peft_model_state_dict(model), tmp / "adapter.pt")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(_rng_state(), tmp / "rng.pt")
    (tmp / "state.json").write_text(
        json.dumps({**state.__dict__, "plan": plan if state.step_in_epoch else None})
    )
    (tmp / COMPLETE).write_text(str(state.global_step))
    _replace_dir(tmp, target)
    done = sorted(p for p in root.glob("step-*") if (p / COMPLETE).exists())
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(run_dir: Path) -> Path | None:
    done = sorted(p for p in (run_dir / "checkpoints").glob("step-*") if (p / COMPLETE).exists())
    return done[-1] if done else None


def read_checkpoint_state(path: Path, fingerprint: dict | None = None) -> tuple[TrainState, Any]:
    """A checkpoint's training state and data plan. With `fingerprint` (run_fingerprint of this
    call), a checkpoint made with other settings or rows is refused; `train` calls this before
    the model loads, so a refusal costs no model load. A damaged or foreign checkpoint is a
    one-line `CheckpointError`."""
    try:
        data = json.loads((path / "state.json").read_text())
        plan = data.pop("plan")
        state = TrainState(**data)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path / 'state.json'}: damaged checkpoint ({exc}); delete "
                        f"{path} to resume from the one before it") from None  # fmt: skip
    if fingerprint is not None and state.fingerprint:
        diff = _fingerprint_diff(state.fingerprint, fingerprint)
        if diff:
            raise CheckpointError(
                f"{path}: cannot --resume with other settings than the checkpoint's: "
                f"{'; '.join(diff)}; resume with the run's own config (`--config "
                f"{path.parent.parent / 'config.toml'}`) and pairs, or train into a new --out"
            )
    return state, plan


def restore_checkpoint(path: Path, model: Any, optimizer: Any, scheduler: Any) -> None:
    """Load a checkpoint's adapter, optimizer, scheduler and RNG states (`CheckpointError` for
    a damaged file)."""
    import torch
    from peft import set_peft_model_state_dict

    name = "adapter.pt"
    try:
        set_peft_model_state_dict(model, torch.load(path / name, weights_only=False))
        name = "optimizer.pt"
        optimizer.load_state_dict(torch.load(path / name, weights_only=False))
        name = "scheduler.pt"
        scheduler.load_state_dict(torch.load(path / name, weights_only=False))
        name = "rng.pt"
        _set_rng_state(torch.load(path / name, weights_only=False))
    except (OSError, EOFError, RuntimeError, ValueError, KeyError, TypeError,
            pickle.UnpicklingError) as exc:  # fmt: skip
        first = first_line(exc).split(". ")[0]
        raise CheckpointError(f"{path / name}: damaged checkpoint ({first}); delete {path} to "
                        "resume from the one before it") from None  # fmt: skip


def _rng_state() -> dict[str, Any]:
    import torch

    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.random.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def _set_rng_state(rng: dict[str, Any]) -> None:
    import torch

    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.random.set_rng_state(rng["torch"])
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


class Stopped(KeyboardInterrupt):
    """A training stopped by a signal: the CLI exits 128 + `signum` (130 for Ctrl-C, 143 for
    SIGTERM), as a shell reports a process that signal ended."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


class _Interrupts:
    """Ctrl-C (SIGINT) or SIGTERM (`timeout`, a job scheduler's stop) while training:
    KeyboardInterrupt at once, so that a checkpoint is written, except between `hold()` and
    `release()` (an optimizer step being applied and recorded), where it is raised at
    `release()`: parameters, optimizer, scheduler and the step counter change together.
    Signals whose handler someone else has set are left alone."""

    DEFAULTS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}

    def __init__(self) -> None:
        self.holding = False
        self.pending = 0  # the signal that arrived while holding (0: none)
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            for signum, default in self.DEFAULTS.items():
                if signal.getsignal(signum) is default:
                    self.previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handler(self, signum: int, frame: Any) -> None:
        if not self.holding:
            raise Stopped(signum)
        self.pending = signum

    def hold(self) -> None:
        self.holding = True

    def release(self) -> None:
        self.holding = False
        if self.pending:
            signum, self.pending = self.pending, 0
            raise Stopped(signum)


def _trim_metrics(path: Path, step: int) -> None:
    """On resume: drop the lines a killed run wrote after its checkpoint's step (they are
    trained again), and a torn last line."""
    if not path.is_file():
        return
    keep = [json.dumps(obj) for _, obj in iter_jsonl(path, torn_tail_ok=True)
            if not isinstance(obj.get("step"), int) or obj["step"] <= step]  # fmt: skip
    atomic_write_text(path, "".join(line + "\n" for line in keep))


def check_out_dir(run_dir: Path, resume: bool) -> None:
    """Refuse an --out that is a file, or that holds another training run unless resuming it."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"{run_dir}: --out must be a directory, this is a file")
    if resume:
        if latest_checkpoint(run_dir) is None:
            raise UserError(f"{run_dir}: --resume given but no complete checkpoint found")
        return
    if latest_checkpoint(run_dir) is not None:
        raise UserError(
            f"{run_dir}: has checkpoints from an earlier run; use --resume or a new --out"
        )
    left = [n for n in ("adapter", "train_summary.json", "metrics.jsonl") if (run_dir / n).exists()]
    if left:
        raise UserError(
            f"{run_dir}: holds an earlier training run ({', '.join(left)}) without a checkpoint "
            "to resume; use a new --out or delete them"
        )


# ---------------------------------------------------------------------------------------------
# Evaluation


def evaluate_valid(model: Any, formatter: PromptFormatter, rows: list[dict],
                   examples: list[Example], tc: TrainConfig) -> dict[str, Any]:  # fmt: skip
    """Valid loss (loss_step) and pairwise accuracy from both orders, overall and by item."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    total, weight = 0.0, 0.0
    with torch.no_grad():
        order = sorted(range(len(examples)), key=lambda i: len(examples[i]))  # little padding
        size = tc.batch_size * tc.grad_accum
        for start in range(0, len(order), size):
            chunk = [examples[i] for i in order[start : start + size]]
            batch = {k: v.to(device) for k, v in collate(chunk, _pad_id(formatter)).items()}
            loss, stats = loss_step(model, batch, tc.decision_weight)
            w = _weight_total(chunk, tc.decision_weight)
            total, weight = total + float(loss) * w, weight + w
        # Scored as trained: prompts over max_seq_len get the digests `encode` gave them.
        fitted = [formatter.fit_row(r, tc.max_seq_len) for r in rows]
        p_a, p_ab, p_ba = pair_probabilities(model, formatter, fitted, size)
    model.train()
    # The same credit and item grouping as `evaluate` (a pair counts under each of its items).
    credit = M.correctness(p_a, a_won(rows))
    return {
        "valid_loss": total / weight if weight else float("nan"),
        "valid_accuracy": float(credit.mean()) if credit.size else float("nan"),
        "n_pairs": len(rows),
        "both_orders": True,
        "by_item": M.grouped_accuracy([pair_items(r) for r in rows], credit),
        "p_ab": p_ab.tolist(),
        "p_ba": p_ba.tolist(),
    }


def _pad_id(formatter: PromptFormatter) -> int:
    pad = formatter.tokenizer.pad_token_id
    return formatter.end_id if pad is None else int(pad)


# ---------------------------------------------------------------------------------------------
# Training


def resume_command(run_dir: Path, pairs_dir: Path) -> str:
    """The command that resumes a run: its config.toml carries every setting it was given."""
    import shlex

    args = ["--pairs", str(pairs_dir), "--out", str(run_dir), "--config",
            str(run_dir / "config.toml"), "--resume"]  # fmt: skip
    return "filingcontrast train " + " ".join(shlex.quote(a) for a in args)


def train(
    cfg: RunConfig,
    pairs_dir: Path,
    resume: bool = False,
    *,
    stop_after: int | None = None,
    resume_hint: str | None = None,
) -> dict[str, Any]:
    """Fine-tune LoRA adapters on `pairs_dir/train.jsonl`, evaluate on `valid.jsonl` each epoch,
    keep the best adapter in `<run_dir>/adapter/`. `stop_after` (tests) interrupts after that
    many optimizer steps of this call, saving a checkpoint as Ctrl-C does; `resume_hint` ends
    the interrupt message (the demo resumes by rerunning its command, not with --resume)."""
    from accelerate import Accelerator
    from tqdm.auto import tqdm
    from transformers import get_cosine_schedule_with_warmup

    from filingcontrast.model import resolve_device

    tc = cfg.train
    pairs_dir = check_pairs_dir(pairs_dir)
    run_dir = cfg.run_dir
    if resume_hint is None:  # the run's config.toml holds every setting the run was given
        resume_hint = f"continue with: {resume_command(run_dir, pairs_dir)}"
    if not (pairs_dir / "train.jsonl").exists():
        raise UserError(f"{pairs_dir / 'train.jsonl'}: training pairs not found")
    # Everything the user gave is checked before the run directory is touched or a model loaded.
    check_out_dir(run_dir, resume)
    notes = []
    all_train = read_pairs(pairs_dir, "train")
    train_rows = with_min_gap(all_train, tc.min_train_gap)
    if tc.min_train_gap:
        kept = f"{len(train_rows)} of {len(all_train)} training rows"
        if not train_rows:
            raise UserError(f"train.min_train_gap={tc.min_train_gap:g}: keeps {kept}")
        notes.append(f"min_train_gap {tc.min_train_gap:g}: {kept}")
    train_rows = _cap(train_rows, tc.max_train_pairs, cfg.seed)
    valid_rows = _cap(read_pairs(pairs_dir, "valid"), tc.max_valid_pairs, cfg.seed)
    if not valid_rows:
        notes.append(f"{pairs_dir / 'valid.jsonl'}: no validation pairs; keeping the final "
                     "adapter, uncalibrated")  # fmt: skip
    device = resolve_device(tc.device)
    acc = Accelerator(cpu=device == "cpu")
    world, main = acc.num_processes, acc.is_main_process
    threads = prepare_process(tc, device, world)
    fingerprint = run_fingerprint(cfg, train_rows, world)
    # check_out_dir made sure a --resume has a checkpoint; a foreign one is refused here,
    # before the model loads
    ckpt = latest_checkpoint(run_dir) if resume else None
    resumed_state = read_checkpoint_state(ckpt, fingerprint) if ckpt is not None else None
    seed_everything(cfg.seed)

    model, tokenizer = build_model(cfg, str(acc.device))
    formatter = PromptFormatter(tokenizer, tc.template, tc.system_prompt)
    examples, enc = encode_rows(formatter, train_rows, tc.max_seq_len)
    if not examples:
        too_long = {"answer_too_long", "input_too_long", "prompt_does_not_fit"} & set(enc.refused)
        hint = f"; raise train.max_seq_len ({tc.max_seq_len})" if too_long else ""
        raise UserError(f"{pairs_dir / 'train.jsonl'}: no trainable rows ({enc.to_dict()}){hint}")
    valid_ex, valid_enc = encode_rows(formatter, valid_rows, tc.max_seq_len)
    notes.append(
        f"train rows: {enc.to_dict()}; valid rows: {valid_enc.to_dict()}; template {formatter.template}"
    )

    digest_meta = {
        **pairs_digest_meta(pairs_dir),
        "seen_filings": seen_filings(train_rows, valid_rows),
    }
    lengths = [len(e) for e in examples]
    plan0 = step_plan(lengths, tc, world, cfg.seed, 0)
    steps_per_epoch = len(plan0)
    total_steps = steps_per_epoch * tc.epochs
    if tc.max_steps:
        total_steps = min(total_steps, tc.max_steps)
    biggest = max(len(mb) * max(lengths[i] for i in mb) for step in plan0 for mb in step) // world
    checkpointing = checkpointing_mode(tc, biggest)
    if checkpointing:
        enable_checkpointing(model, selective=checkpointing == "selective")
    model.train()
    optimizer = make_optimizer(model, tc)
    scheduler = get_cosine_schedule_with_warmup(
        optimizer, math.ceil(tc.warmup_ratio * total_steps), total_steps
    )
    state, plan = TrainState(fingerprint=fingerprint), None
    if ckpt is not None:
        state, plan = resumed_state
        restore_checkpoint(ckpt, model, optimizer, scheduler)
        state.fingerprint = fingerprint
        finished = state.epoch >= tc.epochs or state.global_step >= total_steps
        if finished and not state.pending_eval and (run_dir / "train_summary.json").exists():
            raise UserError(
                f"{run_dir}: training finished ({state.global_step} steps); nothing to resume"
            )
        notes.append(  # epochs 1-based, as the log and metrics.jsonl count them
            f"resumed from {ckpt} at step {state.global_step} (epoch "
            f"{min(state.epoch + 1, tc.epochs)} of {tc.epochs})"
        )
    acc.wait_for_everyone()
    if main:
        run = RunDir.create(cfg)
        if resume:
            _trim_metrics(run.path / "metrics.jsonl", state.global_step)
    acc.wait_for_everyone()
    run = RunDir(run_dir)
    say = (lambda m: run.log(m, echo=True)) if main else (lambda m: None)
    for note in notes:
        say(note)

    wrapped = acc.prepare_model(_module(model, tc.decision_weight))
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    say(
        f"base {cfg.base} on {acc.device} ({world} process(es), {threads} threads, allocator "
        f"{active_allocator()}); LoRA "
        f"r={tc.lora_r} trainable {n_trainable:,}; {len(examples)} rows, {steps_per_epoch} "
        f"steps/epoch, {total_steps} steps; checkpointing {checkpointing or 'off'} "
        f"(largest micro-batch {biggest} tokens); padding {padding_share(lengths, [mb for s in plan0 for mb in s]):.1%}"
    )
    pad_id = _pad_id(formatter)
    bar = tqdm(total=total_steps, initial=state.global_step, disable=not main, desc="train")
    done_here = 0
    evals: list[dict] = []
    interrupted = False

    def pending_eval() -> None:
        """The validation of a finished epoch (also one a Ctrl-C cut short before resuming)."""
        if state.pending_eval and main:
            evals.append(_eval_and_keep(model, tokenizer, formatter, cfg, valid_rows, valid_ex,
                                        state, run, digest_meta))  # fmt: skip
        state.pending_eval = False

    mid_step, rng = False, None
    try:
        with _Interrupts() as interrupts:
            pending_eval()
            while state.epoch < tc.epochs and state.global_step < total_steps:
                if plan is None or state.step_in_epoch == 0:
                    plan = step_plan(lengths, tc, world, cfg.seed, state.epoch)
                step = plan[state.step_in_epoch]
                rng, mid_step = _rng_state(), True
                lr = scheduler.get_last_lr()[0]  # what this step's update uses (warm-up: 0 first)
                t0 = time.perf_counter()
                loss, tokens, padded = train_step(
                    wrapped, acc, examples, step, tc, pad_id, optimizer, scheduler,
                    before_update=interrupts.hold,
                )  # fmt: skip
                dt = time.perf_counter() - t0
                if not math.isfinite(loss):
                    raise UserError(
                        f"{run_dir}: training loss is {loss} at step {state.global_step + 1}; "
                        "lower train.lr (or train.decision_weight, train.loraplus_ratio)"
                    )
                state.global_step += 1
                state.step_in_epoch += 1
                state.losses.append(loss)
                done_here += 1
                record = {
                    "type": "train", "step": state.global_step, "epoch": state.epoch + 1,
                    "loss": loss, "lr": lr, "tokens_per_s": tokens / dt,
                    "padding_share": 1 - tokens / max(padded, 1),
                }  # fmt: skip
                if main:
                    run.append_metrics(record)
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tokens / dt:.0f}")
                if state.step_in_epoch >= len(plan) or state.global_step >= total_steps:
                    if state.step_in_epoch >= len(plan):
                        state.epoch += 1
                        state.step_in_epoch = 0
                    state.pending_eval = bool(valid_rows and tc.eval_every_epoch)
                mid_step = False
                interrupts.release()  # a Ctrl-C during the update stops here, the step recorded
                pending_eval()
                if world > 1 and state.step_in_epoch == 0:
                    acc.wait_for_everyone()  # the main process may have spent time evaluating
                if main and tc.save_every and state.global_step % tc.save_every == 0:
                    save_checkpoint(run_dir, model, optimizer, scheduler, state, plan)
                if stop_after is not None and done_here >= stop_after:
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        interrupted = True
        if mid_step:  # cut inside a step, before its update: drop it, and undo its random draws
            optimizer.zero_grad(set_to_none=True)
            _set_rng_state(rng)
        bar.close()  # the message starts on its own line, not after the progress bar
        if main:
            path = save_checkpoint(run_dir, model, optimizer, scheduler, state, plan)
            say(f"interrupted at step {state.global_step}: checkpoint {path}; {resume_hint}")
        if stop_after is None:
            bar.close()
            raise
    finally:
        bar.close()
    summary = {
        "run_dir": str(run_dir),
        "steps": state.global_step,
        "total_steps": total_steps,
        "interrupted": interrupted,
        "final_loss": state.losses[-1] if state.losses else None,
        "losses": state.losses,
        "train_rows": enc.to_dict(),
        "rows_seen": rows_seen(lengths, tc, world, cfg.seed, state.global_step, steps_per_epoch),
        "valid_rows": valid_enc.to_dict(),
        "template": formatter.template,
        "checkpointing": checkpointing,
        "evals": evals,
        "best": state.best,
    }
    if interrupted:
        return summary
    if main:
        adapter = run_dir / "adapter"
        if state.best is None:  # no validation split: keep the final adapter
            save_adapter(model, tokenizer, formatter, cfg, adapter, digest_meta)
        save_checkpoint(run_dir, model, optimizer, scheduler, state, plan)
        if tc.merge:
            export_merged(cfg, adapter, run_dir / "merged")
            summary["merged"] = str(run_dir / "merged")
        summary["adapter"] = str(adapter)
        atomic_write_json(
            run_dir / "train_summary.json", {k: v for k, v in summary.items() if k != "losses"}
        )
        say(
            f"done: {state.global_step} steps, final loss {summary['final_loss']:.4f}, adapter {adapter}"
        )
    acc.wait_for_everyone()
    return summary


def train_step(wrapped: Any, acc: Any, examples: list[Example], step: list[list[int]],
               tc: TrainConfig, pad_id: int, optimizer: Any, scheduler: Any,
               before_update: Callable[[], None] | None = None) -> tuple[float, int, int]:  # fmt: skip
    """One optimizer step over `grad_accum` global micro-batches (this process takes its
    `batch_size` slice of each). The loss is normalized by the step's global label weight, so
    micro-batching and processes do not change it. Returns (loss, real tokens, padded tokens).
    A non-finite loss is returned without updating anything; `before_update` is called just
    before the optimizer step."""
    import torch

    world, rank = acc.num_processes, acc.process_index
    norm = _weight_total([examples[i] for mb in step for i in mb], tc.decision_weight)
    loss_sum = torch.zeros((), device=acc.device)
    tokens = padded = 0
    for k, mb in enumerate(step):
        mine = mb[rank * tc.batch_size : (rank + 1) * tc.batch_size]
        if not mine:
            continue
        batch = {
            n: v.to(acc.device) for n, v in collate([examples[i] for i in mine], pad_id).items()
        }
        last = k == len(step) - 1
        with acc.no_sync(wrapped) if (world > 1 and not last) else nullcontext():
            total = wrapped(**batch)
            # DDP averages gradients over processes: scale so the sum is the global mean.
            acc.backward(total * world / norm)
        loss_sum += total.detach()
        tokens += int(batch["attention_mask"].sum())
        padded += batch["attention_mask"].numel()
    if world > 1:
        loss_sum = acc.reduce(loss_sum, "sum")
        counts = acc.reduce(torch.tensor([tokens, padded], device=acc.device), "sum")
        tokens, padded = int(counts[0]), int(counts[1])
    loss = float(loss_sum) / norm
    if not math.isfinite(loss):  # nothing is applied: the caller stops
        optimizer.zero_grad(set_to_none=True)
        return loss, tokens, padded
    if before_update is not None:
        before_update()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss, tokens, padded


def _eval_and_keep(model: Any, tokenizer: Any, formatter: PromptFormatter, cfg: RunConfig,
                   rows: list[dict], examples: list[Example], state: TrainState,
                   run: RunDir, digest_meta: dict) -> dict:  # fmt: skip
    """Evaluate on valid, log an eval line, save the adapter when it is the best so far."""
    from filingcontrast.calibration import fit_calibration

    result = evaluate_valid(model, formatter, rows, examples, cfg.train)
    p_ab, p_ba = result.pop("p_ab"), result.pop("p_ba")
    # 1-based like the train lines: an epoch cut short by max_steps is the one in progress
    epoch = state.epoch + (1 if state.step_in_epoch else 0)
    record = {"type": "eval", "epoch": epoch, "step": state.global_step, **result}
    run.append_metrics(record)
    score = [result["valid_accuracy"], -result["valid_loss"]]
    if state.best is None or score > state.best:
        winners = [(r.get("meta") or {}).get("winner") for r in rows]
        cal = fit_calibration(p_ab, p_ba, winners)
        save_adapter(model, tokenizer, formatter, cfg, run.path / "adapter",
                     {"epoch": epoch, "step": state.global_step,
                      "valid_accuracy": result["valid_accuracy"], "valid_loss": result["valid_loss"],
                      "calibration": cal.to_dict(), **digest_meta})  # fmt: skip
        state.best = score  # only once the adapter is saved (a Ctrl-C may cut the save)
    run.log(
        f"eval epoch {epoch}: valid loss {result['valid_loss']:.4f}, accuracy "
        f"{result['valid_accuracy']:.3f} on {result['n_pairs']} pairs", echo=True
    )  # fmt: skip
    return record


def export_merged(cfg: RunConfig, adapter: Path, target: Path) -> None:
    """Base + adapter merged (merge_and_unload) and saved as safetensors, atomically."""
    from peft import PeftModel

    from filingcontrast.model import load_base

    base, tokenizer = load_base(cfg.base, device="cpu", dtype="float32", seed=cfg.seed)
    with _peft_wrapping():
        merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    _replace_dir(tmp, target)


def resolve_adapter_dir(path: str | Path) -> Path:
    """`runs/NAME` or `runs/NAME/adapter` -> the adapter directory, checked for its files."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: adapter not found (pass runs/NAME after `filingcontrast train`)")
    adapter = path / "adapter" if (path / "adapter").is_dir() else path
    for name in ("adapter_config.json", META_FILE):
        if not (adapter / name).is_file():
            raise UserError(
                f"{adapter}: no trained adapter here: not a filingcontrast adapter directory "
                f"({name} missing)"
            )
    return adapter


# The fields of filingcontrast.json that shape a prompt: a hand edit to the wrong type must be
# an error, not read as something else ("no" is truthy).
META_TYPES: dict[str, tuple[type, ...]] = {
    "base": (str,),
    "template": (str,),
    "system_prompt": (str,),
    "max_seq_len": (int, type(None)),
    # copied from the pairs' summary.json by pairs_digest_meta
    "digest_tokens": SUMMARY_TYPES["digest_tokens"],
    "key_facts": SUMMARY_TYPES["key_facts"],
}


def adapter_meta(adapter_dir: Path) -> dict:
    """The adapter's `filingcontrast.json` (base model spec, template, system prompt)."""
    meta = read_json(adapter_dir / META_FILE)
    if not meta.get("base"):
        raise UserError(f"{adapter_dir / META_FILE}: field base: missing")
    check_field_types(adapter_dir / META_FILE, meta, META_TYPES)
    return meta


def load_trained(
    run_or_adapter_dir: str | Path, device: str = "auto", base: str | None = None
) -> tuple[Any, Any, PromptFormatter, dict]:
    """(model, tokenizer, formatter, meta) of a trained adapter (a run dir or its adapter/).
    `base`: the base the caller expects; a different one recorded with the adapter is an error."""
    from peft import PeftModel

    from filingcontrast.model import load_base

    adapter = resolve_adapter_dir(run_or_adapter_dir)
    meta = adapter_meta(adapter)
    if base is not None and base != meta["base"]:
        raise UserError(
            f"{adapter / META_FILE}: field base: adapter was trained on {meta['base']!r}, "
            f"not on {base!r}"
        )
    model, _ = load_base(meta["base"], device=device)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(adapter)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    with _peft_wrapping():
        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    formatter = PromptFormatter(
        tokenizer, meta.get("template", "auto"), meta.get("system_prompt", "")
    )
    return model, tokenizer, formatter, meta
