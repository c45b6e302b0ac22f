"""Parameter counts (duck-typed: any module with `weight` / `parameters()`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn


def layer_params(module: nn.Module) -> int:
    """weight.numel() + bias.numel() of a Conv2d/Linear layer."""
    bias = getattr(module, "bias", None)
    return module.weight.numel() + (bias.numel() if bias is not None else 0)


def model_params(model: nn.Module) -> int:
    """All parameters of the model (BN/LayerNorm included; shared parameters once)."""
    return sum(p.numel() for p in model.parameters())
