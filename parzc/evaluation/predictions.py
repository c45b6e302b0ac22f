"""Rank metrics of saved predictions, one row per evaluation protocol (`protocols.py`).

A predictions file holds every cell of the split's networks: `held_out` tells the held-out
cells from the training cells (files written before training cells were kept hold held-out cells
only), and `train_target` the label the predictor was fitted on. The default protocols are
`strict`, each held-out canonical network once (NAS-Bench-Suite-Zero's 9,445 for NB201), and
`strict_cells`, every held-out cell scored with its network's prediction; both compare with test
accuracy.

Each row records its protocol (training label, scored label, evaluation set, selection labels
granted and used) and its ceiling, the Kendall tau of the training label itself with the scored
label over the same rows: what a predictor that reproduced every label exactly would score. On
NB201 CIFAR-10 the single-run validation accuracy reaches only 0.874 against test accuracy over
the 9,445 networks; where a space ships one accuracy for both (NB101, AutoFormer) it is 1.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import spearmanr

from parzc.evaluation.metrics import rank_metrics
from parzc.evaluation.protocols import (
    DEFAULT_PROTOCOLS,
    EVALUATION_SETS,
    NEEDS_TRAINING_CELLS,
    PROTOCOLS,
    Protocol,
    ceiling,
    score_column,
)

log = logging.getLogger(__name__)

KEYS = ("space", "dataset", "proxy_dataset", "predictor", "model", "loss", "train_size", "seed")


def evaluate_predictions(
    predictions: str | Path | pl.DataFrame, protocols: Mapping[str, Protocol] | None = None
) -> pl.DataFrame:
    """Metrics of one predictions file, one row per protocol that applies to it: trained on
    its training label, with its scored label and evaluation rows present (default: the
    built-in `strict` and `strict_cells`)."""
    frame = predictions if isinstance(predictions, pl.DataFrame) else pl.read_parquet(predictions)
    if frame.is_empty():
        raise ValueError(f"{predictions}: no predictions")
    if protocols is None:
        protocols = {name: PROTOCOLS.get(name) for name in DEFAULT_PROTOCOLS}
    frame = _with_protocol_columns(frame)
    train_label = frame["train_label"][0]
    keys = {k: frame[k][0] for k in KEYS}
    rows = []
    for name, protocol in sorted(protocols.items()):  # rows in name order, whatever the config's
        if protocol.train_label != train_label:
            continue
        part = frame.filter(EVALUATION_SETS[protocol.evaluation])
        if protocol.evaluation in NEEDS_TRAINING_CELLS and frame["held_out"].all():
            log.info("%s: no training-cell predictions; protocol %s left out", predictions, name)
            continue
        column = score_column(protocol, train_label)
        part = part.filter(pl.col(column).is_not_nan())
        if len(part) < 2:
            log.info("%s: fewer than 2 %s labels; protocol %s left out", predictions, column, name)
            continue
        metrics = rank_metrics(part["score"].to_numpy(), part[column].to_numpy())
        rows.append(
            {
                **keys,
                "protocol": name,
                **protocol.describe(),
                "train_draw": frame["train_draw"][0],
                "selection_used": 0,
                "n_eval": len(part),
                **metrics,
                **uncertainty_metrics(part, column),
                "ceiling_kendall": ceiling(part, column),
            }
        )
    if not rows:
        raise ValueError(
            f"{predictions}: none of the protocols {sorted(protocols)} applies to predictions "
            f"trained on {train_label!r}"
        )
    return pl.DataFrame(rows)


def _with_protocol_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """Files written before protocols existed: held-out rows only, trained on `val`, networks
    drawn uniformly."""
    if "held_out" not in frame.columns:
        frame = frame.with_columns(pl.lit(True).alias("held_out"))
    if "train_label" not in frame.columns:
        frame = frame.with_columns(pl.lit("val").alias("train_label"))
    if "train_draw" not in frame.columns:
        frame = frame.with_columns(pl.lit("networks").alias("train_draw"))
    if "train_target" not in frame.columns:
        frame = frame.with_columns(pl.col("val_acc").alias("train_target"))
    return frame


def uncertainty_metrics(part: pl.DataFrame, column: str = "target") -> dict[str, float]:
    """The mean uncertainty, and whether it ranks the predictor's own errors: the Spearman
    correlation of the uncertainty with |z(score) - z(column)| (NaN without uncertainties)."""
    uncertainty = part["uncertainty"].to_numpy()
    if not np.isfinite(uncertainty).any():
        return {"mean_uncertainty": float("nan"), "uncertainty_error_spearman": float("nan")}
    score, target = part["score"].to_numpy(), part[column].to_numpy()
    error = np.abs(_standardised(score) - _standardised(target))
    keep = np.isfinite(uncertainty)
    rho = spearmanr(uncertainty[keep], error[keep])[0] if keep.sum() > 2 else float("nan")
    return {
        "mean_uncertainty": float(np.nanmean(uncertainty)),
        "uncertainty_error_spearman": float(rho),
    }


def _standardised(values: np.ndarray) -> np.ndarray:
    std = values.std()
    return (values - values.mean()) / (std if std > 0 else 1.0)
