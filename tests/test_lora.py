"""The fused CPU LoRA layer: same math as peft's, dropout statistics, reproducible masks."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model

from filingcontrast.lora import FusedLoraLinear, effective_p, fast_dropout, register_fast_lora
from filingcontrast.train import enable_checkpointing


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
            enable_checkpointing(model)
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


# --- single-layer checks: a Linear with a bias wrapped by peft's layer and by the fused one ---


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(16, 12)  # with a bias, unlike Llama's projections

    def forward(self, x):
        return self.proj(x)


def _layer_pair(**overrides):
    """(base net, peft's model, fused model) with identical weights; LoRA B != 0."""
    kwargs = dict(r=4, lora_alpha=8, target_modules=["proj"], init_lora_weights=False)
    kwargs.update(overrides)
    torch.manual_seed(0)
    net = _Net()
    ref = get_peft_model(copy.deepcopy(net), LoraConfig(**kwargs))
    cfg = LoraConfig(**kwargs)
    register_fast_lora(cfg)
    fused = get_peft_model(copy.deepcopy(net), cfg)
    fused.load_state_dict(ref.state_dict())
    return net, ref, fused


def _out_and_grads(model, x):
    model.zero_grad()
    x = x.clone().requires_grad_(True)
    out = model(x)
    (out * torch.linspace(-1, 1, out.shape[-1])).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return out.detach(), grads, x.grad


@pytest.mark.parametrize(
    "overrides",
    [{}, {"r": 2, "lora_alpha": 16}, {"r": 8, "lora_alpha": 8, "use_rslora": True}],
    ids=["r4-alpha8", "r2-alpha16", "rslora"],
)
def test_fused_layer_output_and_grads_match_peft(overrides):
    """Scaling (alpha / r, or alpha / sqrt(r) with rsLoRA), the base bias, and the gradients of
    A, B and the input all equal peft's."""
    net, ref, fused = _layer_pair(**overrides)
    assert isinstance(fused.base_model.model.proj, FusedLoraLinear)
    ref.train(), fused.train()
    x = torch.randn(3, 5, 16)
    out_ref, g_ref, gx_ref = _out_and_grads(ref, x)
    out_fused, g_fused, gx_fused = _out_and_grads(fused, x)
    torch.testing.assert_close(out_fused, out_ref, rtol=1e-5, atol=1e-6)
    assert {n for n in g_ref if "lora_A" in n} and {n for n in g_ref if "lora_B" in n}
    assert g_fused.keys() == g_ref.keys()
    for name, g in g_ref.items():
        torch.testing.assert_close(g_fused[name], g, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gx_fused, gx_ref, rtol=1e-5, atol=1e-6)
    # and LoRA really contributes (so a wrong scaling could not hide)
    assert not torch.allclose(out_ref, net(x), atol=1e-3)


def test_dropout_hits_lora_input_only_and_only_in_training():
    """peft: base(x) + B(A(dropout(x))) * s. Rows of x with a single nonzero feature are either
    dropped whole from the LoRA branch or kept and scaled by 1 / (1 - p'); the base path never
    sees dropout, and in eval mode nothing is dropped."""
    p = 0.25
    net, _, fused = _layer_pair(lora_dropout=p)
    layer = fused.base_model.model.proj
    n = 600
    x = torch.zeros(n, 16)
    x[torch.arange(n), torch.arange(n) % 16] = 1.0 + torch.rand(n)
    with torch.no_grad():
        base_out = net(x)
        full = (x @ layer.lora_A["default"].weight.T @ layer.lora_B["default"].weight.T) * 2.0
    assert layer.scaling["default"] == 2.0
    fused.eval()
    with torch.no_grad():
        torch.testing.assert_close(fused(x) - base_out, full, rtol=1e-5, atol=1e-5)
    fused.train()
    torch.manual_seed(3)
    xg = x.clone().requires_grad_(True)
    out = fused(xg)
    delta = out.detach() - base_out
    dropped = delta.abs().amax(dim=1) < 1e-6
    kept = ~dropped
    torch.testing.assert_close(delta[dropped], torch.zeros_like(delta[dropped]))
    scale = 1 / (1 - effective_p(p))
    torch.testing.assert_close(delta[kept], full[kept] * scale, rtol=1e-4, atol=1e-5)
    assert dropped.float().mean().item() == pytest.approx(p, abs=0.06)
    # the backward goes through the same mask: at each row's nonzero feature j the gradient of
    # sum(out) is W[:, j].sum() + s * (BA)[:, j].sum() / (1 - p') if kept, else W[:, j].sum()
    out.sum().backward()
    cols = torch.arange(n) % 16
    with torch.no_grad():
        w = net.proj.weight.sum(0)
        ba = (layer.lora_B["default"].weight @ layer.lora_A["default"].weight * 2.0).sum(0)
        expected = w[cols] + kept.float() * scale * ba[cols]
    torch.testing.assert_close(xg.grad[torch.arange(n), cols], expected, rtol=1e-4, atol=1e-5)


def test_disabled_adapter_gives_the_base_output():
    """evaluate's zero-shot scoring runs the trained model under `disable_adapter()`."""
    net, ref, fused = _layer_pair()
    fused.eval()
    x = torch.randn(4, 16)
    with torch.no_grad():
        with fused.disable_adapter():
            torch.testing.assert_close(fused(x), net(x))
        torch.testing.assert_close(fused(x), ref.eval()(x), rtol=1e-5, atol=1e-6)


def test_unmerge_returns_to_the_adapter_output():
    net, ref, fused = _layer_pair()
    fused.eval()
    x = torch.randn(4, 16)
    with torch.no_grad():
        before = fused(x)
        fused.merge_adapter()
        torch.testing.assert_close(fused(x), before, rtol=1e-5, atol=1e-6)
        fused.unmerge_adapter()
        torch.testing.assert_close(fused(x), before, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(fused.base_model.model.proj.base_layer.weight, net.proj.weight)


def test_only_the_active_adapter_contributes():
    net, ref, fused = _layer_pair()
    second = LoraConfig(r=4, lora_alpha=8, target_modules=["proj"], init_lora_weights=False)
    for model in (ref, fused):
        torch.manual_seed(5)
        model.add_adapter("other", second)
    fused.load_state_dict(ref.state_dict())
    ref.eval(), fused.eval()
    x = torch.randn(4, 16)
    with torch.no_grad():
        for active in ("default", "other"):
            ref.set_adapter(active), fused.set_adapter(active)
            torch.testing.assert_close(fused(x), ref(x), rtol=1e-5, atol=1e-6)
        # a mixed-adapter batch: each row with its own adapter, "__base__" = no adapter
        names = ["default", "__base__", "other", "__base__"]
        mixed = fused(x, adapter_names=names)
        torch.testing.assert_close(mixed, ref(x, adapter_names=names), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(mixed[1], net(x)[1])


@pytest.mark.parametrize(
    "overrides", [{"use_dora": True}, {"lora_bias": True}], ids=["dora", "lora-bias"]
)
def test_variants_the_fast_path_does_not_cover_still_match_peft(overrides):
    _, ref, fused = _layer_pair(**overrides)
    if "lora_bias" in overrides:  # a nonzero LoRA bias, so dropping it would show
        with torch.no_grad():
            for model in (ref, fused):
                model.base_model.model.proj.lora_B["default"].bias.fill_(0.5)
    ref.train(), fused.train()
    x = torch.randn(2, 3, 16)
    out_ref, g_ref, _ = _out_and_grads(ref, x)
    out_fused, g_fused, _ = _out_and_grads(fused, x)
    torch.testing.assert_close(out_fused, out_ref, rtol=1e-5, atol=1e-6)
    for name, g in g_ref.items():
        torch.testing.assert_close(g_fused[name], g, rtol=1e-5, atol=1e-6)


def test_bf16_base_with_fp32_adapter_matches_peft():
    """peft keeps the adapter in fp32 on a bf16 base (autocast_adapter_dtype): x arrives in bf16."""
    net, _, _ = _layer_pair()
    net = net.to(torch.bfloat16)
    kwargs = dict(r=4, lora_alpha=8, target_modules=["proj"], init_lora_weights=False)
    torch.manual_seed(0)
    ref = get_peft_model(copy.deepcopy(net), LoraConfig(**kwargs))
    cfg = LoraConfig(**kwargs)
    register_fast_lora(cfg)
    fused = get_peft_model(copy.deepcopy(net), cfg)
    fused.load_state_dict(ref.state_dict())
    assert fused.base_model.model.proj.lora_A["default"].weight.dtype == torch.float32
    x = torch.randn(4, 16, dtype=torch.bfloat16)
    with torch.no_grad():
        out = fused.eval()(x)
        assert out.dtype == torch.bfloat16
        torch.testing.assert_close(out, ref.eval()(x))


def test_dropout_p_one_drops_everything():
    x = torch.randn(50, 20)
    assert torch.equal(fast_dropout(x, 1.0, training=True), torch.zeros_like(x))  # no 0 * inf
