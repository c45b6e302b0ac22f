"""Evaluation protocols: labels, evaluation sets, ceilings and the comparison table."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.stats import kendalltau

from parzc.config import ConfigError, validate
from parzc.evaluation.predictions import evaluate_predictions
from parzc.evaluation.protocols import (
    PROTOCOLS,
    Protocol,
    label_available,
    resolve_protocols,
    training_labels,
)
from parzc.reports import predictors as report
from parzc.spaces import get_space
from parzc.store.matrix import FeatureMatrix


def nb201_predictions(train_label: str, score: str, train_every: int = 10) -> pl.DataFrame:
    """A predictions file over all 15,625 NB201 cells whose scores are one of the shipped
    CIFAR-10 labels; every `train_every`-th cell's network is a training network."""
    space = get_space("nb201")
    truth = space.accuracy_table().filter(pl.col("dataset") == "cifar10").sort("arch_id")
    extra = space.extra_labels("cifar10").sort("arch_id")
    networks = space.archs().sort("arch_id")["network_id"].to_numpy()
    frame = pl.DataFrame(
        {
            "arch_id": truth["arch_id"],
            "network_id": networks,
            "val_acc": truth["val_acc"],
            "target": truth["test_acc"],
            "val_mean": extra["val_mean"],
        }
    )
    trained = np.unique(networks[::train_every])
    return (
        frame.with_columns(
            space=pl.lit("nb201"),
            dataset=pl.lit("cifar10"),
            proxy_dataset=pl.lit("cifar10"),
            predictor=pl.lit("oracle"),
            model=pl.lit("oracle"),
            loss=pl.lit("-"),
            train_size=pl.lit(len(trained)),
            seed=pl.lit(0),
            uncertainty=pl.lit(float("nan")),
            held_out=~pl.col("network_id").is_in(trained.tolist()),
            train_label=pl.lit(train_label),
            train_target=pl.col("val_mean" if train_label == "val_mean" else "val_acc"),
        )
        .with_columns(score=pl.col(score))
        .drop("val_mean")
    )


def test_seed_mean_label_is_nb201_cifar10s_v11_validation_mean():
    frame = nb201_predictions("val_mean", "train_target")
    assert frame["train_target"].is_finite().all()
    assert label_available("nb201", "cifar10", "val_mean")
    assert not label_available("nb201", "cifar100", "val_mean")
    assert label_available("nb101", "cifar10", "val")
    # over all cells the seed-mean label ranks test accuracy better than one run's label
    all_cells = kendalltau(frame["train_target"], frame["target"]).statistic
    single = kendalltau(frame["val_acc"], frame["target"]).statistic
    assert all_cells == pytest.approx(0.8918, abs=1e-4) and single < all_cells


def test_training_labels_name_what_a_target_lacks():
    matrix = FeatureMatrix(
        space="nb201",
        dataset="cifar10",
        target="cifar100",
        arch_ids=np.array([0, 1], dtype=np.int32),
        network_ids=np.array([0, 1], dtype=np.int32),
        proxies=[],
        layerwise=np.zeros((2, 0, 0), np.float32),
        layerwise_raw=np.zeros((2, 0, 0)),
        aggregate_names=[],
        aggregates=np.zeros((2, 0)),
        onehot=None,
        val_acc=np.array([1.0, 2.0]),
        test_acc=np.array([3.0, 4.0]),
    )
    assert training_labels(matrix, "val").tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match=r"'val_mean' is not available for nb201/cifar100"):
        training_labels(matrix, "val_mean")
    with pytest.raises(ValueError, match="unknown label 'val_med'"):
        training_labels(matrix, "val_med")


def test_a_predictor_reproducing_its_label_scores_the_ceiling():
    """Scores equal to the training label reach exactly the ceiling under every protocol of
    that label; the evaluation sets hold the rows they name."""
    protocols = {name: PROTOCOLS.get(name) for name in PROTOCOLS}
    val = evaluate_predictions(nb201_predictions("val", "val_acc"), protocols)
    assert set(val["protocol"]) == {"strict", "strict_cells", "same_label"}
    for row in val.iter_rows(named=True):
        assert row["kendall"] == pytest.approx(row["ceiling_kendall"], abs=1e-12)
        assert row["selection_used"] == 0
    rows = {row["protocol"]: row for row in val.iter_rows(named=True)}
    assert rows["same_label"]["ceiling_kendall"] == pytest.approx(1.0)
    assert rows["same_label"]["selection_labels"] == 40
    assert rows["strict"]["n_eval"] < rows["strict_cells"]["n_eval"] < rows["same_label"]["n_eval"]
    # every cell but the training networks' own (canonical) cells
    trained = nb201_predictions("val", "val_acc").filter(~pl.col("held_out"))
    twins = trained.filter(pl.col("arch_id") != pl.col("network_id")).height
    assert rows["same_label"]["n_eval"] == rows["strict_cells"]["n_eval"] + twins < 15625
    seed_mean = evaluate_predictions(nb201_predictions("val_mean", "train_target"), protocols)
    (row,) = seed_mean.iter_rows(named=True)
    assert row["protocol"] == "seed_mean_all_cells" and row["n_eval"] == 15625
    assert (
        row["kendall"] == pytest.approx(row["ceiling_kendall"]) == pytest.approx(0.8918, abs=1e-4)
    )


