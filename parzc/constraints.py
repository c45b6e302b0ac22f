"""Limits a candidate must meet to be trained: a deployment budget on the store's columns.

`spaces.<space>.constraints` maps aggregate columns of the store (per-layer proxies summed, by
name; network-level ones as `net:<name>`, e.g. `net:params`, `net:flops`) to inclusive bounds
`{min: x, max: y}` (either or both). The ask / tell loop proposes only candidates within every
bound, the ranking table lists only those as the next to train, and the loop's pick after each
round is the best told candidate within them. A candidate whose column is NaN (its proxy
failed) is outside: its size is unknown. Labels of candidates outside still train the
predictors, since they say how the space behaves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from parzc.store.matrix import FeatureMatrix


@dataclass(frozen=True)
class Bound:
    """`low` <= column <= `high`; None leaves that side open."""

    column: str
    low: float | None = None
    high: float | None = None

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{self.low:g} <= {self.column} <= {self.high:g}"
        if self.high is not None:
            return f"{self.column} <= {self.high:g}"
        return f"{self.column} >= {self.low:g}"


Constraints = tuple[Bound, ...]


def parse_constraints(spec: Mapping[str, Mapping[str, float]] | None) -> Constraints:
    """The bounds of a config's `constraints` mapping ({column: {min, max}}), in its order;
    raises ValueError naming a column whose entry has no bound or a min above its max."""
    bounds = []
    for column, entry in (spec or {}).items():
        low, high = entry.get("min"), entry.get("max")
        if low is None and high is None:
            raise ValueError(f"{column}: give a min, a max or both")
        if low is not None and high is not None and low > high:
            raise ValueError(f"{column}: min {low:g} is above max {high:g}")
        bounds.append(Bound(column, low, high))
    return tuple(bounds)


def feasible(data: FeatureMatrix, constraints: Constraints) -> np.ndarray:
    """Per row of `data`: whether every bound holds (False where a column is NaN)."""
    from parzc.predictors.proxy_ensembles import aggregate_columns  # torch: not for the DAG

    inside = np.ones(len(data), dtype=bool)
    if not constraints:
        return inside
    columns = aggregate_columns(data, [bound.column for bound in constraints])
    for bound, values in zip(constraints, columns, strict=True):
        with np.errstate(invalid="ignore"):
            inside &= np.isfinite(values)
            if bound.low is not None:
                inside &= values >= bound.low
            if bound.high is not None:
                inside &= values <= bound.high
    return inside


def feasible_ids(data: FeatureMatrix, constraints: Constraints) -> set[int] | None:
    """The arch_ids of `data` within `constraints`; None without constraints (every one)."""
    if not constraints:
        return None
    return {int(a) for a in data.arch_ids[feasible(data, constraints)]}


def describe(constraints: Constraints) -> str:
    """The bounds as one line, e.g. `net:params <= 20000, net:flops <= 1e+06`."""
    return ", ".join(str(bound) for bound in constraints)
