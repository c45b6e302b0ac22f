"""Ask: propose the next candidates to train, from the store's features and the labels so far.

With fewer than two labels a zero-label scorer ranks the candidates (ZERO_LABEL: the mean rank
of a proxy ensemble, or `fusion`'s model pretrained on the unlabelled pool); from two labels on,
the loop's predictor is fitted on every label and scores every network once. An acquisition
(`parzc.loop.acquisition`) picks among the candidates that are neither labelled, failed nor
pending and within the space's constraints (`parzc.constraints`). Each proposal carries its
score, uncertainty, acquisition value and the nearest labelled candidate with its label, so that
it can be explained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from parzc.constraints import Constraints, feasible
from parzc.loop.acquisition import ACQUISITIONS, Candidates, onehot_distances
from parzc.registry import Registry
from parzc.spaces import get_space
from parzc.store.matrix import FeatureMatrix
from parzc.training.rank import fit_labelled, score_candidates

# zero-label scorers: (unlabelled matrix, settings, device, pretrained folder) -> (score, spread)
ZeroLabel = Callable[[FeatureMatrix, "LoopSettings", str, str], tuple[np.ndarray, np.ndarray]]
ZERO_LABEL: Registry[ZeroLabel] = Registry("zero-label scorer")
DEFAULT_ENSEMBLE = ["net:nwot", "net:jacov", "synflow", "net:params", "net:flops"]


@dataclass(frozen=True)
class LoopSettings:
    """How a round chooses: the predictor (model and params), the acquisition, the scorer
    used before the second label, the seed of fits and scorers, and the bounds a proposal
    must meet."""

    predictor: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    acquisition: str = "diverse"
    acquisition_params: dict[str, Any] = field(default_factory=dict)
    zero_label: str = "ensemble"
    ensemble: tuple[str, ...] = tuple(DEFAULT_ENSEMBLE)
    seed: int = 0
    constraints: Constraints = ()


@ZERO_LABEL.register("ensemble")
def ensemble_scores(data, settings, device, pretrained):
    """The mean rank of the ensemble's proxies (those the store holds)."""
    from parzc.predictors.proxy_ensembles import proxy_ensemble

    proxies = [p for p in settings.ensemble if p in data.aggregate_names]
    if not proxies:
        raise ValueError(
            f"none of the ensemble's proxies {list(settings.ensemble)} are in the store "
            f"(aggregates: {', '.join(data.aggregate_names)})"
        )
    return proxy_ensemble(data, proxies), np.full(len(data), np.nan)


@ZERO_LABEL.register("pretrained")
def pretrained_scores(data, settings, device, pretrained):
    """`fusion` (the loop predictor's params when it is one) pretrained on the pool alone, on
    the ensemble's proxies unless its params name others: the ensemble's ranking as a learned
    function of every branch's view of a candidate."""
    from parzc.training.run import make_predictor

    params = settings.params if settings.model == "fusion" else {}
    proxies = [p for p in settings.ensemble if p in data.aggregate_names]
    params = {"pretrain_proxies": proxies, **params}
    predictor = make_predictor("fusion", params, device, lambda: pretrained)
    networks = data.subset(np.flatnonzero(data.arch_ids == data.network_ids))
    predictor.fit(networks.subset(np.zeros(0, dtype=np.int64)), settings.seed, pool=networks)
    return score_candidates(predictor, data)


def overlay_labels(data: FeatureMatrix, labels: pl.DataFrame) -> FeatureMatrix:
    """`data` with the accuracies of `labels` (aggregated: arch_id, val_acc, test_acc) and NaN
    for every other candidate, whatever ground truth the matrix held."""
    val = np.full(len(data), np.nan)
    test = np.full(len(data), np.nan)
    row = {int(a): i for i, a in enumerate(data.arch_ids)}
    for arch_id, v, t in labels.select("arch_id", "val_acc", "test_acc").iter_rows():
        if v is not None and int(arch_id) in row:
            val[row[int(arch_id)]] = v
            test[row[int(arch_id)]] = t if t is not None else v
    return replace(data, val_acc=val, test_acc=test)


