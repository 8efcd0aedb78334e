"""GPU check: one prepared script for one short device call (<= 8 minutes on one H100/H200).

(a) the `gpu` tests (`pytest -m gpu`); (b) LoRA training steps on a 7B-shaped Llama built from a
config with random weights (32 layers, hidden 4096, MLP 11008, vocab 32000; no download), r 16 on
all linear projections, bf16, 2048-token rows: tokens/s and `torch.cuda.max_memory_allocated`
with and without gradient checkpointing, answer-only logits (our `loss_step`) vs full logits (the
plain Hugging Face loss); (c) decision-token scoring throughput (pairs/s, both orders) at the same
scale. Writes one JSON file (`--out`, default `$OUT/gpu_check.json`) and prints a table.

    PYTHONPATH=src python bench/gpu_check.py --out $OUT/gpu_check.json

MFU: useful FLOPs of a LoRA step per token = 2N (forward) + 2N (input gradients; the frozen base
has no weight gradients) + attention (4 * layers * seq * hidden per token forward, twice that
backward), against the card's bf16 matmul rate measured here (8192^3 products).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from benchargs import positive_int, run

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def matmul_tflops(n: int = 8192, reps: int = 10) -> float:
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e12


def run_gpu_tests() -> dict:
    start = time.time()
    proc = subprocess.run(
        # only the GPU test file: the GPU image has no DuckDB, which other test modules import
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "gpu",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_gpu.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
    return {"returncode": proc.returncode, "seconds": round(time.time() - start, 1), "tail": tail}


def build_7b(layers: int, hidden: int = 4096, mlp: int = 11008, device: str = "cuda"):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=32000,
        hidden_size=hidden,
        intermediate_size=mlp,
        num_hidden_layers=layers,
        num_attention_heads=32,
        num_key_value_heads=32,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
    )
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16 if device == "cuda" else torch.float32)
    return model


def decoder_linear_params(model) -> int:
    """Weights of the decoder's frozen linear projections (what runs as a matmul at every
    token): no embedding table (a lookup), no LM head (counted where it runs), no LoRA."""
    return sum(
        p.numel()
        for n, p in model.named_parameters()
        if p.dim() == 2 and "lora_" not in n and "embed_tokens" not in n and "lm_head" not in n
    )


def step_flops_per_token(
    body: int, vocab: int, hidden: int, layers: int, seq: int, head_share: float,
    checkpointing: bool,
) -> tuple[float, float]:  # fmt: skip
    """(useful, executed) FLOPs per token of a LoRA step on a frozen base.

    Useful: the decoder weights forward and input gradients (2N + 2N: no weight gradients for
    a frozen base), the LM head (4·V·H) only at the share of positions where it runs, causal
    attention (scores and weighted values, 2·L·H·(seq+1) forward per token on average, twice that
    backward). Executed adds what checkpointing recomputes (the forward of the decoder)."""
    attn = 2 * layers * hidden * (seq + 1)
    useful = 4 * body + 4 * vocab * hidden * head_share + 3 * attn
    recompute = 2 * body + attn if checkpointing else 0
    return float(useful), float(useful + recompute)


def add_lora(model):
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    return get_peft_model(model, cfg)


def make_batch(batch: int, seq: int, answer: int, device: str = "cuda") -> dict:
    """Random 2048-token rows whose last `answer` tokens carry labels (prompt masked with -100)."""
    g = torch.Generator(device="cpu").manual_seed(0)
    ids = torch.randint(0, 32000, (batch, seq), generator=g)
    labels = ids.clone()
    labels[:, : seq - answer] = -100
    return {
        "input_ids": ids.to(device),
        "labels": labels.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
    }


def full_logits_loss(model, batch):
    """What a plain HF setup does: full-vocabulary logits at every position, then the loss."""
    return model(**batch).loss


def answer_only_loss(model, batch):
    from filingcontrast.dataset import loss_step

    loss, _ = loss_step(model, batch)
    return loss


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _max_memory_gib() -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def time_training(model, batch, loss_fn, checkpointing: bool, steps: int, warmup: int) -> dict:
    from filingcontrast.train import enable_checkpointing

    if checkpointing:
        enable_checkpointing(model)  # the trainer's: non-reentrant, input-grad hook
    elif hasattr(model, "activation_checkpointing_disable"):  # transformers >= 5 name
        model.activation_checkpointing_disable()
    else:
        model.gradient_checkpointing_disable()
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    for i in range(warmup + steps):
        if i == warmup:
            _sync()
            start = time.perf_counter()
        loss = loss_fn(model, batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    _sync()
    seconds = time.perf_counter() - start
    tokens = batch["input_ids"].numel() * steps
    del opt
    return {
        "tokens_per_s": tokens / seconds,
        "max_memory_gib": _max_memory_gib(),
        "loss": float(loss),
    }


@torch.inference_mode()
def time_scoring(model, rows: int, seq: int, reps: int) -> dict:
    """Decision scoring: one forward per (pair, order), the head only at the last position."""
    model.eval()
    base = model.get_base_model()
    ids = torch.randint(0, 32000, (rows, seq), device=next(model.parameters()).device)
    for i in range(reps + 1):
        if i == 1:
            _sync()
            start = time.perf_counter()
        hidden = base.model(input_ids=ids).last_hidden_state  # [rows, seq, H]
        logits = base.lm_head(hidden[:, -1])  # [rows, V]
        logits[:, :2].softmax(-1)
    _sync()
    seconds = time.perf_counter() - start
    return {"pairs_per_s": rows * reps / 2 / seconds, "rows": rows, "seq": seq}


def _existing_parent(path: Path) -> Path:
    for parent in path.absolute().parents:
        if parent.exists():
            return parent
    return Path("/")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "gpu_check.json"))
    parser.add_argument("--layers", type=positive_int, default=32)
    parser.add_argument("--seq", type=positive_int, default=2048)
    parser.add_argument("--batch", type=positive_int, default=2)
    parser.add_argument("--answer", type=positive_int, default=64, help="answer tokens per row")
    parser.add_argument("--steps", type=positive_int, default=5)
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument(
        "--smoke-cpu", action="store_true", help="tiny shapes on CPU (script check)"
    )
    args = parser.parse_args()
    if args.answer >= args.seq:
        parser.error(f"--answer {args.answer} must be below --seq {args.seq}")
    out = Path(args.out)
    if out.is_dir() or not os.access(_existing_parent(out), os.W_OK):
        parser.error(
            f"--out {args.out}: cannot write a file there"
        )  # before minutes of device time
    device = "cpu" if args.smoke_cpu else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 1
    result: dict = {
        "bench": "gpu_check",
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu (smoke)",
        "torch": torch.__version__,
    }
    result["bf16_matmul_tflops"] = matmul_tflops() if device == "cuda" else 0.1
    if not args.skip_tests:
        result["gpu_tests"] = run_gpu_tests()
        print("\n".join(result["gpu_tests"]["tail"]))

    dims = {"hidden": 64, "mlp": 128} if args.smoke_cpu else {}
    model = add_lora(build_7b(args.layers, device=device, **dims))
    n_params = sum(p.numel() for p in model.parameters())
    batch = make_batch(args.batch, args.seq, args.answer, device)
    rows = []
    for ckpt in (True, False):
        for name, fn in (("answer_only", answer_only_loss), ("full_logits", full_logits_loss)):
            try:
                r = time_training(model, batch, fn, ckpt, args.steps, warmup=2)
            except torch.OutOfMemoryError:
                r = {"tokens_per_s": None, "max_memory_gib": None, "error": "out of memory"}
            r.update(checkpointing=ckpt, logits=name, batch=args.batch, seq=args.seq)
            rows.append(r)
            print(json.dumps(r), flush=True)
    result["train_rows"] = rows
    cfg = model.config
    body = decoder_linear_params(model)
    for r in rows:
        if r.get("tokens_per_s"):
            useful, executed = step_flops_per_token(
                body, cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers, args.seq,
                head_share=1.0 if r["logits"] == "full_logits" else args.answer / args.seq,
                checkpointing=r["checkpointing"],
            )  # fmt: skip
            r["achieved_tflops"] = executed * r["tokens_per_s"] / 1e12
            r["mfu"] = useful * r["tokens_per_s"] / 1e12 / result["bf16_matmul_tflops"]
    result["params"] = n_params
    result["decoder_linear_params"] = body
    result["answer_tokens"] = args.answer
    result["scoring"] = time_scoring(model, rows=8, seq=args.seq, reps=5)

    torchtune = {
        "tokens_per_s": 3083,
        "memory_gib": 16.2,
        "card": "RTX 4090",
        "model": "Llama-3.1-8B",
    }
    result["torchtune_reference"] = torchtune
    print()
    print(
        f"{result['device']}  bf16 matmul {result['bf16_matmul_tflops']:.0f} TFLOP/s  params {n_params / 1e9:.2f} B"
    )
    print(
        f"{'ckpt':<6}{'logits':<13}{'tokens/s':>10}{'x torchtune':>13}{'max mem GiB':>13}{'MFU':>7}"
    )

    def cell(value, spec: str, missing: str = "-") -> str:
        return missing if value is None else format(value, spec)

    for r in rows:
        tps = r.get("tokens_per_s")
        ratio = tps / torchtune["tokens_per_s"] if tps else None
        print(
            f"{str(r['checkpointing']):<6}{r['logits']:<13}{cell(tps, '.0f', 'OOM'):>10}"
            f"{cell(ratio, '.2f'):>13}{cell(r.get('max_memory_gib'), '.1f'):>13}"
            f"{cell(r.get('mfu'), '.0%'):>7}"
        )
    print(
        f"scoring: {result['scoring']['pairs_per_s']:.1f} pairs/s (both orders, {args.seq}-token rows)"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "gpu_tests"}))
    return 0


if __name__ == "__main__":
    run(main, "gpu_check")
