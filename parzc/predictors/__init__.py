"""Score predictors: a registry of learned and training-free models (see `base`)."""

from parzc.predictors import baselines, mabn
from parzc.predictors.base import (
    PREDICTORS,
    NotFittedError,
    Predictor,
    TrainingDiverged,
    create_predictor,
)
from parzc.predictors.losses import LOSSES, make_loss

__all__ = [
    "LOSSES",
    "PREDICTORS",
    "NotFittedError",
    "Predictor",
    "TrainingDiverged",
    "baselines",
    "create_predictor",
    "mabn",
    "make_loss",
]
