"""Predictor reports: seed-aggregated correlation tables, the loss ablation and their plots."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from parzc.evaluation.protocols import PROTOCOLS, Protocol
from parzc.reports.tables import save_figure

SUMMARY_METRICS = (
    "kendall",
    "spearman",
    "pearson",
    "kendall_top20",
    "spearman_top20",
    "kendall_top50",
    "precision_at_1pct",
    "precision_at_5pct",
    "precision_at_10pct",
    "best_pred_true_rank",
    "best_pred_true_acc",
    "ceiling_kendall",
)
# what each protocol row says about itself (parzc.evaluation.protocols), carried into tables
PROTOCOL_COLUMNS = (
    "train_label",
    "train_draw",
    "score_label",
    "evaluation",
    "selection_labels",
    "selection_used",
)
# metrics files written before protocols existed: their `subset` and its protocol
_LEGACY_SUBSETS = {"networks": "strict", "cells": "strict_cells"}
GROUP = (
    "space",
    "dataset",
    "proxy_dataset",
    "predictor",
    "model",
    "loss",
    "train_size",
    "protocol",
)


def collect_metrics(files: list[str | Path]) -> pl.DataFrame:
    """All metrics files as one frame; a metric that older files lack is null there (files
    written before a metric was added stay usable after an upgrade)."""
    if not files:
        raise ValueError("no metrics files to aggregate")
    return pl.concat([_upgraded(pl.read_parquet(f)) for f in files], how="diagonal_relaxed")


def _upgraded(metrics: pl.DataFrame) -> pl.DataFrame:
    """A metrics file in the current columns: `subset` rows of files written before protocols
    existed become their registered protocol (its fields, networks drawn uniformly, no selection
    labels used), `val_acc_kendall` its ceiling."""
    if "subset" not in metrics.columns:
        return metrics
    fields = pl.DataFrame(
        [
            {"subset": subset, "protocol": name, **PROTOCOLS.get(name).describe()}
            for subset, name in _LEGACY_SUBSETS.items()
        ]
    ).with_columns(train_draw=pl.lit("networks"), selection_used=pl.lit(0))
    return (
        metrics.rename({"val_acc_kendall": "ceiling_kendall"}, strict=False)
        .join(fields, on="subset", how="left", maintain_order="left")
        .drop("subset")
    )


def correlation_table(metrics: pl.DataFrame) -> pl.DataFrame:
    """Mean and std over seeds of every summary metric the files hold, one row per GROUP."""
    aggs = [pl.col("seed").n_unique().alias("seeds"), pl.col("n_eval").first()]
    aggs += [pl.col(c).first() for c in PROTOCOL_COLUMNS if c in metrics.columns]
    for m in (m for m in SUMMARY_METRICS if m in metrics.columns):
        aggs += [pl.col(m).mean().alias(f"{m}_mean"), pl.col(m).std().alias(f"{m}_std")]
    return metrics.group_by(GROUP).agg(aggs).sort(list(GROUP))


def _all_but_loss(entry: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A predictor entry less `loss_ablation`, its params (`overrides` applied, the predictor's
    defaults filled in) less `loss`."""
    from parzc.predictors import create_predictor

    params = create_predictor(entry["model"], **{**entry.get("params", {}), **overrides}).params
    params.pop("loss", None)
    rest = {k: v for k, v in entry.items() if k not in ("params", "loss_ablation")}
    return {**rest, "params": params}


