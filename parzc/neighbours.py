"""Neighbours in a space's operation encoding, and scores smoothed over them.

Two architectures are neighbours when their one-hot operation encodings are the closest distinct
pair (NB201: one operation changed). Averaging a predictor's score with its neighbours' is a
label-free prior that accuracy varies smoothly over such edits; it reduces the scores' noise
where few labels shaped them (docs/results.md measures it).

A network's neighbours are found from every cell that encodes it: NB201 maps 15,625 cells onto
9,445 networks, and a network with many dead-edge twins is reached by one edit of any of them.
Searching the canonical codes only would give such a network the few neighbours of its canonical
cell, which differ systematically from those of its twins (docs/results.md measures both).
"""

from __future__ import annotations

import functools

import numpy as np

CHUNK = 512  # query rows per distance block (CHUNK x pool float32 values in memory)


def nearest_encodings(queries: np.ndarray, pool: np.ndarray) -> list[np.ndarray]:
    """For each query row, the pool rows at the smallest nonzero L1 distance (none if every
    pool row equals it). Rows are 0/1 encodings."""
    q, p = np.asarray(queries, dtype=np.float32), np.asarray(pool, dtype=np.float32)
    pool_ones = p.sum(axis=1)
    found: list[np.ndarray] = []
    for start in range(0, len(q), CHUNK):
        block = q[start : start + CHUNK]
        distance = block.sum(axis=1)[:, None] + pool_ones[None, :] - 2 * block @ p.T
        distance[distance < 0.5] = np.inf  # the query itself and exact copies
        nearest = distance.min(axis=1)
        found += [
            np.flatnonzero(row == d) if np.isfinite(d) else np.empty(0, np.int64)
            for row, d in zip(distance, nearest, strict=True)
        ]
    return found


@functools.cache
def space_cells(space: str) -> tuple[np.ndarray, np.ndarray]:
    """network_id and one-hot code (uint8) of every arch of `space`, in arch_id order."""
    from parzc.spaces import get_space  # the space registry builds torch modules lazily

    space_obj = get_space(space)
    table = space_obj.archs()
    codes = np.stack([space_obj.onehot(arch) for arch in table["arch"]]).astype(np.uint8)
    return table["network_id"].to_numpy(), codes


def neighbour_means(
    space: str, networks: np.ndarray, pool_networks: np.ndarray, pool_score: np.ndarray
) -> np.ndarray:
    """For each of `networks`: the mean over its cells (the archs of `space` that encode it) of
    the mean `pool_score` of each cell's nearest cell encodings among the cells of the pool's
    networks. NaN for a network none of whose cells has such a neighbour."""
    cell_network, codes = space_cells(space)
    for name, ids in (("networks", networks), ("pool networks", pool_networks)):
        outside = np.setdiff1d(ids, cell_network)
        if len(outside):
            raise ValueError(f"{space}: {name} {outside[:5].tolist()} are no network of the space")
    pool_row = np.full(int(cell_network.max()) + 1, -1)
    pool_row[np.asarray(pool_networks)] = np.arange(len(pool_networks))
    candidates = np.flatnonzero(np.isin(cell_network, pool_networks))
    candidate_score = np.asarray(pool_score, dtype=np.float64)[pool_row[cell_network[candidates]]]
    queries = np.flatnonzero(np.isin(cell_network, networks))
    cell_mean = np.array(
        [
            candidate_score[rows].mean() if len(rows) else np.nan
            for rows in nearest_encodings(codes[queries], codes[candidates])
        ]
    )
    found = np.isfinite(cell_mean)
    query_network = cell_network[queries][found]
    total = np.bincount(query_network, cell_mean[found], minlength=len(pool_row))
    count = np.bincount(query_network, minlength=len(pool_row))
    wanted = np.asarray(networks)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count[wanted] > 0, total[wanted] / count[wanted], np.nan)


def smoothed(score: np.ndarray, means: np.ndarray, weight: float) -> np.ndarray:
    """(1 - weight) * score + weight * means; a score whose mean is NaN stays as it is."""
    out = np.asarray(score, dtype=np.float64).copy()
    have = np.isfinite(means)
    out[have] = (1 - weight) * out[have] + weight * means[have]
    return out
