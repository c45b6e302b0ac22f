"""Parameter and multiply-accumulate counts."""

from __future__ import annotations

from torch import Tensor, nn


def layer_params(module: nn.Module) -> int:
    """weight.numel() + bias.numel() of a Conv2d/Linear layer."""
    bias = getattr(module, "bias", None)
    return module.weight.numel() + (bias.numel() if bias is not None else 0)


def model_params(model: nn.Module) -> int:
    """All parameters of the model (BN/LayerNorm included; shared parameters once)."""
    return sum(p.numel() for p in model.parameters())


def layer_macs(module: nn.Module, output: Tensor, batch: int) -> int:
    """Multiply-accumulates of one call per example (bias ignored), from the output shape."""
    per_output = output.numel() // batch
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return per_output * (module.in_channels // module.groups) * kh * kw
    return per_output * module.in_features