def loss_ablation_labels(
    predictors: Mapping[str, Mapping[str, Any]],
    overrides: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
    spaces: Iterable[str] | None = None,
) -> dict[str, list[str]]:
    """Per space, the predictor labels that the loss ablation compares.

    `predictors` is the config's train/predictors (label -> {model, params, loss_ablation}),
    `overrides` its spaces' predictor_params (space -> label -> params, applied over the label's
    params as for training); `spaces` defaults to those of `overrides`. A space's family is the
    `loss_ablation` labels and every label whose entry equals theirs apart from `loss` and the
    flag: same model, same parameters (defaults filled in) and any other entry field. A space
    whose ablation labels differ by more than the loss is an error: the table has one row per
    loss and could not tell the families apart.
    """
    overrides = overrides or {}
    families: dict[str, list[str]] = {}
    for space in overrides if spaces is None else spaces:
        keys = {
            label: _all_but_loss(entry, overrides.get(space, {}).get(label, {}))
            for label, entry in predictors.items()
        }
        ablation = [label for label, entry in predictors.items() if entry.get("loss_ablation")]
        if not ablation:
            families[space] = []
            continue
        key = keys[ablation[0]]
        if any(keys[label] != key for label in ablation):
            raise ValueError(
                f"loss-ablation labels {', '.join(ablation)} of space {space!r} differ by more "
                "than their loss (model or other params); the loss-ablation table compares one "
                "family of labels per space"
            )
        families[space] = [label for label in predictors if keys[label] == key]
    return families


def loss_ablation_table(
    metrics: pl.DataFrame,
    predictors: Mapping[str, Mapping[str, Any]],
    overrides: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
) -> pl.DataFrame:
    """Kendall/Spearman of the predictor labels that differ only by loss, one row per loss.

    Only each space's `loss_ablation_labels` (the ablation labels and the labels whose params
    equal theirs apart from `loss`) are kept; `predictors` and `overrides` as there.
    """
    families = loss_ablation_labels(predictors, overrides, metrics["space"].unique().to_list())
    keep = pl.DataFrame(
        [(space, label) for space, labels in families.items() for label in labels],
        schema={"space": metrics.schema["space"], "predictor": metrics.schema["predictor"]},
        orient="row",
    )
    return loss_rows(metrics.join(keep, on=["space", "predictor"], how="semi"))


def loss_rows(metrics: pl.DataFrame) -> pl.DataFrame:
    """Kendall and Spearman (mean, std over seeds) of `metrics` grouped by loss."""
    return (
        metrics.group_by("space", "dataset", "loss", "train_size", "protocol")
        .agg(
            pl.col("seed").n_unique().alias("seeds"),
            pl.col("kendall").mean().alias("kendall_mean"),
            pl.col("kendall").std().alias("kendall_std"),
            pl.col("spearman").mean().alias("spearman_mean"),
            pl.col("spearman").std().alias("spearman_std"),
        )
        .sort(
            "space",
            "dataset",
            "protocol",
            "train_size",
            "kendall_mean",
            descending=[False, False, False, False, True],
        )
    )


def kendall_by_size(table: pl.DataFrame, protocol: str = "strict") -> pl.DataFrame:
    """Kendall tau 'mean ± std' over seeds, one row per (space, target, predictor), one column
    per training size (ascending): the layout of the published NB201 tables."""
    rows = (
        table.filter(pl.col("protocol") == protocol)
        .sort("train_size")
        .with_columns(
            pl.struct("kendall_mean", "kendall_std")
            .map_elements(
                lambda r: f"{r['kendall_mean']:.3f} ± {r['kendall_std'] or 0.0:.3f}",
                return_dtype=pl.String,
            )
            .alias("kendall"),
            pl.col("train_size").cast(pl.String).alias("labels"),
        )
    )
    index = ["space", "dataset", "proxy_dataset", "predictor"]
    return rows.pivot("labels", index=index, values="kendall").sort(index)