def nearest_labelled(data: FeatureMatrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row: the labelled row nearest in one-hot positions (-1 if none) and the
    distance; ties go to the better label."""
    labelled = np.flatnonzero(np.isfinite(data.val_acc))
    if not len(labelled) or data.onehot is None:
        return np.full(len(rows), -1), np.full(len(rows), np.nan)
    distance = onehot_distances(data.onehot[rows], data.onehot[labelled])
    order = np.lexsort((-data.val_acc[labelled][None, :].repeat(len(rows), 0), distance), axis=1)
    best = order[:, 0]
    return labelled[best], distance[np.arange(len(rows)), best]


def propose(
    data: FeatureMatrix,
    labels: pl.DataFrame,
    excluded: set[int],
    k: int,
    settings: LoopSettings,
    device: str = "auto",
    pretrained: str = "",
) -> pl.DataFrame:
    """Up to `k` proposals among the candidates of `data` whose network is not labelled, failed
    or in `excluded` (arch_ids of failed and pending candidates) and that meet
    `settings.constraints`, best first.

    `labels` is the aggregated labels table (`parzc.labels.aggregate_labels`); the matrix's own
    accuracies are ignored.
    """
    data = overlay_labels(data, labels)
    labelled = np.flatnonzero(np.isfinite(data.val_acc))
    labelled = labelled[np.argsort(-data.val_acc[labelled], kind="stable")]  # best label first
    n_labels = len(labelled)
    if n_labels >= 2:
        predictor, _ = fit_labelled(
            data, settings.model, settings.params, settings.seed, device, pretrained
        )
        score, spread = score_candidates(predictor, data)
        scorer = settings.predictor
    else:
        score, spread = ZERO_LABEL.get(settings.zero_label)(data, settings, device, pretrained)
        scorer = f"zero-label:{settings.zero_label}"
    taken = excluded | {int(a) for a in data.arch_ids[labelled]}
    busy = np.isin(data.network_ids, data.network_ids[np.isin(data.arch_ids, list(taken))])
    open_rows = np.flatnonzero(~busy & feasible(data, settings.constraints))
    onehot = data.onehot if data.onehot is not None else np.zeros((len(data), 0))
    candidates = Candidates(
        score=score[open_rows],
        uncertainty=spread[open_rows],
        onehot=onehot[open_rows],
        networks=data.network_ids[open_rows],
        labelled=onehot[labelled],
    )
    chosen, value = ACQUISITIONS.get(settings.acquisition)(
        candidates, k, **settings.acquisition_params
    )
    rows = open_rows[chosen]
    near, distance = nearest_labelled(data, rows)
    encodings = dict(get_space(data.space).archs().select("arch_id", "arch").iter_rows())
    return pl.DataFrame(
        {
            "arch_id": data.arch_ids[rows].astype(np.int32),
            "arch": [encodings[int(a)] for a in data.arch_ids[rows]],
            "network_id": data.network_ids[rows].astype(np.int32),
            "score": np.asarray(score[rows], dtype=np.float64),
            "uncertainty": np.asarray(spread[rows], dtype=np.float64),
            "scorer": [scorer] * len(rows),
            "acquisition": [settings.acquisition] * len(rows),
            "value": np.asarray(value, dtype=np.float64),
            "nearest_arch": [encodings[int(data.arch_ids[i])] if i >= 0 else None for i in near],
            "nearest_val_acc": [float(data.val_acc[i]) if i >= 0 else None for i in near],
            "nearest_distance": np.asarray(distance, dtype=np.float64),
            "labels_used": np.full(len(rows), n_labels, dtype=np.int32),
        },
        schema_overrides={"nearest_arch": pl.String, "nearest_val_acc": pl.Float64},
    )
