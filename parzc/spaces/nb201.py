"""NAS-Bench-201 (Dong & Yang, ICLR 2020): a 4-node cell DAG over 5 operations.

The network is the benchmark's "TinyNetwork": a 3x3 conv stem (16 channels) with BN, three stages of
five cells (C = 16, 32, 64) joined by residual reduction blocks, then BN-ReLU, global average
pool and a linear classifier. Arch strings look like `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`:
edge `op~j` in group i feeds node i+1 from node j.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from parzc.resources import resource
from parzc.spaces import SPACES
from parzc.spaces.base import ACCURACY_COLUMNS, DatasetInfo, InvalidArchError, SearchSpace
from parzc.spaces.graph import PAD, CellGraph, make_graph

if TYPE_CHECKING:
    from torch import nn

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NUM_EDGES = 6
GRAPH_VOCABULARY = (PAD, "input", "output", *OPS)
_EDGE = re.compile(r"^([a-z0-9_]+)~(\d+)$")
_SUBSTITUTE = "CIFAR-10 images (true images not shipped)"

Genotype = tuple[tuple[tuple[str, int], ...], ...]


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


def cell_graph(genotype: Genotype) -> CellGraph:
    """Input node, one node per edge operation (in arch-string order), output node.

    Operation node (j -> i) reads the input (j = 0) or every operation into node j, and feeds
    the output (i = 3) or every operation out of node i; `none` operations have no links.
    """
    edges = [(j, i, op) for i, group in enumerate(genotype, start=1) for op, j in group]
    live = [k for k, (_, _, op) in enumerate(edges, start=1) if op != "none"]
    output = len(edges) + 1
    links = []
    for k in live:
        j, i, _ = edges[k - 1]
        links += [(0, k)] if j == 0 else [(m, k) for m in live if edges[m - 1][1] == j]
        links += [(k, output)] if i == 3 else []
    labels = ["input", *(op for _, _, op in edges), "output"]
    return make_graph(labels, links, GRAPH_VOCABULARY, NUM_EDGES + 2)


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
    graph_vocabulary = GRAPH_VOCABULARY
    graph_nodes = NUM_EDGES + 2
    _columns = {"cifar10": "c10", "cifar100": "c100", "imagenet16-120": "in16"}

    def accuracy_table(self) -> pl.DataFrame:
        return _accuracy_table()

    def extra_labels(self, dataset: str) -> pl.DataFrame:
        """CIFAR-10's `val_mean`: NB201 v1.1's seed-mean `cifar10-valid` validation accuracy."""
        self.dataset(dataset)
        if dataset != "cifar10":
            return super().extra_labels(dataset)
        raw = pl.read_parquet(resource("nb201/nb201_accuracy.parquet"))
        return raw.select(
            pl.col("arch_index").cast(pl.Int32).alias("arch_id"),
            pl.col("c10_valid_v11").cast(pl.Float64).alias("val_mean"),
        )

    def decode(self, arch: str) -> Genotype:
        return parse_arch(arch)

    def build(self, arch: str, dataset: str) -> nn.Module:
        from parzc.spaces.nets.nb201 import TinyNetwork

        return TinyNetwork(parse_arch(arch), self.dataset(dataset).num_classes)

    def onehot(self, arch: str) -> np.ndarray:
        ops = [op for group in parse_arch(arch) for op, _ in group]
        out = np.zeros((NUM_EDGES, len(OPS)), dtype=np.float32)
        out[np.arange(NUM_EDGES), [OPS.index(op) for op in ops]] = 1.0
        return out.ravel()

    def cell_graph(self, arch: str) -> CellGraph:
        return cell_graph(parse_arch(arch))

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
