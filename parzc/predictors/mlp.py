"""A plain MLP predictor: MABN's inputs and training loop without the mixer or Bayesian layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from parzc.predictors.base import PREDICTORS
from parzc.predictors.torch_base import TorchPredictor


class MLP(nn.Module):
    """(Linear -> GELU) x depth -> Linear on the flattened features [concatenated with onehot]."""

    def __init__(self, input_dim: int, onehot_dim: int = 0, hidden_dim: int = 256, depth: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        width = input_dim + onehot_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden_dim), nn.GELU()]
            width = hidden_dim
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, onehot: Tensor | None = None) -> Tensor:
        if onehot is not None:
            x = torch.cat([x, onehot], dim=1)
        return self.net(x).squeeze(-1)


@PREDICTORS.register("mlp")
@dataclass(kw_only=True, eq=False)
class MLPPredictor(TorchPredictor):
    """Plain MLP with the MABN inputs and training loop; no uncertainty."""

    name: ClassVar[str] = "mlp"

    hidden_dim: int = 256
    depth: int = 3

    def build_model(self, input_dim: int, onehot_dim: int) -> nn.Module:
        return MLP(input_dim, onehot_dim, hidden_dim=self.hidden_dim, depth=self.depth)
