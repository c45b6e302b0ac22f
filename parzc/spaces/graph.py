"""Cell graphs: an architecture's operations as a node-labelled DAG, padded to a fixed size.

Every cell space maps its encoding onto the same form, so one graph encoder serves them all:
node i carries an operation from the space's `graph_vocabulary` (index 0 is padding) and
`adjacency[i, j]` is 1 when node i feeds node j. Edge-labelled cells (NB201, DARTS) become
node-labelled by turning each operation into a node, as arch2vec and PINAT do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PAD = "<pad>"


@dataclass(frozen=True)
class CellGraph:
    """ops: int16 (nodes,), vocabulary indices (0 = padding); adjacency: uint8 (nodes, nodes)."""

    ops: np.ndarray
    adjacency: np.ndarray


def make_graph(
    labels: Sequence[str],
    edges: Sequence[tuple[int, int]],
    vocabulary: Sequence[str],
    nodes: int,
) -> CellGraph:
    """A CellGraph of `labels` (one per node) and directed `edges`, padded to `nodes` nodes."""
    if len(labels) > nodes:
        raise ValueError(f"a graph of {len(labels)} nodes does not fit {nodes} slots")
    index = {op: i for i, op in enumerate(vocabulary)}
    ops = np.zeros(nodes, dtype=np.int16)
    ops[: len(labels)] = [index[label] for label in labels]
    adjacency = np.zeros((nodes, nodes), dtype=np.uint8)
    for src, dst in edges:
        adjacency[src, dst] = 1
    return CellGraph(ops, adjacency)
