"""Baseline predictors: a plain MLP, a gradient-boosted tree model, and training-free scores."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingRegressor
from torch import Tensor, nn

from parzc.features import FeatureMatrix
from parzc.predictors.base import PREDICTORS, NotFittedError, Predictor, check_same_columns
from parzc.predictors.train import TorchPredictor


class MLP(nn.Module):
    """(Linear -> GELU) x depth -> Linear on the flattened features [concatenated with onehot]."""

    def __init__(self, input_dim: int, onehot_dim: int = 0, hidden_dim: int = 256, depth: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        width = input_dim + onehot_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden_dim), nn.GELU()]
            width = hidden_dim
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, onehot: Tensor | None = None) -> Tensor:
        if onehot is not None:
            x = torch.cat([x, onehot], dim=1)
        return self.net(x).squeeze(-1)


@PREDICTORS.register("mlp")
@dataclass(kw_only=True, eq=False)
class MLPPredictor(TorchPredictor):
    """Plain MLP with the MABN inputs and training loop; no uncertainty."""

    name: ClassVar[str] = "mlp"

    hidden_dim: int = 256
    depth: int = 3

    def build_model(self, input_dim: int, onehot_dim: int) -> nn.Module:
        return MLP(input_dim, onehot_dim, hidden_dim=self.hidden_dim, depth=self.depth)


@PREDICTORS.register("gbdt")
@dataclass(kw_only=True, eq=False)
class GBDTPredictor(Predictor):
    """HistGradientBoostingRegressor on the aggregates [+ onehot] (Suite-Zero style baseline).

    NaN aggregates (failed proxies) are handled natively by the trees. `min_samples_leaf` is 5,
    not sklearn's 20: with 78 training archs 20 leaves the trees a handful of splits (one-hot-only
    Kendall 0.11 instead of the 0.39 LightGBM reaches; benchmarks/predictor_ablation.py).
    """

    name: ClassVar[str] = "gbdt"

    max_iter: int = 300
    learning_rate: float = 0.05
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 5
    l2_regularization: float = 0.0
    use_onehot: bool = False

    _model: HistGradientBoostingRegressor | None = field(default=None, init=False, repr=False)
    _columns: list[str] = field(default_factory=list, init=False, repr=False)

    def _features(self, data: FeatureMatrix) -> np.ndarray:
        x = np.asarray(data.aggregates, dtype=np.float64)
        if self.use_onehot:
            if data.onehot is None:
                raise ValueError("gbdt: use_onehot=True but the FeatureMatrix has no onehot")
            x = np.concatenate([x, np.asarray(data.onehot, dtype=np.float64)], axis=1)
        return x

    def fit(self, train: FeatureMatrix, seed: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        model = HistGradientBoostingRegressor(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=False,
            random_state=seed,
        )
        x, y = self._features(train), np.asarray(train.val_acc, dtype=np.float64)
        model.fit(x, y)
        self._model, self._columns = model, list(train.aggregate_names)
        return {
            "epochs": int(model.n_iter_),
            "final_loss": float(np.mean((model.predict(x) - y) ** 2)),  # training MSE
            "seconds": time.perf_counter() - t0,
            "n_train": len(train),
            "seed": seed,
        }

    def predict(self, data: FeatureMatrix) -> tuple[np.ndarray, np.ndarray | None]:
        if self._model is None:
            raise NotFittedError("gbdt: call fit() or load() before predict()")
        check_same_columns("aggregate columns", self._columns, data.aggregate_names)
        return self._model.predict(self._features(data)).astype(np.float64), None

    def _get_state(self) -> dict[str, Any]:
        if self._model is None:
            raise NotFittedError("gbdt: nothing to save before fit()")
        return {"model": self._model, "columns": self._columns}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._model, self._columns = state["model"], list(state["columns"])


class _TrainingFree(Predictor):
    """A score computed directly from the features: fit only checks the inputs."""

    def fit(self, train: FeatureMatrix, seed: int) -> dict[str, Any]:
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
