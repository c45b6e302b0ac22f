"""One training experiment: split assembly, fit, held-out predictions, metrics."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import torch

import parzc
from parzc.features import FeatureMatrix
from parzc.io import write_parquet
from parzc.metrics import rank_metrics
from parzc.predictors import create_predictor
from parzc.store import Store

log = logging.getLogger(__name__)


def resolve_size(size: int | float, pool: int) -> int:
    """A split size as a count: integers stay, fractions in (0, 1) are taken of `pool`."""
    n = int(size) if isinstance(size, int) else round(size * pool)
    if n < 2:
        raise ValueError(f"training split {size} of a pool of {pool} gives {n} < 2 archs")
    if n >= pool:
        raise ValueError(
            f"training split of {n} archs leaves none of the pool of {pool} to "
            "evaluate on; use fewer training archs or extract more"
        )
    return n


def make_split(pool: Sequence[int], size: int | float, seed: int) -> pl.DataFrame:
    """arch_id and split ('train'/'test'): `size` archs drawn from `pool` with `seed`."""
    pool = np.asarray(sorted(int(a) for a in pool), dtype=np.int32)
    n = resolve_size(size, len(pool))
    train = np.random.default_rng([seed, n]).choice(len(pool), size=n, replace=False)
    split = np.full(len(pool), "test", dtype=object)
    split[train] = "train"
    return pl.DataFrame({"arch_id": pool, "split": split.astype(str)})


def save_split(split: pl.DataFrame, path: str | Path, **meta: Any) -> None:
    write_parquet(split.to_arrow(), path, {k: str(v) for k, v in meta.items()})


def load_split(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(train arch_ids, test arch_ids) of a saved split."""
    split = pl.read_parquet(path)
    return (
        split.filter(pl.col("split") == "train")["arch_id"].to_numpy(),
        split.filter(pl.col("split") == "test")["arch_id"].to_numpy(),
    )


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
) -> dict[str, Any]:
    """Fit `model` on the split's training archs (val accuracy); predict every held-out arch.

    The one-hot op encoding is always assembled; predictors use it with `use_onehot: true`.
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
    predictor = create_predictor(model, **params)
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
        "device": "cuda" if torch.cuda.is_available() else "cpu",
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


KEYS = ("space", "dataset", "predictor", "model", "loss", "train_size", "seed")


def evaluate_predictions(predictions: str | Path | pl.DataFrame) -> pl.DataFrame:
    """Metrics of one predictions file, over all held-out archs and over the valid ones."""
    frame = predictions if isinstance(predictions, pl.DataFrame) else pl.read_parquet(predictions)
    if frame.is_empty():
        raise ValueError(f"{predictions}: no predictions")
    keys = {k: frame[k][0] for k in KEYS}
    rows = []
    for subset, part in (("all", frame), ("valid", frame.filter(pl.col("valid")))):
        metrics = rank_metrics(part["score"].to_numpy(), part["target"].to_numpy())
        rows.append(
            {
                **keys,
                "subset": subset,
                "n_eval": len(part),
                **metrics,
                "mean_uncertainty": float(np.nanmean(part["uncertainty"].to_numpy()))
                if part["uncertainty"].is_not_nan().any()
                else float("nan"),
            }
        )
    return pl.DataFrame(rows)


def read_metadata(path: str | Path) -> dict[str, str]:
    meta = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items()}