def test_sets_with_training_cells_need_them_in_the_file():
    """Files holding held-out cells only (as written before) leave `all_cells` and
    `unlabelled_cells` out."""
    frame = nb201_predictions("val_mean", "train_target").filter(pl.col("held_out"))
    with pytest.raises(ValueError, match="none of the protocols"):
        evaluate_predictions(frame, {"seed_mean_all_cells": PROTOCOLS.get("seed_mean_all_cells")})
    val = nb201_predictions("val", "val_acc").filter(pl.col("held_out"))
    protocols = {name: PROTOCOLS.get(name) for name in ("same_label", "strict")}
    assert evaluate_predictions(val, protocols)["protocol"].to_list() == ["strict"]


def test_protocols_resolve_from_config_entries():
    resolved = resolve_protocols(
        {
            "same_label": {
                "anchors": [{"name": "FlowerFormer", "dataset": "cifar10", "kendall": {78: 0.79}}]
            },
            "mine": {"train_label": "val", "score_label": "val", "evaluation": "all_cells"},
        }
    )
    assert resolved["same_label"].selection_labels == 40
    (anchor,) = resolved["same_label"].anchors
    assert anchor.at("cifar10", 78) == 0.79 and anchor.at("cifar100", 78) is None
    assert resolved["mine"] == Protocol(score_label="val", evaluation="all_cells")
    with pytest.raises(ValueError, match=r"evaluation/protocols/bad: protocol evaluation 'cells'"):
        resolve_protocols({"bad": {"evaluation": "cells"}})


def test_config_checks_protocols_and_predictor_targets(tmp_path):
    """A protocol nothing trains for is kept (it scores nothing); a bad protocol field and a
    predictor target no space has are errors naming the field."""
    config = {
        "results": str(tmp_path),
        "feature_sets": {"mini": {"layer": ["synflow"]}},
        "spaces": {"nb201": {"datasets": ["cifar10"], "archs": {"count": 20, "seed": 0}}},
        "train": {"predictors": {"gbdt": {"model": "gbdt"}}},
        "evaluation": {"protocols": {"seed_mean_all_cells": {}}},
    }
    assert validate(config)["train"]["predictors"]["gbdt"]["train_label"] == "val"
    bad = {**config, "evaluation": {"protocols": {"mine": {"score_label": "val", "anchors": [{}]}}}}
    with pytest.raises(ConfigError, match="evaluation/protocols/mine"):
        validate(bad)
    config["train"]["predictors"]["gbdt"]["datasets"] = ["cifar100"]
    with pytest.raises(ConfigError, match=r"train/predictors/gbdt/datasets: 'cifar100'"):
        validate(config)


def test_protocol_table_puts_the_best_predictor_next_to_its_anchors():
    metrics = pl.concat(
        [
            evaluate_predictions(
                nb201_predictions("val", score).with_columns(predictor=pl.lit(name)),
                {"same_label": PROTOCOLS.get("same_label")},
            )
            for name, score in (("by_val", "val_acc"), ("by_test", "target"))
        ]
    )
    size = metrics["train_size"][0]
    anchors = [
        {"name": "FGP", "kendall": {str(size): 0.5, "78": 0.9}},
        {"name": "NN-Former", "kendall": {"156": 0.8}},
        {"name": "other", "dataset": "cifar100", "kendall": {str(size): 0.7}},
    ]
    protocols = resolve_protocols({"same_label": {"anchors": anchors}})
    table = report.protocol_table(report.correlation_table(metrics), protocols)
    (row,) = table.iter_rows(named=True)
    assert row["predictor"] == "by_val" and row["kendall"].startswith("1.0 ± 0")
    assert row["published"] == "FGP 0.500" and row["train_size"] == size != 78
    assert row["selection"] == "40 granted, 0 used" and row["pct_of_ceiling"] == 100.0
    assert report.protocol_table(report.correlation_table(metrics))["published"][0] == "–"


def test_cell_draws_favour_networks_with_many_cells():
    """NB201: drawn as cells are, the network that 341 cells reduce to is picked far more often
    than a network of one cell; the uniform draw is the pipeline's split, unchanged."""
    from parzc.training.splits import SPLIT_DRAWS, make_split

    networks = get_space("nb201").archs()["network_id"].to_numpy()
    pool = np.unique(networks)
    weights = SPLIT_DRAWS.get("cells")("nb201", pool)
    assert weights.sum() == 15625 and weights.max() == 341 and len(pool) == 9445
    assert SPLIT_DRAWS.get("networks")("nb201", pool) is None
    heavy = pool[np.argmax(weights)]
    picked = [
        heavy in make_split(pool, 78, seed, weights).filter(pl.col("split") == "train")["arch_id"]
        for seed in range(50)
    ]
    # P(picked) is about 1 - (1 - 341 / 15625) ** 78 = 0.82; uniformly it would be 0.008
    assert 30 <= sum(picked) <= 50
    uniform = make_split(pool, 78, 0)
    assert uniform.equals(make_split(pool, 78, 0, None))
