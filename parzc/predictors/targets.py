"""Transforms of the training accuracies a predictor regresses on (`TARGETS`, by name).

`accuracy` keeps them; `rank` keeps their order only, so the few broken architectures of a
space (NB201: ~10 % accuracy) weigh no more than any other; `zscore` standardises them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata

from parzc.registry import Registry

TARGETS: Registry[Callable[[np.ndarray], np.ndarray]] = Registry("target transform")

TARGETS.register("accuracy")(lambda acc: np.asarray(acc, dtype=np.float64))


@TARGETS.register("zscore")
def zscore_target(acc: np.ndarray) -> np.ndarray:
    """(acc - mean) / std: DiffKendall's scale is then dominated by the few broken cells."""
    std = acc.std()
    return (acc - acc.mean()) / (std if std > 0 else 1.0)


@TARGETS.register("rank")
def rank_target(acc: np.ndarray) -> np.ndarray:
    """Ranks scaled to [0, 1] (ties averaged): every pair weighs by its rank gap only."""
    return (rankdata(acc) - 1) / max(len(acc) - 1, 1)
