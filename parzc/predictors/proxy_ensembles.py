"""Proxy ensembles: one ranking of the architectures from several stored proxies, no labels.

Each proxy (an aggregate column of a `FeatureMatrix`) is first turned into ranks, so proxies on
different scales weigh alike and a failed (NaN) proxy ranks its architecture last. How the ranks
are combined is a registry option (`AGGREGATIONS`):

- `mean_rank`: their arithmetic mean, each rank scaled to [0, 1];
- `log_rank`: the mean of their logarithms, each rank scaled to (0, 1] (AZ-NAS's non-linear
  ranking aggregation, Lee and Ham, CVPR 2024): an architecture ranked low by any one proxy is
  pulled down more than a mean of ranks would, so the ensemble favours architectures no proxy
  rejects.

`fusion` pretrains on such an ensemble (`pretrain_proxies`, `pretrain_aggregation`); the ask /
tell loop ranks by one before its first label. docs/results.md measures both aggregations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import rankdata

from parzc.registry import Registry

if TYPE_CHECKING:
    from parzc.store.matrix import FeatureMatrix

AGGREGATIONS: Registry[Callable[[np.ndarray], np.ndarray]] = Registry("proxy aggregation")


@AGGREGATIONS.register("mean_rank")
def mean_rank(ranks: np.ndarray) -> np.ndarray:
    """(proxies, n) ranks 1..n (ties averaged) -> each architecture's mean over the proxies of
    its rank scaled to [0, 1]."""
    return ((ranks - 1) / max(ranks.shape[1] - 1, 1)).mean(axis=0)


@AGGREGATIONS.register("log_rank")
def log_rank(ranks: np.ndarray) -> np.ndarray:
    """(proxies, n) ranks 1..n (ties averaged) -> each architecture's mean over the proxies of
    log(rank / n)."""
    return np.log(ranks / ranks.shape[1]).mean(axis=0)


def aggregate_columns(data: FeatureMatrix, proxies: Sequence[str]) -> list[np.ndarray]:
    """The aggregate column of each of `proxies`; raises naming the ones `data` lacks."""
    missing = [name for name in proxies if name not in data.aggregate_names]
    if missing:
        raise ValueError(
            f"proxies {missing} are not aggregate columns of the data "
            f"(available: {data.aggregate_names})"
        )
    return [data.aggregates[:, data.aggregate_names.index(name)] for name in proxies]


def proxy_ranks(data: FeatureMatrix, proxies: Sequence[str]) -> np.ndarray:
    """(len(proxies), n) ranks 1..n of each proxy over `data`, NaN values ranked last."""
    return column_ranks(aggregate_columns(data, proxies))


def column_ranks(columns: Sequence[np.ndarray]) -> np.ndarray:
    """(len(columns), n) ranks 1..n of each column of n values, NaN values ranked last."""
    return np.stack([rankdata(np.where(np.isfinite(c), c, -np.inf)) for c in columns])


def proxy_ensemble(
    data: FeatureMatrix, proxies: Sequence[str], aggregation: str = "mean_rank"
) -> np.ndarray:
    """Each architecture's ensemble score over `proxies` (aggregate columns) combined by
    `aggregation` (an `AGGREGATIONS` name); higher is better."""
    combine = AGGREGATIONS.get(aggregation)
    if not proxies:
        raise ValueError("a proxy ensemble needs at least one proxy")
    return combine(proxy_ranks(data, proxies))


@dataclass(frozen=True)
class PoolRanking:
    """The mean rank of `proxies` with each rank taken among a reference pool's values, so any
    architecture, in the pool or not, gets the score it would have in the pool; z-scored over
    the pool. NaN values rank below the whole pool. `fusion`'s `prior_proxies` blend it in.
    """

    proxies: tuple[str, ...]
    pool_values: tuple[np.ndarray, ...]  # each proxy's finite pool values, sorted
    mean: float
    std: float

    @classmethod
    def fit(cls, pool: FeatureMatrix, proxies: Sequence[str]) -> PoolRanking:
        if not proxies:
            raise ValueError("a pool ranking needs at least one proxy")
        columns = aggregate_columns(pool, proxies)
        values = tuple(np.sort(c[np.isfinite(c)]) for c in columns)
        if any(len(v) == 0 for v in values):
            raise ValueError(f"a pool ranking needs finite pool values of every one of {proxies}")
        raw = _pool_mean_rank(columns, values)
        return cls(tuple(proxies), values, float(raw.mean()), float(raw.std()) or 1.0)

    def scores(self, data: FeatureMatrix) -> np.ndarray:
        """Each architecture of `data`: its mean pool rank, z-scored over the pool."""
        raw = _pool_mean_rank(aggregate_columns(data, self.proxies), self.pool_values)
        return (raw - self.mean) / self.std


def mixed_with_prior(
    score: np.ndarray, scale: tuple[float, float], prior: np.ndarray, weight: float
) -> np.ndarray:
    """(1 - weight) x `score` z-scored with `scale` (the pool's mean and std of the scores) +
    weight x `prior` (a `PoolRanking`'s scores): how `fusion`'s `prior_weight` mixes it in."""
    mean, std = scale
    return (1 - weight) * (score - mean) / std + weight * prior


def _pool_mean_rank(columns: Sequence[np.ndarray], pool_values: Sequence[np.ndarray]) -> np.ndarray:
    """The mean over columns of each value's mid-rank among the sorted pool values, in [0, 1]
    (NaN: 0)."""
    ranks = []
    for column, pool in zip(columns, pool_values, strict=True):
        below = np.searchsorted(pool, column, side="left")
        at_or_below = np.searchsorted(pool, column, side="right")
        rank = (below + at_or_below) / (2 * len(pool))
        ranks.append(np.where(np.isfinite(column), rank, 0.0))
    return np.mean(ranks, axis=0)
