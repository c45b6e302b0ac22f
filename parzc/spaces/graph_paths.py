"""Path features of cell graphs, after GRAF (Kadlecova et al., "Surprisingly strong performance
prediction with neural graph features", ICML 2024): how many operations of each kind a cell
holds, and for each small set of operations how many input-to-output paths use only those
operations, and how long the shortest and the longest such path are.

Computed on the padded node-labelled form of `parzc.spaces.graph`, for a batch of cells at once
(powers of the adjacency restricted to a set's nodes). Nodes labelled `input` or `output` start
and end paths; nodes labelled `sum` (DARTS' intermediate states) are passable by every path;
`none` operations cut the paths through them (NB201's zero operation) and are only counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np

from parzc.spaces.graph import PAD

STARTS, ENDS, PASSABLE, CUTS = ("input",), ("output",), ("sum",), ("none",)


def _operations(vocabulary: Sequence[str]) -> list[str]:
    structural = {PAD, *STARTS, *ENDS, *PASSABLE}
    return [label for label in vocabulary if label not in structural]


def path_feature_names(vocabulary: Sequence[str], max_set: int) -> list[str]:
    """The names of `path_features`' columns, in order: `count:<op>` for each operation, then
    `paths:`, `shortest:` and `longest:` for each set of at most `max_set` operations that do
    not cut paths (members joined by `+`)."""
    names = [f"count:{op}" for op in _operations(vocabulary)]
    for members in _path_sets(vocabulary, max_set):
        key = "+".join(members)
        names += [f"paths:{key}", f"shortest:{key}", f"longest:{key}"]
    return names


def _path_sets(vocabulary: Sequence[str], max_set: int) -> list[tuple[str, ...]]:
    """Every set of at most `max_set` operations that do not cut paths, in column order."""
    if max_set < 1:
        raise ValueError(f"graph path features: max_set must be >= 1, got {max_set}")
    operations = [op for op in _operations(vocabulary) if op not in CUTS]
    sizes = range(1, min(max_set, len(operations)) + 1)
    return [members for size in sizes for members in combinations(operations, size)]


def path_features(
    ops: np.ndarray, adjacency: np.ndarray, vocabulary: Sequence[str], max_set: int = 3
) -> np.ndarray:
    """float64 (cells, len(path_feature_names(vocabulary, max_set))) for `ops` (cells, nodes)
    vocabulary indices and `adjacency` (cells, nodes, nodes) links. A path's length is its
    number of links; a set no path uses has 0 paths and lengths 0."""
    ops = np.asarray(ops, dtype=np.int64)
    links = np.asarray(adjacency, dtype=np.float64)
    if ops.ndim != 2 or links.shape != (*ops.shape, ops.shape[1]):
        raise ValueError(
            f"graph path features: ops {ops.shape} and adjacency {links.shape} must be "
            "(cells, nodes) and (cells, nodes, nodes)"
        )
    index = {label: i for i, label in enumerate(vocabulary)}
    starts = np.isin(ops, [index[label] for label in STARTS if label in index])
    ends = np.isin(ops, [index[label] for label in ENDS if label in index])
    always = starts | ends | np.isin(ops, [index[label] for label in PASSABLE if label in index])
    columns = [(ops == index[op]).sum(axis=1).astype(np.float64) for op in _operations(vocabulary)]
    steps = np.arange(1, ops.shape[1])
    for members in _path_sets(vocabulary, max_set):
        allowed = always | np.isin(ops, [index[op] for op in members])
        passable = links * allowed[:, :, None] * allowed[:, None, :]
        reached, by_length = starts.astype(np.float64), []
        for _ in steps:  # paths of one more link from the starts
            reached = np.einsum("ci,cij->cj", reached, passable)
            by_length.append((reached * ends).sum(axis=1))
        counts = np.stack(by_length, axis=1)
        used = counts > 0
        any_path = used.any(axis=1)
        shortest = np.where(any_path, steps[np.argmax(used, axis=1)], 0)
        longest = np.where(any_path, steps[::-1][np.argmax(used[:, ::-1], axis=1)], 0)
        columns += [counts.sum(axis=1), shortest.astype(np.float64), longest.astype(np.float64)]
    return np.stack(columns, axis=1)
