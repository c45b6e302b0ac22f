"""The loss-ablation table compares only predictor labels that differ by their loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from parzc.config import load
from parzc.reports import predictors as report
from parzc.reports.predictors import SUMMARY_METRICS

REPO = Path(__file__).resolve().parents[1]
SEEDS = (0, 1)


def entry(params: dict[str, Any], model: str = "mabn", ablation: bool = False) -> dict[str, Any]:
    return {"model": model, "params": params, "loss_ablation": ablation}


def metrics_frame(
    predictors: dict[str, dict[str, Any]],
    space: str = "nb201",
    dataset: str = "cifar10",
    train_size: int = 50,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> pl.DataFrame:
    """Metrics rows as parzc.evaluation.predictions writes them (KEYS, protocol, n_eval, rank
    metrics), one run per (label, seed) and both default protocols; each label's Kendall values
    are its own (label order)."""
    rows = []
    for i, (label, spec) in enumerate(predictors.items()):
        params = {**spec.get("params", {}), **(overrides or {}).get(label, {})}
        for seed in SEEDS:
            for protocol, shift in (("strict_cells", 0.0), ("strict", 0.005)):
                kendall = 0.1 + 0.05 * i + 0.01 * seed + shift
                rows.append(
                    {
                        "space": space,
                        "dataset": dataset,
                        "proxy_dataset": "cifar10",
                        "predictor": label,
                        "model": spec["model"],
                        "loss": str(params.get("loss", "-")),  # as parzc.training.run stores it
                        "train_size": train_size,
                        "seed": seed,
                        "protocol": protocol,
                        "n_eval": 110 if protocol == "strict_cells" else 100,
                        **{m: kendall + 0.001 * j for j, m in enumerate(SUMMARY_METRICS)},
                        "kendall": kendall,
                        "spearman": kendall + 0.2,
                        "mean_uncertainty": float("nan"),
                    }
                )
    return pl.DataFrame(rows)


def loss_rows(table: pl.DataFrame, space: str = "nb201", protocol: str = "strict") -> dict:
    part = table.filter((pl.col("space") == space) & (pl.col("protocol") == protocol))
    return {row["loss"]: row for row in part.iter_rows(named=True)}


def label_stats(metrics: pl.DataFrame, label: str, protocol: str = "strict") -> tuple[float, float]:
    part = metrics.filter((pl.col("predictor") == label) & (pl.col("protocol") == protocol))
    return part["kendall"].mean(), part["spearman"].mean()


def grouped_by_loss(metrics: pl.DataFrame) -> pl.DataFrame:
    """The table before the fix: every `mabn` label grouped by its loss."""
    return report.loss_rows(metrics.filter(pl.col("model") == "mabn"))


def test_non_loss_variants_stay_out_of_the_reference_row():
    predictors = {
        "mabn": entry({"epochs": 200, "loss": "diffkendall"}),
        "mabn_onehot": entry({"epochs": 200, "loss": "diffkendall", "use_onehot": True}),
        "mabn_channel_only": entry({"epochs": 200, "loss": "diffkendall", "token_mixing": False}),
        "mabn_mse": entry({"epochs": 200, "loss": "mse"}, ablation=True),
        "mlp": entry({"epochs": 200, "loss": "diffkendall"}, model="mlp"),
    }
    metrics = metrics_frame(predictors)
    table = report.loss_ablation_table(metrics, predictors)

    for protocol in ("strict_cells", "strict"):
        rows = loss_rows(table, protocol=protocol)
        assert set(rows) == {"diffkendall", "mse"}
        for loss, label in (("diffkendall", "mabn"), ("mse", "mabn_mse")):
            kendall, spearman = label_stats(metrics, label, protocol)
            assert rows[loss]["kendall_mean"] == pytest.approx(kendall)
            assert rows[loss]["spearman_mean"] == pytest.approx(spearman)
            assert rows[loss]["seeds"] == len(SEEDS)
    assert table.columns == [
        "space",
        "dataset",
        "loss",
        "train_size",
        "protocol",
        "seeds",
        "kendall_mean",
        "kendall_std",
        "spearman_mean",
        "spearman_std",
    ]


def test_default_config_table_is_unchanged():
    """config/config.yaml (mabn and mabn_mse, same params apart from loss): the rows of before."""
    config = load(REPO / "config/config.yaml")
    predictors = config["train"]["predictors"]
    metrics = metrics_frame(predictors)
    overrides = {s: e["predictor_params"] for s, e in config["spaces"].items()}
    table = report.loss_ablation_table(metrics, predictors, overrides)

    assert_frame_equal(table, grouped_by_loss(metrics))
    assert set(loss_rows(table)) == {"diffkendall", "mse"}


def test_full_config_compares_each_space_own_family():
    """config/full.yaml: on nb201 the diffkendall row is mabn alone (not its one-hot, scaling
    or channel-only variants); on nb101 the mabn override (epochs 100, hidden_dim 256) leaves
    mabn out, so only the three ablation labels, which share epochs 200, are compared."""
    config = load(REPO / "config/full.yaml")
    predictors = config["train"]["predictors"]
    overrides = {s: e["predictor_params"] for s, e in config["spaces"].items()}
    metrics = pl.concat(
        [
            metrics_frame(predictors, "nb201", "cifar10", 1563),
            metrics_frame(predictors, "nb101", "cifar10", 172, overrides["nb101"]),
        ]
    )
    table = report.loss_ablation_table(metrics, predictors, overrides)

    nb201 = loss_rows(table, "nb201")
    losses = {"diffkendall": "mabn", "mse": "mabn_mse", "pairwise": "mabn_pairwise"}
    losses[str({"mse": 1.0, "diffkendall": 1.0})] = "mabn_mse_diffkendall"
    assert set(nb201) == set(losses)
    for loss, label in losses.items():
        assert nb201[loss]["kendall_mean"] == pytest.approx(label_stats(metrics, label)[0])
    nb101 = loss_rows(table, "nb101")
    assert set(nb101) == set(losses) - {"diffkendall"}
    assert nb101["mse"]["kendall_mean"] == pytest.approx(label_stats(metrics, "mabn_mse")[0])


def test_explicit_defaults_do_not_split_a_family():
    """Params are compared with the predictor's defaults filled in."""
    predictors = {
        "mabn": entry({"epochs": 20}),  # the default loss
        "mabn_mse": entry({"epochs": 20, "loss": "mse", "use_onehot": False}, ablation=True),
    }
    metrics = metrics_frame(predictors)
    rows = loss_rows(report.loss_ablation_table(metrics, predictors))
    assert set(rows) == {"-", "mse"}
    assert rows["-"]["kendall_mean"] == pytest.approx(label_stats(metrics, "mabn")[0])


