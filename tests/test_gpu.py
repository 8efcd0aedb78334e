"""CUDA tests (`pytest -m gpu`): the trainer and the scorer run in bf16 on a GPU. CI skips them."""

import pytest
import torch

pytestmark = pytest.mark.gpu

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@needs_cuda
def test_load_base_defaults_to_bf16_on_cuda():
    from filingcontrast.model import load_base

    model, _ = load_base("tiny-llama")
    param = next(model.parameters())
    assert param.device.type == "cuda" and param.dtype == torch.bfloat16


@needs_cuda
def test_loss_step_bf16_cuda_matches_fp32_cpu(tokenizer):
    from filingcontrast.dataset import loss_step
    from filingcontrast.model import tiny_llama

    model = tiny_llama(tokenizer, seed=0)
    ids = torch.randint(0, len(tokenizer), (2, 48))
    labels = ids.clone()
    labels[:, :40] = -100
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    cpu_loss, _ = loss_step(model, batch)
    gpu = model.to("cuda", torch.bfloat16)
    gpu_loss, _ = loss_step(gpu, {k: v.cuda() for k, v in batch.items()})
    assert abs(float(cpu_loss) - float(gpu_loss)) < 0.05 * float(cpu_loss)


@needs_cuda
def test_train_and_score_on_cuda(tmp_path):
    from filingcontrast.config import load_config
    from filingcontrast.dataset import pair_probabilities
    from filingcontrast.pairs import load_pairs
    from filingcontrast.train import load_trained, train

    from .conftest import ASSETS

    pairs = ASSETS / "pairs"
    cfg = load_config(
        None,
        [
            f'runs_dir="{tmp_path}"',
            'name="gpu"',
            'base="tiny-llama"',
            "train.epochs=1",
            "train.batch_size=2",
            "train.lr=1e-3",
        ],
    )
    train(cfg, pairs)
    model, _, formatter, _ = load_trained(tmp_path / "gpu", device="cuda")
    assert next(model.parameters()).device.type == "cuda"
    rows = load_pairs(pairs, "test")
    p_a, _, _ = pair_probabilities(model, formatter, rows, batch_size=4)
    assert len(p_a) == len(rows)
    assert all(0.0 <= p <= 1.0 for p in p_a)


@needs_cuda
def test_selective_checkpointing_on_cuda(tmp_path):
    """The selective policy on CUDA's attention kernels and bf16 matmuls: the same LoRA
    gradients as no checkpointing (to bf16 rounding), and no attention forward rerun."""
    import copy

    from filingcontrast.train import build_model

    from .test_train import _cfg, _grads_and_backward_ops

    model, _ = build_model(_cfg(tmp_path, "sel"), "cuda")
    results = {m: _grads_and_backward_ops(copy.deepcopy(model), m) for m in ("off", "selective")}
    (g_off, _), (g_sel, ops_sel) = results["off"], results["selective"]
    for name, grad in g_off.items():
        torch.testing.assert_close(g_sel[name].float(), grad.float(), rtol=2e-2, atol=1e-3)
    assert "attention" not in ops_sel
