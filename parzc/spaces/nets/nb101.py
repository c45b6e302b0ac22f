"""The torch network of an NB101 cell (nasbench's model_builder, see parzc.spaces.nb101)."""

from __future__ import annotations

import math

import torch
from torch import nn

from parzc.spaces.nb101 import (
    BN_EPS,
    BN_MOMENTUM,
    CELLS_PER_STACK,
    CONV1X1,
    MAXPOOL3X3,
    NUM_STACKS,
    STEM_CHANNELS,
    CellSpec,
    vertex_channels,
)


class ConvBnRelu(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=False),
        )


def _vertex_op(op: str, channels: int) -> nn.Module:
    if op == MAXPOOL3X3:
        return nn.MaxPool2d(3, stride=1, padding=1)
    return ConvBnRelu(channels, channels, 1 if op == CONV1X1 else 3)


class Cell(nn.Module):
    """One NB101 module: vertex t sums its (truncated) predecessors and input projection."""

    def __init__(self, spec: CellSpec, c_in: int, c_out: int) -> None:
        super().__init__()
        n = spec.num_vertices
        self.channels = vertex_channels(spec, c_in, c_out)
        self.preds = [[s for s in range(1, t) if spec.edge(s, t)] for t in range(n)]
        self.to_output = [t for t in range(1, n - 1) if spec.edge(t, n - 1)]
        self.proj = nn.ModuleDict(
            {
                str(t): ConvBnRelu(c_in, self.channels[t], 1)
                for t in range(1, n - 1)
                if spec.edge(0, t)
            }
        )
        self.ops = nn.ModuleList(_vertex_op(spec.ops[t], self.channels[t]) for t in range(1, n - 1))
        self.out_proj = ConvBnRelu(c_in, c_out, 1) if spec.edge(0, n - 1) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = [x]
        for t, op in enumerate(self.ops, start=1):
            c = self.channels[t]
            terms = [states[s][:, :c] for s in self.preds[t]]
            if str(t) in self.proj:
                terms.append(self.proj[str(t)](x))
            states.append(op(sum(terms[1:], terms[0])))
        if not self.to_output:
            return self.out_proj(x)
        out = torch.cat([states[t] for t in self.to_output], dim=1)
        return out + self.out_proj(x) if self.out_proj is not None else out


def _truncated_normal_(w: torch.Tensor, std: float) -> None:
    """N(0, std^2) cut at +-2 std by inverse-CDF sampling (torch's rejection sampler is ~5x
    slower, which dominates building these networks)."""
    bound = math.erf(math.sqrt(2.0))  # 2 * Phi(2) - 1
    with torch.no_grad():
        w.uniform_(-bound, bound).erfinv_().mul_(std * math.sqrt(2.0))


class NB101Network(nn.Module):
    """Stem, 3 stacks x 3 cells with max-pool downsampling between stacks, GAP, linear head."""

    def __init__(self, spec: CellSpec, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = ConvBnRelu(3, STEM_CHANNELS, 3)
        layers: list[nn.Module] = []
        c_in = STEM_CHANNELS
        for stack in range(NUM_STACKS):
            c_out = c_in * 2 if stack else c_in
            if stack:
                layers.append(nn.MaxPool2d(2, stride=2))
            for _ in range(CELLS_PER_STACK):
                layers.append(Cell(spec, c_in, c_out))
                c_in = c_out
        self.cells = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_in, num_classes)
        self._init_tf_like()

    def _init_tf_like(self) -> None:
        """nasbench's initialisers: convs `variance_scaling_initializer()` (truncated normal,
        fan-in, scale 1), dense kernel Glorot-uniform with zero bias, BN gamma 1 / beta 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                _truncated_normal_(m.weight, math.sqrt(1.0 / fan_in) / 0.87962566103423978)
            elif isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def feature_blocks(self) -> list[nn.Module]:
        """The stem, every cell and the pools between stacks (the blocks AZ-NAS compares)."""
        return [self.stem, *self.cells]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cells(self.stem(x))
        return self.classifier(torch.flatten(self.pool(x), 1))