def test_two_families_in_one_space_are_an_error():
    """One row per loss cannot tell two families apart; say so instead of mixing them."""
    predictors = {
        "mabn": entry({"epochs": 200, "loss": "diffkendall"}),
        "mabn_mse": entry({"epochs": 200, "loss": "mse"}, ablation=True),
        "mlp": entry({"epochs": 200, "loss": "diffkendall"}, model="mlp"),
        "mlp_mse": entry({"epochs": 200, "loss": "mse"}, model="mlp", ablation=True),
    }
    with pytest.raises(ValueError, match=r"mabn_mse.*mlp_mse"):
        report.loss_ablation_table(metrics_frame(predictors), predictors)


def test_space_override_applies_to_its_space_only():
    predictors = {
        "mabn": entry({"epochs": 200, "loss": "diffkendall"}),
        "mabn_mse": entry({"epochs": 200, "loss": "mse"}, ablation=True),
    }
    overrides = {"nb101": {"mabn": {"epochs": 100}}}
    metrics = pl.concat(
        [
            metrics_frame(predictors, "nb201"),
            metrics_frame(predictors, "nb101", overrides=overrides["nb101"]),
        ]
    )
    table = report.loss_ablation_table(metrics, predictors, overrides)
    assert set(loss_rows(table, "nb201")) == {"diffkendall", "mse"}
    assert set(loss_rows(table, "nb101")) == {"mse"}


