"""A faster drop-in for peft's LoRA `Linear` on CPU: same parameters, same saved adapter.

peft computes `base(x) + lora_B(lora_A(dropout(x))) * scaling`. On this 2-core CPU two parts of
that cost more than they should (timed op by op; the effect on a whole training step is what
`bench/train_options.py` measures, `fused_lora` on against off):

- `nn.Dropout` draws one float per input element from torch's CPU generator (`bernoulli_`):
  ~2.5 ms for a 400 x 576 input against 1.6 ms for the layer's own matmul. `fast_dropout` draws
  64 random bits per call and uses them as four 16-bit uniforms, so the drop probability is `p`
  rounded to a multiple of 1/65536 (0.05 -> 0.0500031); masks are independent per element and
  per call as before, and come from torch's generator, so seeds, checkpoint/resume RNG states and
  activation-checkpointing recomputation reproduce them.
- the scaling multiply and the residual add are two extra passes over the layer's output in the
  forward and one in the backward; `torch.addmm` folds both into the LoRA B matmul (scaling is
  applied to the r x out weight instead of the T x out output).

Anything the fast path does not cover (merged or disabled adapters, mixed-adapter batches, DoRA
and other variants, LoRA bias, non-Linear bases, dtype casts) runs peft's own forward. Installed
with `LoraConfig._register_custom_module` (peft's dispatch for custom LoRA layers), so the adapter
files and `adapter_config.json` are exactly peft's and plain `PeftModel.from_pretrained` loads them.
"""

from __future__ import annotations

from typing import Any

import torch
from peft.tuners.lora.layer import Linear as PeftLoraLinear

UNIFORM_LEVELS = 1 << 16
"""`fast_dropout` resolution: p is rounded to a multiple of 1/65536."""


def _drop_levels(p: float) -> int:
    """How many of the 65536 16-bit values mean "drop"."""
    return round(p * UNIFORM_LEVELS)


def effective_p(p: float) -> float:
    """The drop probability `fast_dropout` realizes for a requested `p`."""
    return _drop_levels(p) / UNIFORM_LEVELS


def scaled_keep_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted-dropout multiplier shaped like `x`: 1 / (1 - p') with probability 1 - p', else 0
    (p' = effective_p(p)), one 16-bit uniform per element. Written straight into a tensor of x's
    dtype: a bool mask converted afterwards costs more than the random numbers."""
    n = x.numel()
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
    uniform16 = words.view(torch.int16)[:n].view(x.shape)  # each value uniform on [-2^15, 2^15)
    mask = torch.empty_like(x)
    torch.ge(uniform16, _drop_levels(p) - (1 << 15), out=mask)  # 1.0 = keep
    return mask.mul_(1.0 / (1.0 - effective_p(p)))


class _FastDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, p: float) -> torch.Tensor:
        mask = scaled_keep_mask(x, p)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def fast_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout with the mask drawn as described in the module docstring."""
    if not training or p == 0.0:
        return x
    if effective_p(p) >= 1.0:
        return torch.zeros_like(x)
    return _FastDropout.apply(x, p)


class FusedLoraLinear(PeftLoraLinear):
    """peft's LoRA Linear with the fast path above; registered for `torch.nn.Linear` targets."""

    def _fast_path_ok(self, x: torch.Tensor, args: tuple, kwargs: dict) -> bool:
        if args or kwargs or self.disable_adapters or self.merged:
            return False
        if x.device.type != "cpu" or not isinstance(self.base_layer, torch.nn.Linear):
            return False
        for name in self.active_adapters:
            if name not in self.lora_A:
                continue
            if name in self.lora_variant or self.lora_B[name].bias is not None:
                return False
            if self.lora_A[name].weight.dtype != x.dtype:
                return False
        return True

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if not self._fast_path_ok(x, args, kwargs):
            return super().forward(x, *args, **kwargs)
        base = self.base_layer
        result = torch.nn.functional.linear(x, base.weight, base.bias)  # [..., out]
        flat = result.reshape(-1, result.shape[-1])  # [N, out]
        for name in self.active_adapters:
            if name not in self.lora_A:
                continue
            dropout = self.lora_dropout[name]
            p = dropout.p if isinstance(dropout, torch.nn.Dropout) else 0.0
            h = torch.nn.functional.linear(
                fast_dropout(x, p, self.training), self.lora_A[name].weight
            )  # [..., r]
            scaled_b = self.lora_B[name].weight * self.scaling[name]  # [out, r]
            flat = torch.addmm(flat, h.reshape(-1, h.shape[-1]), scaled_b.t())  # [N, out]
        return flat.view(result.shape)


def register_fast_lora(lora_config: Any) -> None:
    """Make `get_peft_model(model, lora_config)` build FusedLoraLinear for Linear targets."""
    lora_config._register_custom_module({torch.nn.Linear: FusedLoraLinear})
