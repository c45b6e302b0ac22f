"""The predictor contract, the predictor registry and persistence.

A predictor is a keyword-only dataclass: its init fields are its parameters (`params`), and
`create_predictor(name, **params)` builds one by registered name. `fit` trains on
`train.val_acc`; `predict` returns (score, uncertainty or None), higher score = better.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from parzc.io import write_atomic
from parzc.registry import Registry
from parzc.store.matrix import FeatureMatrix

PREDICTORS: Registry[type[Predictor]] = Registry("predictor")

_FORMAT_VERSION = 2  # 2: torch predictors save input_dim, scaling and its statistics


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


class NotFittedError(RuntimeError):
    """`predict` or `save` called on a predictor that needs `fit` first."""


class Predictor(ABC):
    """A model that scores architectures from a FeatureMatrix; subclasses are dataclasses."""

    name: ClassVar[str]
    # parameters that only blend a fit's parts: a fit takes new values of them without fitting
    # again (`adopt`), and the pipeline keeps such predictors' fits to re-blend them
    blend_params: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def fit(
        self, train: FeatureMatrix, seed: int, pool: FeatureMatrix | None = None
    ) -> dict[str, Any]:
        """Train on `train.val_acc`; returns a report (epochs, final loss, seconds, ...).

        `pool` is every architecture the predictor will be asked about, without labels
        (`FeatureMatrix.unlabelled`); predictors that learn from unlabelled features use it.
        """

    @abstractmethod
    def predict(self, data: FeatureMatrix) -> tuple[np.ndarray, np.ndarray | None]:
        """(score, uncertainty or None), float64 arrays of length len(data)."""

    @abstractmethod
    def _get_state(self) -> dict[str, Any]:
        """The fitted state, picklable and on CPU."""

    @abstractmethod
    def _set_state(self, state: dict[str, Any]) -> None:
        """Restore what `_get_state` returned."""

    @property
    def params(self) -> dict[str, Any]:
        """The constructor parameters."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}

    def fit_settings(self, labels: int) -> dict[str, Any]:
        """What a fit on `labels` training labels depends on besides its data and seed: the
        params less `blend_params`. Two fits with equal settings differ only in their blend."""
        return {k: v for k, v in self.params.items() if k not in self.blend_params}

    def adopt(self, fitted: Predictor, pool: FeatureMatrix) -> Predictor:
        """`fitted`, a fit with this predictor's `fit_settings`, with this predictor's blend
        parameters, without fitting again; `pool` is the fit's pool."""
        raise NotImplementedError(f"{self.name} has no blend parameters to adopt a fit with")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Pickle name, params and fitted state to `path` atomically (tmp file + os.replace)."""
        payload = {
            "format": _FORMAT_VERSION,
            "name": self.name,
            "params": self.params,
            "state": self._get_state(),
        }
        write_atomic(
            path, lambda tmp: tmp.write_bytes(pickle.dumps(payload, pickle.HIGHEST_PROTOCOL))
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Predictor:
        """A predictor saved by `save`; `Predictor.load` accepts any registered kind."""
        with open(path, "rb") as fh:
            payload = pickle.load(fh)
        if payload.get("format") != _FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported predictor file format {payload.get('format')}")
        klass = PREDICTORS.get(payload["name"])
        if not issubclass(klass, cls):
            raise ValueError(f"{path} holds a {payload['name']!r} predictor, not {cls.__name__}")
        predictor = klass(**payload["params"])
        predictor._set_state(payload["state"])
        return predictor


def create_predictor(name: str, **params: Any) -> Predictor:
    """The registered predictor `name` with `params`; unknown names/params are errors."""
    klass = PREDICTORS.get(name)
    accepted = [f.name for f in dataclasses.fields(klass) if f.init]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise TypeError(
            f"unknown parameter(s) {', '.join(unknown)} for predictor {name!r}; "
            f"accepted: {', '.join(accepted)}"
        )
    return klass(**params)


def check_same_columns(kind: str, trained: list[str], given: list[str]) -> None:
    """Raise ValueError when prediction data has other feature columns than the training data."""
    if list(trained) != list(given):
        raise ValueError(f"{kind} differ from training: trained on {trained}, got {given}")
