"""Score predictors: a registry of learned and training-free models (see `base`).

Modules: `mabn` (ParZC's MABN), `mlp`, `trees` (gradient-boosted trees), `training_free` (one
proxy, ParZC-dagger); `torch_base` holds the torch predictors' base class and training loop.
"""

from parzc.predictors import fusion, mabn, mlp, training_free, trees
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
    "create_predictor",
    "fusion",
    "mabn",
    "make_loss",
    "mlp",
    "training_free",
    "trees",
]
