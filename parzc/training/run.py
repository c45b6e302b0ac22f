"""One training experiment: split assembly, fit, held-out predictions, metrics."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

import parzc
from parzc.device import resolve_device
from parzc.evaluation.protocols import training_labels
from parzc.io import read_metadata, write_parquet
from parzc.layout import Layout
from parzc.predictors import PREDICTORS, Predictor, create_predictor
from parzc.store.matrix import FeatureMatrix
from parzc.training import kept_fits
from parzc.training.splits import load_split

log = logging.getLogger(__name__)


def train_and_predict(
    data: FeatureMatrix,
    label: str,
    model: str,
    params: dict[str, Any],
    split_path: str | Path,
    seed: int,
    predictions_path: str | Path,
    model_path: str | Path,
    device: str = "auto",
    train_label: str = "val",
) -> dict[str, Any]:
    """Fit `model` on the split's training networks (their `train_label` accuracy, `LABELS` of
    `parzc.evaluation.protocols`); predict every network of the split and give each cell of
    `data` whose network is in the split its network's score, flagged `held_out` unless its
    network was trained on (a user's unlabelled candidates are in no split).

    `data` is the assembled matrix of the pool (`Store.assemble(..., every_cell=True)`), with
    its one-hot codes; predictors use them with `use_onehot: true`. `device` (the config's)
    applies to torch predictors whose params do not name one. Predictors that pretrain on the
    unlabelled pool keep their pretrained weights under the results' `models/pretrained`
    (layout kind "pretrained"), shared by every size and target with the same proxies.
    Predictors with blend parameters keep each fit under `models/kept` (`kept_fits`): a fit
    whose settings, data and seed match a kept one only re-blends it, and its report names the
    kept fit (`kept_fit`) and gives that fit's `fit_seconds`.
    Nothing is written unless fit and prediction succeed; both files are written atomically.
    """
    train_ids, test_ids = load_split(split_path)
    draw = read_metadata(split_path).get("draw", "networks")
    labels = training_labels(data, train_label)
    networks = data.subset(data.arch_ids == data.network_ids)
    train = replace(data, val_acc=labels).subset(np.flatnonzero(np.isin(data.arch_ids, train_ids)))
    test = networks.subset(np.isin(networks.arch_ids, test_ids))
    if len(train) != len(train_ids) or len(test) != len(test_ids):
        raise ValueError(
            f"split {split_path} names networks the matrix of {data.space}/{data.target} lacks "
            f"({len(train)}/{len(train_ids)} training, {len(test)}/{len(test_ids)} held out)"
        )
    if not np.all(np.isfinite(train.val_acc)):
        raise ValueError(
            f"{int((~np.isfinite(train.val_acc)).sum())} training networks of {split_path} "
            f"have no {train_label!r} label in {data.space}/{data.target}"
        )
    layout = Layout.of("model", model_path)
    predictor = make_predictor(
        model,
        params,
        device,
        lambda: layout.path("pretrained", space=data.space, dataset=data.dataset),
    )
    pool = networks.unlabelled()
    folder = layout.path("kept_fits", space=data.space, dataset=data.target)
    key = kept_fits.fit_key(predictor, train, pool, seed) if predictor.blend_params else None
    kept = kept_fits.load_kept(folder, key) if key else None
    started = time.perf_counter()
    if kept is None:
        report = predictor.fit(train, seed=seed, pool=pool)
        fit_s = time.perf_counter() - started
    else:  # the same fit with other blend parameters: re-blend it
        fitted, report = kept
        predictor = predictor.adopt(fitted, pool)
        report = {**report, "kept_fit": key, "reblend_seconds": time.perf_counter() - started}
        fit_s = report["fit_seconds"]
    started = time.perf_counter()
    # held-out networks first, as a split's predictions always were (MC draws follow the rows)
    scored = [predictor.predict(test), predictor.predict(train)]
    predict_s = time.perf_counter() - started
    ids = np.concatenate([test.arch_ids, train.arch_ids])
    score = np.concatenate([s for s, _ in scored])
    uncertainty = None if scored[0][1] is None else np.concatenate([u for _, u in scored])
    # every cell of the split's networks takes its network's prediction
    in_split = np.isin(data.network_ids, ids)
    cells = data.subset(np.flatnonzero(in_split))
    order = np.argsort(ids)
    row = order[np.searchsorted(ids, cells.network_ids, sorter=order)]
    score = score[row]
    uncertainty = None if uncertainty is None else uncertainty[row]
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
    if key and kept is None:
        kept_fits.keep(folder, key, model_path, report)
    table = predictions_table(
        cells, label, model, params, len(train_ids), seed, score, uncertainty
    ).with_columns(
        held_out=~pl.Series(np.isin(cells.network_ids, train_ids)),
        train_label=pl.lit(train_label),
        train_draw=pl.lit(draw),
        train_target=pl.Series(labels[in_split], dtype=pl.Float64),
    )
    write_parquet(
        table.to_arrow(),
        predictions_path,
        {
            "parzc_version": parzc.__version__,
            "torch_version": torch.__version__,
            "seed": str(seed),
            "params": json.dumps(params, sort_keys=True),
            "train_label": train_label,
            "train_draw": draw,
            "features": ",".join(data.proxies),
            "fit_report": json.dumps(report),
        },
    )
    log.info(
        "%s %s/%s n=%d seed=%d: %s", label, data.space, data.target, len(train_ids), seed, report
    )
    return report


def make_predictor(
    model: str, params: dict[str, Any], device: str, pretrained: Callable[[], str]
) -> Predictor:
    """The predictor `model` with `params`; the config's `device` and the results' folder of
    pretrained weights (`pretrained()`) apply where the predictor takes them and `params` does
    not say."""
    accepted = {field.name for field in dataclasses.fields(PREDICTORS.get(model))}
    defaults = {"device": device} if "device" in accepted else {}
    if "pretrain_cache" in accepted:
        defaults["pretrain_cache"] = pretrained()
    return create_predictor(model, **{**defaults, **params})


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
            "dataset": [test.target] * n,
            "proxy_dataset": [test.dataset] * n,
            "predictor": [label] * n,
            "model": [model] * n,
            "loss": [str(params.get("loss", "-"))] * n,
            "train_size": np.full(n, train_size, dtype=np.int32),
            "seed": np.full(n, seed, np.int32),
            "arch_id": test.arch_ids.astype(np.int32),
            "network_id": test.network_ids.astype(np.int32),
            "score": score.astype(np.float64),
            "uncertainty": (
                np.full(n, np.nan) if uncertainty is None else uncertainty.astype(np.float64)
            ),
            "target": test.test_acc,
            "val_acc": test.val_acc,
        }
    )