def test_kendall_by_size_has_one_column_per_training_size_in_ascending_order():
    predictors = {"mabn": entry({"loss": "diffkendall"}), "gbdt": entry({}, model="gbdt")}
    metrics = pl.concat(
        [metrics_frame(predictors, train_size=n) for n in (469, 78, 156)], how="vertical"
    )
    table = report.kendall_by_size(report.correlation_table(metrics), "strict")
    assert table.columns == ["space", "dataset", "proxy_dataset", "predictor", "78", "156", "469"]
    mabn = table.filter(pl.col("predictor") == "mabn").row(0, named=True)
    seeds = metrics.filter((pl.col("predictor") == "mabn") & (pl.col("protocol") == "strict"))
    mean = seeds.filter(pl.col("train_size") == 78)["kendall"].mean()
    std = seeds.filter(pl.col("train_size") == 78)["kendall"].std()
    assert mabn["78"] == f"{mean:.3f} ± {std:.3f}"


def test_a_size_that_one_space_lacks_is_a_dash_in_markdown():
    from parzc.reports.tables import markdown_table

    predictors = {"gbdt": entry({}, model="gbdt")}
    metrics = pl.concat(
        [metrics_frame(predictors, "nb201", train_size=78), metrics_frame(predictors, "nb101")],
        how="vertical",
    )
    lines = markdown_table(report.kendall_by_size(report.correlation_table(metrics))).splitlines()
    assert lines[0] == "| space | dataset | proxy_dataset | predictor | 50 | 78 |"
    nb101 = next(line for line in lines if line.startswith("| nb101"))
    assert nb101.endswith(" | – |") and "None" not in "".join(lines)


def test_metrics_files_from_before_a_new_metric_still_aggregate(tmp_path):
    old = pl.DataFrame({"predictor": ["a"], "kendall": [0.5]})
    new = old.with_columns(predictor=pl.lit("b"), uncertainty_error_spearman=pl.lit(0.2))
    old.write_parquet(tmp_path / "old.parquet")
    new.write_parquet(tmp_path / "new.parquet")
    frame = report.collect_metrics([tmp_path / "old.parquet", tmp_path / "new.parquet"])
    assert frame["uncertainty_error_spearman"].to_list() == [None, 0.2]


def test_correlation_table_of_files_without_a_new_summary_metric():
    """Metrics written before `ceiling_kendall` existed still give a table, without its column."""
    metrics = metrics_frame({"mabn": {"model": "mabn"}}).drop("ceiling_kendall")
    table = report.correlation_table(metrics)
    assert "kendall_mean" in table.columns and "ceiling_kendall_mean" not in table.columns
    assert (
        "ceiling_kendall_mean"
        in report.correlation_table(metrics_frame({"a": {"model": "gbdt"}})).columns
    )


def test_metrics_files_from_before_protocols_are_read_as_their_protocols(tmp_path):
    """Files with `subset` rows (networks, cells) and `val_acc_kendall` become the strict
    protocols, with the training and scored labels they were made with."""
    current = metrics_frame({"mabn": {"model": "mabn"}})
    legacy = current.rename({"ceiling_kendall": "val_acc_kendall"}).with_columns(
        subset=pl.col("protocol").replace_strict({"strict": "networks", "strict_cells": "cells"})
    )
    legacy.drop("protocol").write_parquet(tmp_path / "legacy.parquet")
    frame = report.collect_metrics([tmp_path / "legacy.parquet"])
    assert frame["protocol"].to_list() == current["protocol"].to_list()
    assert frame["ceiling_kendall"].to_list() == current["ceiling_kendall"].to_list()
    assert set(frame["evaluation"]) == {"held_out_networks", "held_out_cells"}
    assert set(frame["train_label"]) == {"val"} and set(frame["score_label"]) == {"test"}
