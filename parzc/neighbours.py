"""Neighbours in a space's operation encoding, and scores smoothed over them.

Two architectures are neighbours when their one-hot operation encodings are the closest distinct
pair (on NB201's canonical cells: one operation changed). Averaging a predictor's score with its
neighbours' is a label-free prior that accuracy varies smoothly over such edits; it reduces the
scores' noise where few labels shaped them (docs/results.md measures it).
"""

from __future__ import annotations

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


def smoothed(
    score: np.ndarray,
    queries: np.ndarray,
    pool: np.ndarray,
    pool_score: np.ndarray,
    weight: float,
) -> np.ndarray:
    """(1 - weight) * score + weight * the mean pool score of each query's nearest encodings;
    a query without neighbours keeps its score."""
    out = np.asarray(score, dtype=np.float64).copy()
    for i, rows in enumerate(nearest_encodings(queries, pool)):
        if len(rows):
            out[i] = (1 - weight) * out[i] + weight * float(np.mean(pool_score[rows]))
    return out
