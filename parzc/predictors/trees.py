"""Gradient-boosted trees on the aggregate proxies, the one-hot ops and/or the cell graphs' path
features: the tree baselines."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from parzc.predictors.base import PREDICTORS, NotFittedError, Predictor, check_same_columns
from parzc.predictors.targets import TARGETS
from parzc.spaces.graph_paths import path_features
from parzc.store.matrix import FeatureMatrix


@PREDICTORS.register("gbdt")
@dataclass(kw_only=True, eq=False)
class GBDTPredictor(Predictor):
    """HistGradientBoostingRegressor on the aggregates [+ onehot] (Suite-Zero style baseline)
    [+ the cell graphs' path features].

    `use_proxies: false` with `use_onehot: true` fits the one-hot encoding alone, the baseline
    that tells what the proxies add to the encoding; at least one kind of feature must be on.
    `use_graph_features: true` adds GRAF's path features of each cell graph
    (`parzc.spaces.graph_paths`, sets of up to `graph_max_set` operations): operation counts
    and, per set of operations, how many input-to-output paths use only them and how long.

    `target` (a `TARGETS` name) transforms the training accuracies: `rank` regresses their
    order, so a few broken networks do not dominate the squared error (NB201 CIFAR-10, 78
    labels: Kendall 0.736 against 0.675; docs/results.md).

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
    use_proxies: bool = True
    use_graph_features: bool = False
    graph_max_set: int = 3
    target: str = "accuracy"

    _model: HistGradientBoostingRegressor | None = field(default=None, init=False, repr=False)
    _columns: list[str] = field(default_factory=list, init=False, repr=False)
    # feature columns NaN for every training arch (sklearn's binning fails on them): zeroed
    _empty: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=bool), init=False, repr=False
    )

    def __post_init__(self) -> None:
        if not (self.use_proxies or self.use_onehot or self.use_graph_features):
            raise ValueError(
                "gbdt: use_proxies=False, use_onehot=False and use_graph_features=False leave "
                "no features; turn on at least one of them"
            )
        if self.graph_max_set < 1:
            raise ValueError(f"gbdt: graph_max_set must be >= 1, got {self.graph_max_set}")
        TARGETS.get(self.target)

    def _raw_features(self, data: FeatureMatrix) -> np.ndarray:
        """The enabled feature blocks side by side, NaN kept."""
        parts = [np.asarray(data.aggregates, dtype=np.float64)] if self.use_proxies else []
        if self.use_onehot:
            if data.onehot is None:
                raise ValueError("gbdt: use_onehot=True but the FeatureMatrix has no onehot")
            parts.append(np.asarray(data.onehot, dtype=np.float64))
        if self.use_graph_features:
            if data.graph_ops is None or data.graph_adjacency is None:
                raise ValueError(
                    f"gbdt: use_graph_features=True but space {data.space!r} has no cell graphs"
                )
            parts.append(
                path_features(
                    data.graph_ops, data.graph_adjacency, data.graph_vocabulary, self.graph_max_set
                )
            )
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def _features(self, data: FeatureMatrix) -> np.ndarray:
        """`_raw_features` with the columns empty in training zeroed."""
        return self._masked(self._raw_features(data))

    def _masked(self, x: np.ndarray) -> np.ndarray:
        if self._empty.any():  # a proxy that failed on every training arch carries nothing
            x = x.copy()
            x[:, self._empty] = 0.0
        return x

    def fit(
        self, train: FeatureMatrix, seed: int, pool: FeatureMatrix | None = None
    ) -> dict[str, Any]:
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
        raw = self._raw_features(train)  # built once: the path features are not free
        self._empty = np.isnan(raw).all(axis=0)
        acc = np.asarray(train.val_acc, dtype=np.float64)
        x, y = self._masked(raw), TARGETS.get(self.target)(acc)
        model.fit(x, y)
        # the aggregate columns it was fitted on (none when it ignores the proxies)
        self._model = model
        self._columns = list(train.aggregate_names) if self.use_proxies else []
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
        if self.use_proxies:
            check_same_columns("aggregate columns", self._columns, data.aggregate_names)
        return self._model.predict(self._features(data)).astype(np.float64), None

    def _get_state(self) -> dict[str, Any]:
        if self._model is None:
            raise NotFittedError("gbdt: nothing to save before fit()")
        return {"model": self._model, "columns": self._columns, "empty": self._empty}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._model, self._columns = state["model"], list(state["columns"])
        self._empty = state.get("empty", np.zeros(0, dtype=bool))
