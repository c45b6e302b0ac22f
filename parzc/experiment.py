"""One training experiment: split assembly, fit, held-out predictions, metrics."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

import parzc
from parzc.device import resolve_device
from parzc.features import FeatureMatrix
from parzc.io import write_parquet
from parzc.predictors import PREDICTORS, create_predictor
from parzc.splits import load_split
from parzc.store import Store

log = logging.getLogger(__name__)


def train_and_predict(
    store: Store,
    space: str,
    dataset: str,
    label: str,
    model: str,
    params: dict[str, Any],
    features: Sequence[str],
    split_path: str | Path,
    seed: int,
    predictions_path: str | Path,
    model_path: str | Path,
    device: str = "auto",
) -> dict[str, Any]:
    """Fit `model` on the split's training archs (val accuracy); predict every held-out arch.

    The one-hot op encoding is always assembled; predictors use it with `use_onehot: true`.
    `device` (the config's) applies to torch predictors whose params do not name one.
    Nothing is written unless fit and prediction succeed; both files are written atomically.
    """
    train_ids, test_ids = load_split(split_path)
    data = store.assemble(
        space, dataset, features, np.concatenate([train_ids, test_ids]), onehot=True
    )
    train, test = (
        data.subset(np.arange(len(train_ids))),
        data.subset(np.arange(len(train_ids), len(data))),
    )
    accepted = {field.name for field in dataclasses.fields(PREDICTORS.get(model))}
    defaults = {"device": device} if "device" in accepted else {}
    predictor = create_predictor(model, **{**defaults, **params})
    started = time.perf_counter()
    report = predictor.fit(train, seed=seed)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    score, uncertainty = predictor.predict(test)
    predict_s = time.perf_counter() - started
    if not np.all(np.isfinite(score)):
        raise FloatingPointError(
            f"{label} predicted {int((~np.isfinite(score)).sum())} "
            "non-finite scores; no result written"
        )
    report = {
        **report,
        "fit_seconds": fit_s,
        "predict_seconds": predict_s,
        "device": str(resolve_device(predictor.params.get("device", "cpu"))),
    }
    Path(model_path).parent.mkdir(parents=True, exist_ok=True)
    predictor.save(model_path)
    table = predictions_table(test, label, model, params, len(train_ids), seed, score, uncertainty)
    write_parquet(
        table.to_arrow(),
        predictions_path,
        {
            "parzc_version": parzc.__version__,
            "torch_version": torch.__version__,
            "seed": str(seed),
            "params": json.dumps(params, sort_keys=True),
            "features": ",".join(features),
            "fit_report": json.dumps(report),
        },
    )
    log.info("%s %s/%s n=%d seed=%d: %s", label, space, dataset, len(train_ids), seed, report)
    return report


def predictions_table(
    test: FeatureMatrix,
    label: str,
    model: str,
    params: dict[str, Any],
    train_size: int,
    seed: int,
    score: np.ndarray,
    uncertainty: np.ndarray | None,
) -> pl.DataFrame:
    n = len(test)
    return pl.DataFrame(
        {
            "space": [test.space] * n,
            "dataset": [test.dataset] * n,
            "predictor": [label] * n,
            "model": [model] * n,
            "loss": [str(params.get("loss", "-"))] * n,
            "train_size": np.full(n, train_size, dtype=np.int32),
            "seed": np.full(n, seed, np.int32),
            "arch_id": test.arch_ids.astype(np.int32),
            "score": score.astype(np.float64),
            "uncertainty": (
                np.full(n, np.nan) if uncertainty is None else uncertainty.astype(np.float64)
            ),
            "target": test.test_acc,
            "val_acc": test.val_acc,
            "valid": test.valid.astype(bool),
        }
    )
