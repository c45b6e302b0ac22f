"""Rank metrics of saved predictions, over the held-out networks and over every held-out cell.

`networks`: each held-out canonical network once (NAS-Bench-Suite-Zero's 9,445 for NB201).
`cells`: every arch of the space whose network is held out, scored with its network's prediction
(all 15,625 NB201 cells but the training networks' twins: the protocol PINAT and TNASP publish).

Next to each predictor's metrics, `val_acc_kendall` is the Kendall tau of the held-out
architectures' own validation accuracies (the kind of label a predictor learns from) with the
target: what a predictor that reproduced every label exactly would score. Where the two
accuracies come from different training runs (NB201 CIFAR-10: 0.874 over the 9,445 networks) it
shows how much of the target no label can predict; where a space ships one accuracy for both
(NB101, AutoFormer) it is 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import kendalltau, spearmanr

from parzc.evaluation.metrics import rank_metrics

KEYS = ("space", "dataset", "proxy_dataset", "predictor", "model", "loss", "train_size", "seed")
SUBSETS = {
    "networks": pl.col("arch_id") == pl.col("network_id"),
    "cells": pl.lit(True),
}


def evaluate_predictions(predictions: str | Path | pl.DataFrame) -> pl.DataFrame:
    """Metrics of one predictions file, one row per subset (SUBSETS)."""
    frame = predictions if isinstance(predictions, pl.DataFrame) else pl.read_parquet(predictions)
    if frame.is_empty():
        raise ValueError(f"{predictions}: no predictions")
    keys = {k: frame[k][0] for k in KEYS}
    rows = []
    for subset, keep in SUBSETS.items():
        part = frame.filter(keep)
        metrics = rank_metrics(part["score"].to_numpy(), part["target"].to_numpy())
        rows.append(
            {
                **keys,
                "subset": subset,
                "n_eval": len(part),
                **metrics,
                **uncertainty_metrics(part),
                "val_acc_kendall": label_agreement(part),
            }
        )
    return pl.DataFrame(rows)


def label_agreement(part: pl.DataFrame) -> float:
    """Kendall tau of val_acc with the target over the rows where both are finite (NaN when
    predictions carry no val_acc or fewer than two such rows)."""
    if "val_acc" not in part.columns:
        return float("nan")
    val, target = part["val_acc"].to_numpy(), part["target"].to_numpy()
    keep = np.isfinite(val) & np.isfinite(target)
    return float(kendalltau(val[keep], target[keep]).statistic) if keep.sum() > 1 else float("nan")


def uncertainty_metrics(part: pl.DataFrame) -> dict[str, float]:
    """The mean uncertainty, and whether it ranks the predictor's own errors: the Spearman
    correlation of the uncertainty with |z(score) - z(target)| (NaN without uncertainties)."""
    uncertainty = part["uncertainty"].to_numpy()
    if not np.isfinite(uncertainty).any():
        return {"mean_uncertainty": float("nan"), "uncertainty_error_spearman": float("nan")}
    score, target = part["score"].to_numpy(), part["target"].to_numpy()
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
