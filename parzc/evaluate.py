"""Rank metrics of saved predictions, over all held-out archs and over the space's valid ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from parzc.metrics import rank_metrics

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
