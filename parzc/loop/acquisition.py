"""Acquisition functions: which k candidates a round proposes, given scores and uncertainties.

Each is registered in ACQUISITIONS and maps (score, uncertainty, one-hot codes, network ids,
k, params) to the chosen rows (best first) and each row's acquisition value:

greedy   the k best scores;
ucb      the k best score + kappa * uncertainty (uncertainty 0 where the predictor has none);
diverse  greedy, but a candidate within `min_distance` one-hot positions of one already chosen
         (NB201: one operation changed = 2) is passed over, so a round does not spend its labels
         on near-duplicates.

Every acquisition takes at most one candidate per network: twin encodings of one network are
one training.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from parzc.registry import Registry

Acquisition = Callable[..., tuple[np.ndarray, np.ndarray]]
ACQUISITIONS: Registry[Acquisition] = Registry("acquisition")


def _best_first(value: np.ndarray) -> np.ndarray:
    """Row order by value, best first; ties by row (stable)."""
    return np.argsort(-value, kind="stable")


def _take(order: np.ndarray, networks: np.ndarray, k: int, accept=None) -> np.ndarray:
    chosen: list[int] = []
    seen: set[int] = set()
    for row in order:
        if len(chosen) == k:
            break
        network = int(networks[row])
        if network in seen or (accept is not None and not accept(row, chosen)):
            continue
        chosen.append(int(row))
        seen.add(network)
    return np.asarray(chosen, dtype=np.int64)


@ACQUISITIONS.register("greedy")
def greedy(score, uncertainty, onehot, networks, k: int, **params: Any):
    _no_params("greedy", params)
    rows = _take(_best_first(score), networks, k)
    return rows, score[rows]


@ACQUISITIONS.register("ucb")
def upper_confidence(score, uncertainty, onehot, networks, k: int, kappa: float = 1.0, **params):
    _no_params("ucb", params)
    value = score + kappa * np.nan_to_num(uncertainty, nan=0.0)
    rows = _take(_best_first(value), networks, k)
    return rows, value[rows]


@ACQUISITIONS.register("diverse")
def diverse(score, uncertainty, onehot, networks, k: int, min_distance: int = 2, **params):
    _no_params("diverse", params)
    codes = np.asarray(onehot, dtype=np.float32)

    def far_enough(row: int, chosen: list[int]) -> bool:
        if not chosen:
            return True
        distance = np.abs(codes[chosen] - codes[row]).sum(axis=1)
        return bool(distance.min() > min_distance)

    rows = _take(_best_first(score), networks, k, far_enough)
    if len(rows) < k:  # too few distant candidates left: fill greedily
        rest = np.setdiff1d(_best_first(score), rows, assume_unique=True)
        extra = _take(rest[np.argsort(-score[rest], kind="stable")], networks, k - len(rows))
        extra = extra[~np.isin(networks[extra], networks[rows])]
        rows = np.concatenate([rows, extra])[:k]
    return rows, score[rows]


def _no_params(name: str, params: dict[str, Any]) -> None:
    if params:
        raise ValueError(f"acquisition {name!r} takes no parameter {sorted(params)[0]!r}")
