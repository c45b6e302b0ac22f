"""NAS-Bench-201 (Dong & Yang, ICLR 2020): a 4-node cell DAG over 5 operations.

The network is the benchmark's "TinyNetwork": a 3x3 conv stem (16 channels) with BN, three stages of
five cells (C = 16, 32, 64) joined by residual reduction blocks, then BN-ReLU, global average
pool and a linear classifier. Arch strings look like `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`:
edge `op~j` in group i feeds node i+1 from node j.
"""

from __future__ import annotations

import re
from functools import cache

import numpy as np
import polars as pl
import torch
from torch import nn

from parzc.data import resource
from parzc.spaces import SPACES
from parzc.spaces.base import ACCURACY_COLUMNS, DatasetInfo, InvalidArchError, SearchSpace

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NUM_EDGES = 6
_EDGE = re.compile(r"^([a-z0-9_]+)~(\d+)$")
_SUBSTITUTE = "CIFAR-10 images (true images not shipped)"

Genotype = tuple[tuple[tuple[str, int], ...], ...]


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class AvgPool3x3(nn.Module):
    """nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False) as a separable box filter.

    The same values (up to float rounding), about 3.7x faster forward + backward on the CPU,
    where avg_pool2d was a third of an NB201 extraction's time.
    """

    def __init__(self) -> None:
        super().__init__()
        self._inverse_counts: dict[tuple, torch.Tensor] = {}

    def inverse_counts(self, like: torch.Tensor) -> torch.Tensor:
        """1 / (number of in-bounds inputs) of each output position, cached per shape."""
        key = (*like.shape[-2:], like.dtype, like.device)
        if key not in self._inverse_counts:
            ones = like.new_ones(1, 1, *like.shape[-2:])
            self._inverse_counts[key] = 1.0 / _box_sum(ones)
        return self._inverse_counts[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _box_sum(x) * self.inverse_counts(x)


def _box_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over each 3x3 window of the zero-padded input (same spatial size)."""
    padded = nn.functional.pad(x, (1, 1, 1, 1))
    rows = padded[..., :-2, :] + padded[..., 1:-1, :] + padded[..., 2:, :]
    return rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]


def _make_op(name: str, channels: int) -> nn.Module:
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "avg_pool_3x3":
        return AvgPool3x3()
    kernel = 1 if name == "nor_conv_1x1" else 3
    return ReLUConvBN(channels, channels, kernel, 1)


class Cell(nn.Module):
    """Node i+1 = sum over edges (op, j) of group i of op(node j); the cell outputs node 3."""

    def __init__(self, genotype: Genotype, channels: int) -> None:
        super().__init__()
        self.inputs = [j for group in genotype for _, j in group]
        self.sizes = [len(group) for group in genotype]
        self.edges = nn.ModuleList(_make_op(op, channels) for group in genotype for op, _ in group)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes, edge = [x], 0
        for size in self.sizes:
            # A `none` edge adds exact zeros: skipping it changes no value and saves a pass.
            terms = [
                self.edges[e](nodes[self.inputs[e]])
                for e in range(edge, edge + size)
                if not isinstance(self.edges[e], Zero)
            ]
            nodes.append(sum(terms) if terms else x.mul(0.0))
            edge += size
        return nodes[-1]


class ResidualReduction(nn.Module):
    """NB201's ResNet basic block with stride 2 between stages."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class TinyNetwork(nn.Module):
    def __init__(self, genotype: Genotype, num_classes: int, channels: int = 16, cells: int = 5):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        blocks: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage:
                blocks.append(ResidualReduction(c, 2 * c))
                c *= 2
            blocks.extend(Cell(genotype, c) for _ in range(cells))
        self.cells = nn.Sequential(*blocks)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


def parse_arch(arch: str) -> Genotype:
    """Decode `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`, naming the bad token on error."""
    if not isinstance(arch, str):
        raise InvalidArchError(f"NB201 arch must be a string, got {type(arch).__name__}")
    groups = arch.split("+")
    if len(groups) != 3:
        raise InvalidArchError(f"NB201 arch {arch!r} must have 3 '+'-separated node groups")
    genotype = []
    for node, group in enumerate(groups, start=1):
        if not (group.startswith("|") and group.endswith("|")):
            raise InvalidArchError(f"NB201 arch {arch!r}: group {group!r} must be wrapped in '|'")
        tokens = group[1:-1].split("|")
        if len(tokens) != node:
            raise InvalidArchError(
                f"NB201 arch {arch!r}: node {node} needs {node} edges, got {group!r}"
            )
        edges = []
        for expected_input, token in enumerate(tokens):
            match = _EDGE.match(token)
            if not match or match.group(1) not in OPS or int(match.group(2)) != expected_input:
                raise InvalidArchError(
                    f"NB201 arch {arch!r}: bad edge {token!r} (expected <op>~{expected_input} "
                    f"with op in {', '.join(OPS)})"
                )
            edges.append((match.group(1), expected_input))
        genotype.append(tuple(edges))
    return tuple(genotype)


def live_edges(genotype: Genotype) -> set[tuple[int, int]]:
    """(from node, to node) of every non-`none` edge on some input-to-output path."""
    edges = {(j, i) for i, group in enumerate(genotype, start=1) for op, j in group if op != "none"}
    from_input, to_output = {0}, {3}
    for j, i in sorted(edges):
        if j in from_input:
            from_input.add(i)
    for j, i in sorted(edges, reverse=True):
        if i in to_output:
            to_output.add(j)
    return {(j, i) for j, i in edges if j in from_input and i in to_output}


def canonical_genotype(genotype: Genotype) -> Genotype:
    """The same network with every operation that lies on no input-to-output path set to `none`.

    Such an operation adds parameters, FLOPs and activations but never reaches the output.
    """
    live = live_edges(genotype)
    return tuple(
        tuple((op if (j, i) in live else "none", j) for op, j in group)
        for i, group in enumerate(genotype, start=1)
    )


def format_arch(genotype: Genotype) -> str:
    return "+".join("|" + "|".join(f"{op}~{j}" for op, j in group) + "|" for group in genotype)


def canonical_arch(arch: str) -> str:
    """`arch` with its dead operations replaced by `none` (15,625 cells -> 9,445 networks)."""
    return format_arch(canonical_genotype(parse_arch(arch)))


@SPACES.register("nb201")
class NB201(SearchSpace):
    """All 15,625 NB201 cells with 200-epoch validation and test accuracies (three datasets)."""

    name = "nb201"
    datasets = {
        "cifar10": DatasetInfo("cifar10", 10, 32, "CIFAR-10 images"),
        "cifar100": DatasetInfo("cifar100", 100, 32, _SUBSTITUTE),
        "imagenet16-120": DatasetInfo(
            "imagenet16-120", 120, 16, _SUBSTITUTE + ", resized to 16x16"
        ),
    }
    # stem + 15 cells x 6 convs + 2 reductions x 3 convs + classifier
    max_layers = 1 + 15 * NUM_EDGES + 2 * 3 + 1
    # Only CIFAR-10 images ship; ParZC scores all three targets with CIFAR-10 proxies too.
    proxy_dataset = "cifar10"
    _columns = {"cifar10": "c10", "cifar100": "c100", "imagenet16-120": "in16"}

    def accuracy_table(self) -> pl.DataFrame:
        return _accuracy_table()

    def decode(self, arch: str) -> Genotype:
        return parse_arch(arch)

    def build(self, arch: str, dataset: str) -> nn.Module:
        return TinyNetwork(parse_arch(arch), self.dataset(dataset).num_classes)

    def onehot(self, arch: str) -> np.ndarray:
        ops = [op for group in parse_arch(arch) for op, _ in group]
        out = np.zeros((NUM_EDGES, len(OPS)), dtype=np.float32)
        out[np.arange(NUM_EDGES), [OPS.index(op) for op in ops]] = 1.0
        return out.ravel()

    def canonical(self, arch: str) -> str:
        return canonical_arch(arch)


@cache
def _accuracy_table() -> pl.DataFrame:
    raw = pl.read_parquet(resource("nb201/nb201_accuracy.parquet"))
    frames = [
        raw.select(
            pl.col("arch_index").alias("arch_id"),
            pl.col("arch_str").alias("arch"),
            pl.lit(dataset).alias("dataset"),
            pl.col(f"{prefix}_val").alias("val_acc"),
            pl.col(f"{prefix}_test").alias("test_acc"),
            pl.lit(None, dtype=pl.Float64).alias("train_time_s"),
        )
        for dataset, prefix in NB201._columns.items()
    ]
    return pl.concat(frames).cast(ACCURACY_COLUMNS)
