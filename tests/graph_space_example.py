"""A user's graph space for the tests: the NB201 cells whose first edge is a 3x3 convolution,
subclassing SearchSpace with a cell graph and a canonical form (as a user would write one)."""

from __future__ import annotations

import itertools

import numpy as np

from parzc.spaces.base import SearchSpace
from parzc.spaces.nb201 import (
    GRAPH_VOCABULARY,
    NUM_EDGES,
    OPS,
    canonical_arch,
    cell_graph,
    format_arch,
    parse_arch,
)


class ConvFirstCells(SearchSpace):
    name = "conv_first"
    graph_vocabulary = GRAPH_VOCABULARY
    graph_nodes = NUM_EDGES + 2

    def decode(self, arch: str):
        genotype = parse_arch(arch)
        if genotype[0][0][0] != "nor_conv_3x3":
            raise ValueError(f"{arch!r}: the first edge must be nor_conv_3x3")
        return genotype

    def enumerate(self):
        for ops in itertools.product(OPS, repeat=NUM_EDGES - 1):
            ops = ("nor_conv_3x3", *ops)
            yield format_arch(
                (
                    ((ops[0], 0),),
                    ((ops[1], 0), (ops[2], 1)),
                    ((ops[3], 0), (ops[4], 1), (ops[5], 2)),
                )
            )

    def build(self, arch: str, dataset: str):
        from parzc.spaces.nets.nb201 import TinyNetwork

        return TinyNetwork(self.decode(arch), self.dataset(dataset).num_classes)

    def onehot(self, arch: str) -> np.ndarray:
        ops = [op for group in self.decode(arch) for op, _ in group]
        out = np.zeros((NUM_EDGES, len(OPS)), dtype=np.float32)
        out[np.arange(NUM_EDGES), [OPS.index(op) for op in ops]] = 1.0
        return out.ravel()

    def cell_graph(self, arch: str):
        return cell_graph(self.decode(arch))

    def canonical(self, arch: str) -> str:
        return canonical_arch(arch)
