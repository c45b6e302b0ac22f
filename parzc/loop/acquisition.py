"""Acquisition functions: which k candidates a round proposes, given scores and uncertainties.

Each is registered in ACQUISITIONS and maps the round's open `Candidates`, k and its params to
the chosen rows (best first) and each row's acquisition value:

greedy   the k best scores;
ucb      the k best score + kappa * uncertainty (uncertainty 0 where the predictor has none);
diverse  greedy, but a candidate within `min_distance` one-hot positions of one already chosen
         (NB201: one operation changed = 2) is passed over, so a round does not spend its labels
         on near-duplicates;
local    greedy among the neighbours of the best labelled candidates: those within `radius`
         one-hot positions of one of the `anchors` best labels (BANANAS' mutation-based
         acquisition); the rest of the round, if the neighbourhoods run out, greedy over all.
         Before any label it is greedy.

Every acquisition takes at most one candidate per network: twin encodings of one network are
one training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from parzc.registry import Registry


@dataclass(frozen=True)
class Candidates:
    """A round's open candidates (one row each) and the labelled ones an acquisition may read.

    `labelled` holds the one-hot codes of the labelled candidates, best label first."""

    score: np.ndarray
    uncertainty: np.ndarray
    onehot: np.ndarray
    networks: np.ndarray
    labelled: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))


Acquisition = Callable[..., tuple[np.ndarray, np.ndarray]]
ACQUISITIONS: Registry[Acquisition] = Registry("acquisition")


def _best_first(value: np.ndarray) -> np.ndarray:
    """Row order by value, best first; ties by row (stable)."""
    return np.argsort(-value, kind="stable")


def _take(order: np.ndarray, networks: np.ndarray, k: int, accept=None, chosen=()) -> np.ndarray:
    """Up to k rows of `order` after `chosen`, one per network, each passing `accept`."""
    chosen = [int(row) for row in chosen]
    seen = {int(networks[row]) for row in chosen}
    for row in order:
        if len(chosen) == k:
            break
        network = int(networks[row])
        if network in seen or (accept is not None and not accept(row, chosen)):
            continue
        chosen.append(int(row))
        seen.add(network)
    return np.asarray(chosen, dtype=np.int64)


def onehot_distances(codes: np.ndarray, to: np.ndarray) -> np.ndarray:
    """L1 distance (one-hot positions) of every row of `codes` to every row of `to`."""
    codes = np.asarray(codes, dtype=np.float32)
    return np.abs(codes[:, None, :] - np.asarray(to, dtype=np.float32)[None, :, :]).sum(axis=2)


@ACQUISITIONS.register("greedy")
def greedy(candidates: Candidates, k: int, **params: Any):
    _no_params("greedy", params)
    rows = _take(_best_first(candidates.score), candidates.networks, k)
    return rows, candidates.score[rows]


@ACQUISITIONS.register("ucb")
def upper_confidence(candidates: Candidates, k: int, kappa: float = 1.0, **params: Any):
    _no_params("ucb", params)
    value = candidates.score + kappa * np.nan_to_num(candidates.uncertainty, nan=0.0)
    rows = _take(_best_first(value), candidates.networks, k)
    return rows, value[rows]


@ACQUISITIONS.register("diverse")
def diverse(candidates: Candidates, k: int, min_distance: int = 2, **params: Any):
    _no_params("diverse", params)
    codes = candidates.onehot

    def far_enough(row: int, chosen: list[int]) -> bool:
        return not chosen or bool(
            onehot_distances(codes[[row]], codes[chosen]).min() > min_distance
        )

    order = _best_first(candidates.score)
    rows = _take(order, candidates.networks, k, far_enough)
    if len(rows) < k:  # too few distant candidates left: fill greedily
        rows = _take(order, candidates.networks, k, chosen=rows)
    return rows, candidates.score[rows]


@ACQUISITIONS.register("local")
def local(candidates: Candidates, k: int, anchors: int = 3, radius: int = 2, **params: Any):
    _no_params("local", params)
    if anchors < 1 or radius < 1:
        raise ValueError(
            f"acquisition 'local' needs anchors >= 1 and radius >= 1: {anchors}, {radius}"
        )
    order = _best_first(candidates.score)
    rows = np.zeros(0, dtype=np.int64)
    if len(candidates.labelled) and len(order):
        near = (
            onehot_distances(candidates.onehot, candidates.labelled[:anchors]).min(axis=1) <= radius
        )
        rows = _take(order[near[order]], candidates.networks, k)
    rows = _take(order, candidates.networks, k, chosen=rows)  # neighbourhoods ran out: greedy
    return rows, candidates.score[rows]


def _no_params(name: str, params: dict[str, Any]) -> None:
    if params:
        raise ValueError(f"acquisition {name!r} takes no parameter {sorted(params)[0]!r}")
