"""Training-free scores read straight off the store: one aggregate proxy, and ParZC-dagger,
the ParZC paper's own training-free method (sine-weighted sum of a per-layer proxy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from parzc.predictors.base import PREDICTORS, Predictor
from parzc.store.matrix import FeatureMatrix


class _TrainingFree(Predictor):
    """A score computed directly from the features: fit only checks the inputs."""

    def fit(
        self, train: FeatureMatrix, seed: int, pool: FeatureMatrix | None = None
    ) -> dict[str, Any]:
        self._check(train)
        return {"epochs": 0, "final_loss": None, "seconds": 0.0, "n_train": len(train)}

    def _check(self, data: FeatureMatrix) -> None:
        """Raise ValueError when `data` lacks what the score needs."""

    def _get_state(self) -> dict[str, Any]:
        return {}

    def _set_state(self, state: dict[str, Any]) -> None:
        pass


@PREDICTORS.register("single_proxy")
@dataclass(kw_only=True, eq=False)
class SingleProxyPredictor(_TrainingFree):
    """Score = one aggregate column, e.g. "synflow" or "net:nwot"; failed archs rank last."""

    name: ClassVar[str] = "single_proxy"

    proxy: str

    def _check(self, data: FeatureMatrix) -> None:
        if self.proxy not in data.aggregate_names:
            raise ValueError(
                f"single_proxy: unknown aggregate column {self.proxy!r}; "
                f"available: {', '.join(data.aggregate_names)}"
            )

    def predict(self, data: FeatureMatrix) -> tuple[np.ndarray, np.ndarray | None]:
        self._check(data)
        col = data.aggregate_names.index(self.proxy)
        return rank_failures_last(data.aggregates[:, col]), None


def rank_failures_last(values: np.ndarray) -> np.ndarray:
    """Copy of `values` with NaN (a proxy that failed for that arch) below every finite score."""
    out = np.asarray(values, dtype=np.float64).copy()
    failed = ~np.isfinite(out)
    if failed.any():
        finite = out[~failed]
        out[failed] = (finite.min() - 1.0) if finite.size else 0.0
    return out


def dagger_weights(n_layers: int) -> np.ndarray:
    """ParZC-dagger layer weights w_i = (sin(0.1 i) + 1) / 2 for layer index i = 0 .. n-1."""
    return (np.sin(0.1 * np.arange(n_layers)) + 1.0) / 2.0


@PREDICTORS.register("parzc_dagger")
@dataclass(kw_only=True, eq=False)
class ParZCDaggerPredictor(_TrainingFree):
    """Training-free ParZC-dagger: score = sum_i w_i * x_i over the raw per-layer values x_i of
    `proxy` (default: the first proxy), with `dagger_weights`; padded layers contribute 0.

    Needs `data.layerwise_raw`: float64 (n, n_proxies, max_layers), unscaled, NaN -> 0.
    """

    name: ClassVar[str] = "parzc_dagger"

    proxy: str | None = None

    def _check(self, data: FeatureMatrix) -> None:
        if getattr(data, "layerwise_raw", None) is None:
            raise ValueError("parzc_dagger needs FeatureMatrix.layerwise_raw (unscaled per-layer)")
        if self.proxy is not None and self.proxy not in data.proxies:
            raise ValueError(
                f"parzc_dagger: unknown proxy {self.proxy!r}; available: {', '.join(data.proxies)}"
            )

    def predict(self, data: FeatureMatrix) -> tuple[np.ndarray, np.ndarray | None]:
        self._check(data)
        p = 0 if self.proxy is None else data.proxies.index(self.proxy)
        raw = np.asarray(data.layerwise_raw[:, p, :], dtype=np.float64)
        return raw @ dagger_weights(raw.shape[1]), None
