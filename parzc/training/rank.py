"""Rank every candidate: fit a predictor on all labels of a target, score every stored network.

This is what a user of an own space wants after each batch of trainings: which of the candidates
not yet trained look best. Each network is scored once; every candidate takes its network's
score. `ranking_table` combines the seeds' rankings into one list.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from parzc.io import write_parquet
from parzc.predictors import Predictor
from parzc.spaces import get_space
from parzc.store.matrix import FeatureMatrix
from parzc.training.run import make_predictor

log = logging.getLogger(__name__)


def labelled_rows(data: FeatureMatrix) -> FeatureMatrix:
    """The candidates with a label (a finite validation accuracy)."""
    return data.subset(np.flatnonzero(np.isfinite(data.val_acc)))


def fit_labelled(
    data: FeatureMatrix,
    model: str,
    params: dict[str, Any],
    seed: int,
    device: str = "auto",
    pretrained: str = "",
) -> tuple[Predictor, dict[str, Any]]:
    """`model` fitted on every labelled candidate of `data`, the unlabelled networks as its pool."""
    train = labelled_rows(data)
    if len(train) < 2:
        raise ValueError(
            f"{data.space}/{data.target}: {len(train)} labelled candidates; a fit needs 2"
        )
    predictor = make_predictor(model, params, device, lambda: pretrained)
    started = time.perf_counter()
    pool = data.subset(data.arch_ids == data.network_ids).unlabelled()
    report = predictor.fit(train, seed=seed, pool=pool)
    return predictor, {**report, "labels": len(train), "fit_seconds": time.perf_counter() - started}


def score_candidates(predictor: Predictor, data: FeatureMatrix) -> tuple[np.ndarray, np.ndarray]:
    """(score, uncertainty; NaN where the predictor has none) of every row of `data`, each
    network predicted once."""
    networks = data.subset(np.flatnonzero(data.arch_ids == data.network_ids))
    score, uncertainty = predictor.predict(networks)
    if not np.all(np.isfinite(score)):
        raise FloatingPointError(
            f"{int((~np.isfinite(score)).sum())} non-finite scores; nothing written"
        )
    order = np.argsort(networks.arch_ids)
    row = order[np.searchsorted(networks.arch_ids, data.network_ids, sorter=order)]
    spread = np.full(len(networks), np.nan) if uncertainty is None else uncertainty
    return score[row].astype(np.float64), spread[row].astype(np.float64)


def failed_ids(space: str, dataset: str) -> set[int]:
    """arch_ids whose every training failed (a user's labels file): never worth proposing."""
    table = get_space(space).accuracy_table()
    if "n_failed" not in table.columns:
        return set()
    failed = table.filter(
        (pl.col("dataset") == dataset) & pl.col("val_acc").is_null() & (pl.col("n_failed") > 0)
    )
    return set(failed["arch_id"].to_list())


def candidates_frame(data: FeatureMatrix, score: np.ndarray, uncertainty: np.ndarray):
    """arch_id, arch, network_id, score, uncertainty, labelled, failed, val_acc, best first."""
    encodings = get_space(data.space).archs().select("arch_id", "arch")
    failed = failed_ids(data.space, data.target)
    frame = pl.DataFrame(
        {
            "arch_id": data.arch_ids.astype(np.int32),
            "network_id": data.network_ids.astype(np.int32),
            "score": score,
            "uncertainty": uncertainty,
            "labelled": np.isfinite(data.val_acc),
            "failed": np.isin(data.arch_ids, list(failed)),
            "val_acc": data.val_acc,
        }
    )
    return (
        frame.join(encodings, on="arch_id", how="left")
        .select(
            "arch_id",
            "arch",
            "network_id",
            "score",
            "uncertainty",
            "labelled",
            "failed",
            "val_acc",
        )
        .sort(["score", "arch_id"], descending=[True, False])
    )


def rank_candidates(
    data: FeatureMatrix,
    label: str,
    model: str,
    params: dict[str, Any],
    seed: int,
    ranking_path: str | Path,
    model_path: str | Path,
    pretrained: str,
    device: str = "auto",
) -> dict[str, Any]:
    """Fit on every label, score every candidate, save the model and the ranking (atomically)."""
    predictor, report = fit_labelled(data, model, params, seed, device, pretrained)
    score, uncertainty = score_candidates(predictor, data)
    Path(model_path).parent.mkdir(parents=True, exist_ok=True)
    predictor.save(model_path)
    frame = candidates_frame(data, score, uncertainty).with_columns(
        pl.lit(label).alias("predictor"), pl.lit(seed, dtype=pl.Int32).alias("seed")
    )
    write_parquet(
        frame.to_arrow(),
        ranking_path,
        {
            "seed": str(seed),
            "params": json.dumps(params, sort_keys=True),
            "fit": json.dumps(report),
        },
    )
    log.info("%s %s/%s seed %d: %s", label, data.space, data.target, seed, report)
    return report


def ranking_table(
    files: Sequence[str | Path], top: int, feasible_ids: set[int] | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(every candidate, the `top` neither labelled nor failed and among `feasible_ids` when
    given): each predictor's score averaged over its seeds and turned into a rank (1 = best;
    ties broken by arch_id); candidates ordered by their mean rank, predictors' columns by
    name. The full table marks each candidate `feasible` (every one without `feasible_ids`)."""
    frames = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
    if "failed" not in frames.columns:
        frames = frames.with_columns(pl.lit(False).alias("failed"))
    per_predictor = (
        frames.group_by("predictor", "arch_id")
        .agg(
            pl.col("arch").first(),
            pl.col("labelled").first(),
            pl.col("failed").first(),
            pl.col("val_acc").first(),
            pl.col("score").mean(),
        )
        .sort(["predictor", "score", "arch_id"], descending=[False, True, False])
        .with_columns(pl.int_range(1, pl.len() + 1).over("predictor").alias("rank"))
    )
    wide = per_predictor.pivot(
        on="predictor", index="arch_id", values="rank", sort_columns=True
    ).rename(lambda c: c if c == "arch_id" else f"rank_{c}")
    ranks = [c for c in wide.columns if c.startswith("rank_")]
    feasible = (
        pl.lit(True) if feasible_ids is None else pl.col("arch_id").is_in(sorted(feasible_ids))
    )
    table = (
        per_predictor.select("arch_id", "arch", "labelled", "failed", "val_acc")
        .unique("arch_id")
        .with_columns(feasible.alias("feasible"))
        .join(wide, on="arch_id")
        .with_columns(pl.mean_horizontal(ranks).alias("mean_rank"))
        .sort(["mean_rank", "arch_id"])
    )
    open_ = table.filter(~pl.col("labelled") & ~pl.col("failed") & pl.col("feasible")).head(top)
    return table, open_.drop("labelled", "failed", "val_acc", "feasible")
