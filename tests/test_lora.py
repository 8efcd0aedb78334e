"""The fused CPU LoRA layer: same math as peft's, dropout statistics, reproducible masks."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model

from filingcontrast.lora import FusedLoraLinear, effective_p, fast_dropout, register_fast_lora


def _peft(base, fused: bool, dropout: float = 0.0, seed: int = 1):
    # init_lora_weights=False: B != 0, so LoRA changes the output
    cfg = LoraConfig(r=8, lora_alpha=16, lora_dropout=dropout, target_modules="all-linear",
                     init_lora_weights=False)  # fmt: skip
    if fused:
        register_fast_lora(cfg)
    torch.manual_seed(seed)
    return get_peft_model(copy.deepcopy(base), cfg)


def _loss_and_grads(model, ids):
    model.zero_grad()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return loss.item(), grads


def test_fused_layer_matches_peft_without_dropout(tiny_model_and_tokenizer):
    base, _ = tiny_model_and_tokenizer
    ref, fused = _peft(base, False), _peft(base, True)
    assert sum(isinstance(m, FusedLoraLinear) for m in fused.modules()) == 14  # 7 per layer
    ref.train(), fused.train()
    ids = torch.randint(0, 1000, (2, 24))
    loss_ref, g_ref = _loss_and_grads(ref, ids)
    loss_fused, g_fused = _loss_and_grads(fused, ids)
    assert loss_fused == pytest.approx(loss_ref, rel=1e-6)
    for name, g in g_ref.items():
        torch.testing.assert_close(g_fused[name], g, rtol=1e-5, atol=1e-7)


def test_fused_layer_falls_back_when_merged(tiny_model_and_tokenizer):
    base, _ = tiny_model_and_tokenizer
    fused = _peft(base, True).eval()
    ids = torch.randint(0, 1000, (1, 16))
    with torch.no_grad():
        before = fused(input_ids=ids).logits
        fused.merge_adapter()  # merged: peft's forward (base only) must give the same output
        after = fused(input_ids=ids).logits
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


def test_fast_dropout_statistics_and_backward():
    torch.manual_seed(0)
    x = torch.ones(1000, 1000, requires_grad=True)
    y = fast_dropout(x, 0.05, training=True)
    kept = y != 0
    assert kept.float().mean().item() == pytest.approx(1 - 0.05, abs=1e-3)
    scale = 1 / (1 - effective_p(0.05))
    assert torch.allclose(y[kept].detach(), torch.tensor(scale))
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() * scale)  # gradient through the same mask
    assert effective_p(0.05) == pytest.approx(0.05, abs=1 / 65536)
    assert fast_dropout(x, 0.5, training=False) is x
    assert fast_dropout(x, 0.0, training=True) is x


def test_dropout_masks_reproduce_under_checkpointing(tiny_model_and_tokenizer):
    """Recomputation in the backward must draw the same masks (torch's RNG state is restored),
    so checkpointing on/off and a rerun from the same seed give the same gradients."""
    base, _ = tiny_model_and_tokenizer
    ids = torch.randint(0, 1000, (2, 20))

    def run(checkpointing: bool):
        model = _peft(base, True, dropout=0.3)
        if checkpointing:
            model.get_base_model().gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
            model.enable_input_require_grads()
        model.train()
        torch.manual_seed(123)
        return _loss_and_grads(model, ids)

    loss_plain, g_plain = run(False)
    loss_ckpt, g_ckpt = run(True)
    assert loss_ckpt == loss_plain
    for name, g in g_plain.items():
        torch.testing.assert_close(g_ckpt[name], g)
    # and dropout is really active: another seed gives another loss
    model = _peft(base, True, dropout=0.3).train()
    torch.manual_seed(124)
    assert _loss_and_grads(model, ids)[0] != loss_plain


def test_saved_adapter_is_plain_peft(tiny_model_and_tokenizer, tmp_path):
    base, _ = tiny_model_and_tokenizer
    fused = _peft(base, True, dropout=0.05)
    fused.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert "custom" not in json.dumps(config).lower()
    loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path).eval()
    assert not any(isinstance(m, FusedLoraLinear) for m in loaded.modules())
    ids = torch.randint(0, 1000, (1, 12))
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(input_ids=ids).logits, fused.eval()(input_ids=ids).logits, rtol=1e-5, atol=1e-6
        )
