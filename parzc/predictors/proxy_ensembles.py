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


def proxy_ranks(data: FeatureMatrix, proxies: Sequence[str]) -> np.ndarray:
    """(len(proxies), n) ranks 1..n of each proxy over `data`, NaN values ranked last."""
    missing = [name for name in proxies if name not in data.aggregate_names]
    if missing:
        raise ValueError(
            f"proxies {missing} are not aggregate columns of the data "
            f"(available: {data.aggregate_names})"
        )
    return column_ranks([data.aggregates[:, data.aggregate_names.index(name)] for name in proxies])


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
