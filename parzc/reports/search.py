"""The search report: one row per search file, seed-aggregated tables and the cost plot.

The caption that explains the columns lives with the report: workflow/report/search.rst.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from parzc.io import read_metadata
from parzc.reports.tables import markdown_table, save_figure

KEYS = ("space", "dataset", "method", "strategy", "predictor", "train_size")


def summary_rows(paths: Sequence[str | Path]) -> pl.DataFrame:
    """One row per search file: its summary, the chosen (top-1) architecture and the best test
    accuracy among its top-k (`best_of_top_k`, what ParZC's published search code reports)."""
    rows = []
    for path in paths:
        summary = json.loads(read_metadata(path)["search"])
        top = pl.read_parquet(path)
        best = top.row(0, named=True)
        summary.pop("params")
        rows.append(
            {
                **summary,
                **{k: best[k] for k in ("arch_id", "arch", "test_acc", "true_rank")},
                "top_k": len(top),
                "best_of_top_k": float(top["test_acc"].max()),
            }
        )
    frame = pl.DataFrame(rows, infer_schema_length=None)
    label = pl.when(pl.col("predictor").is_null()).then(pl.col("strategy"))
    return frame.with_columns(
        label.otherwise(pl.format("{} ({} n={})", "strategy", "predictor", "train_size")).alias(
            "method"
        )
    )


COST_COLUMNS = ("extract_s", "train_s", "score_s", "cpu_s", "gpu_s", "label_train_s")


def search_table(rows: pl.DataFrame) -> pl.DataFrame:
    """Mean and std over seeds of the chosen arch's test accuracy and true rank, and mean costs.

    `label_train_s` stays NaN (unknown) when any label's training time is unknown.
    """
    aggs = [
        pl.col("seed").n_unique().alias("seeds"),
        pl.col("pool_size").mean().alias("pool"),
        pl.col("pool_best_test_acc").mean(),
        pl.col("space_archs").max(),
        pl.col("queries").mean(),
        pl.col("extract_archs").mean(),
        pl.col("labels").mean(),
        pl.col("test_acc").mean().alias("test_acc_mean"),
        pl.col("test_acc").std().alias("test_acc_std"),
        pl.col("true_rank").mean().alias("true_rank_mean"),
        pl.col("true_rank").std().alias("true_rank_std"),
        pl.col("top_k").max(),
        pl.col("best_of_top_k").mean().alias("best_of_top_k_mean"),
        pl.col("best_of_top_k").std().alias("best_of_top_k_std"),
    ]
    aggs += [pl.col(c).mean().alias(f"{c}_mean") for c in COST_COLUMNS]
    return (
        rows.group_by(KEYS)
        .agg(aggs)
        .sort("space", "dataset", "test_acc_mean", descending=[False, False, True])
    )


def search_markdown(table: pl.DataFrame) -> str:
    """The report a reader needs: per (space, target) each method's labels, its pick's test
    accuracy and the best of its top-k (mean ± std over seeds) and its mean CPU-seconds
    (GPU-seconds too where a phase ran on a GPU); the CSV keeps every column. A note says when
    the labels' training time is unknown rather than counting it as free."""

    def pm(name: str, title: str) -> pl.Expr:
        mean, std = pl.col(f"{name}_mean").round(2), pl.col(f"{name}_std").round(2)
        return pl.format("{} ± {}", mean, std.fill_null(0)).alias(title)

    columns = [
        "space",
        "dataset",
        "method",
        pl.col("labels").round(0).cast(pl.Int64),
        pm("test_acc", "top-1 test acc"),
        pm("best_of_top_k", f"best of top {table['top_k'].max()}"),
        pl.col("cpu_s_mean").round(0).cast(pl.Int64).alias("CPU-s"),
    ]
    if (table["gpu_s_mean"].fill_nan(0) > 0).any():
        columns.append(pl.col("gpu_s_mean").round(0).cast(pl.Int64).alias("GPU-s"))
    text = markdown_table(table.select(columns))
    unknown = table.filter(pl.col("label_train_s_mean").is_nan() & (pl.col("labels") > 0))
    if len(unknown):
        text += (
            "\nThe labels' training time is unknown for "
            f"{', '.join(sorted(set(unknown['space'])))} (no per-architecture training times "
            "are shipped): searches that label candidates are not free. Every column, the "
            "costs per phase included: search.csv.\n"
        )
    return text


def plot_search(table: pl.DataFrame, path: str | Path) -> None:
    """Chosen arch's test accuracy (mean ± std over seeds) against measured device-seconds and
    against ground-truth labels used; one row of panels per (space, dataset)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = table.select("space", "dataset").unique().sort("space", "dataset").rows()
    fig, axes = plt.subplots(len(panels), 2, figsize=(11, 4 * len(panels)), squeeze=False)
    for (ax_s, ax_l), (space, dataset) in zip(axes, panels, strict=True):
        part = table.filter((pl.col("space") == space) & (pl.col("dataset") == dataset))
        for row in part.iter_rows(named=True):
            seconds = row["cpu_s_mean"] + row["gpu_s_mean"]
            for ax, x in ((ax_s, seconds), (ax_l, row["labels"])):
                ax.errorbar(
                    x,
                    row["test_acc_mean"],
                    yerr=row["test_acc_std"] or 0.0,
                    marker="o",
                    capsize=3,
                    label=row["method"],
                )
        for ax in (ax_s, ax_l):
            ax.axhline(
                part["pool_best_test_acc"].max(), color="grey", ls="--", lw=1, label="best in pool"
            )
            ax.set(ylabel="test accuracy of the chosen arch (%)", title=f"{space} / {dataset}")
            ax.grid(alpha=0.3)
        most = float((part["cpu_s_mean"] + part["gpu_s_mean"]).max())
        ax_s.set_xscale("symlog", linthresh=1.0)
        ax_s.set(
            xlim=(-0.5, 2 * most + 1),
            xlabel="measured CPU + GPU seconds (label training time excluded)",
        )
        ax_l.set(xlabel="ground-truth labels used")
        ax_l.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