def protocol_table(
    table: pl.DataFrame, protocols: Mapping[str, Protocol] | None = None
) -> pl.DataFrame:
    """parzc's best predictor under each protocol and training size, next to its ceiling and
    the published figures of the protocol's anchors (`protocols`, from the config).

    One row per (space, target, protocol, train size) of `table` (a `correlation_table`): the
    protocol's fields, the predictor with the highest mean Kendall tau (mean ± std over seeds),
    the ceiling (the training label's own Kendall tau with the scored label, mean over seeds)
    and the share of it reached, and the anchors' figures at that size ("–" where none).
    """
    protocols = protocols or {}
    best = (
        table.sort("kendall_mean", descending=True)
        .group_by("space", "dataset", "protocol", "train_size", maintain_order=True)
        .first()
    )

    def anchors(row: dict[str, Any]) -> str:
        protocol = protocols.get(row["protocol"])
        figures = () if protocol is None else protocol.anchors
        quoted = [
            f"{a.name} {tau:.3f}"
            for a in figures
            if (tau := a.at(row["dataset"], row["train_size"])) is not None
        ]
        return "; ".join(quoted) or "–"

    return (
        best.with_columns(
            pl.format(
                "{} ± {}",
                pl.col("kendall_mean").round(3),
                pl.col("kendall_std").round(3).fill_null(0),
            ).alias("kendall"),
            pl.col("ceiling_kendall_mean").round(3).alias("ceiling"),
            (100 * pl.col("kendall_mean") / pl.col("ceiling_kendall_mean"))
            .round(1)
            .alias("pct_of_ceiling"),
            pl.format(
                "{} granted, {} used", pl.col("selection_labels"), pl.col("selection_used")
            ).alias("selection"),
            pl.struct("protocol", "dataset", "train_size")
            .map_elements(anchors, return_dtype=pl.String)
            .alias("published"),
        )
        .select(
            "space",
            "dataset",
            "protocol",
            "train_label",
            "train_draw",
            "score_label",
            "evaluation",
            "selection",
            "train_size",
            "seeds",
            "n_eval",
            "predictor",
            "kendall",
            "ceiling",
            "pct_of_ceiling",
            "published",
        )
        .sort("space", "dataset", "protocol", "train_size")
    )


def compact_table(table: pl.DataFrame, protocol: str = "strict") -> pl.DataFrame:
    """The headline columns as 'mean ± std' strings, for Markdown."""

    def pm(name: str) -> pl.Expr:
        return pl.format(
            "{} ± {}", pl.col(f"{name}_mean").round(3), pl.col(f"{name}_std").round(3).fill_null(0)
        ).alias(name)

    return table.filter(pl.col("protocol") == protocol).select(
        "space",
        "dataset",
        "proxy_dataset",
        "predictor",
        "loss",
        "train_size",
        "seeds",
        "n_eval",
        pm("kendall"),
        pm("spearman"),
        pm("pearson"),
        pm("precision_at_5pct"),
        pm("best_pred_true_rank"),
    )


def plot_kendall_vs_size(table: pl.DataFrame, path: str | Path, protocol: str = "strict") -> None:
    """Kendall tau (mean ± std over seeds) against training-split size, per predictor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = table.filter(pl.col("protocol") == protocol)
    panels = table.select("space", "dataset").unique().sort("space", "dataset").rows()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (space, dataset) in zip(axes[0], panels, strict=True):
        part = table.filter((pl.col("space") == space) & (pl.col("dataset") == dataset))
        for (label,), rows in part.group_by("predictor", maintain_order=True):
            rows = rows.sort("train_size")
            ax.errorbar(
                rows["train_size"],
                rows["kendall_mean"],
                yerr=rows["kendall_std"].fill_null(0),
                marker="o",
                capsize=3,
                label=label,
            )
        ax.set(
            xscale="log",
            xlabel="training archs",
            ylabel=f"Kendall tau ({protocol})",
            title=f"{space} / {dataset}",
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def plot_scatter(predictions: pl.DataFrame, path: str | Path, top: float = 0.05) -> None:
    """Predicted score against true accuracy; the true top-`top` fraction highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cut = predictions["target"].quantile(1 - top)
    best = predictions["target"] >= cut
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(
        predictions.filter(~best)["target"],
        predictions.filter(~best)["score"],
        s=6,
        alpha=0.5,
        label="others",
    )
    ax.scatter(
        predictions.filter(best)["target"],
        predictions.filter(best)["score"],
        s=10,
        color="crimson",
        label=f"true top {top:.0%}",
    )
    first = predictions.row(0, named=True)
    ax.set(
        xlabel="true test accuracy (%)",
        ylabel="predicted score",
        title=f"{first['predictor']} {first['space']}/{first['dataset']} "
        f"n={first['train_size']} seed={first['seed']}",
    )
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
