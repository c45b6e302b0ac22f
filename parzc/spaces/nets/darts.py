"""The torch network of a DARTS genotype: NetworkCIFAR (see parzc.spaces.darts)."""

from __future__ import annotations

import torch
from torch import nn

from parzc.spaces.darts import STEM_MULTIPLIER, STEPS, Cell, Genotype


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
            nn.BatchNorm2d(c_out),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise (dilated) conv, pointwise conv, BN."""

    def __init__(self, c: int, kernel: int, stride: int, padding: int, dilation: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, kernel, stride, padding, dilation=dilation, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c),
        )


class SepConv(nn.Sequential):
    """Two stacked depthwise-separable blocks; only the first one strides."""

    def __init__(self, c: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(
            DilConv(c, kernel, stride, padding, dilation=1),
            DilConv(c, kernel, 1, padding, dilation=1),
        )


class FactorizedReduce(nn.Module):
    """Stride-2 reduction: two offset 1x1 stride-2 convs, concatenated, then BN."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


def make_op(name: str, c: int, stride: int) -> nn.Module:
    """DARTS' `OPS[name](C, stride, affine=True)`."""
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    kind, size = name.rsplit("_", 1)
    kernel = int(size[0])
    if kind == "sep_conv":
        return SepConv(c, kernel, stride, kernel // 2)
    return DilConv(c, kernel, stride, 2 * (kernel // 2), dilation=2)


class DartsCell(nn.Module):
    def __init__(
        self,
        edges: Cell,
        concat: tuple[int, ...],
        c_prev_prev: int,
        c_prev: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
    ) -> None:
        super().__init__()
        self.preprocess0 = (
            FactorizedReduce(c_prev_prev, c)
            if reduction_prev
            else ReLUConvBN(c_prev_prev, c, 1, 1, 0)
        )
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0)
        self.inputs = [src for _, src in edges]
        self.concat = concat
        self.ops = nn.ModuleList(
            make_op(op, c, 2 if reduction and src < 2 else 1) for op, src in edges
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(STEPS):
            a, b = 2 * k, 2 * k + 1
            states.append(self.ops[a](states[self.inputs[a]]) + self.ops[b](states[self.inputs[b]]))
        return torch.cat([states[i] for i in self.concat], dim=1)


class NetworkCIFAR(nn.Module):
    """DARTS' CIFAR network: 3C-channel stem, `layers` cells (reductions at 1/3 and 2/3)."""

    def __init__(self, genotype: Genotype, channels: int, layers: int, num_classes: int) -> None:
        super().__init__()
        c_curr = STEM_MULTIPLIER * channels
        self.stem = nn.Sequential(
            nn.Conv2d(3, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr)
        )
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            edges, concat = (
                (genotype.reduce, genotype.reduce_concat)
                if reduction
                else (genotype.normal, genotype.normal_concat)
            )
            self.cells.append(
                DartsCell(edges, concat, c_prev_prev, c_prev, c_curr, reduction, reduction_prev)
            )
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, len(concat) * c_curr
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def feature_blocks(self) -> list[nn.Module]:
        """The stem and every cell (the blocks AZ-NAS compares)."""
        return [self.stem, *self.cells]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(torch.flatten(self.pool(s1), 1))
