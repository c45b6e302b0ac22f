"""A round of the loop: freeze the labels, propose the next batch, write the round's folder; and
the loop's summary."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from parzc.constraints import describe
from parzc.loop.ask import LoopSettings, propose
from parzc.loop.state import LoopState
from parzc.store.matrix import FeatureMatrix

log = logging.getLogger(__name__)


def ask_round(
    state: LoopState,
    features: str | Path,
    settings: LoopSettings,
    batch: int,
    budget: int,
    round_: int,
    device: str = "auto",
) -> pl.DataFrame:
    """Propose up to `batch` candidates for `round_` within `budget` (labelled, failed and
    pending candidates count against it), write the round's folder and return the proposals.

    A round that already has its proposals is not asked again: its file is returned as it is.
    """
    existing = state.path("loop_proposals", round=round_)
    if existing.exists():
        return pl.read_parquet(existing)
    labels = state.labels()
    pending = state.pending()
    failed = labels.filter(pl.col("val_acc").is_null())["arch_id"].to_list()
    excluded = set(failed) | set(pending["arch_id"].to_list() if len(pending) else [])
    k = max(0, min(batch, budget - len(labels) - len(pending)))
    data = FeatureMatrix.load(features)
    pretrained = state.layout.path("pretrained", space=state.space, dataset=data.dataset)
    if k:
        proposals = propose(data, labels, excluded, k, settings, device, pretrained)
        if proposals.is_empty():
            log.warning(
                "round %d: no candidate left to propose: every one is labelled, failed, "
                "pending or outside the constraints (%s)",
                round_,
                describe(settings.constraints) or "none",
            )
    else:
        proposals = propose(data, labels, excluded, 0, settings, device, pretrained).head(0)
        log.info(
            "round %d: budget %d spent (%d told, %d pending)",
            round_,
            budget,
            len(labels),
            len(pending),
        )
    state.write_round(round_, proposals)
    return proposals


def summary_markdown(
    state: LoopState, feasible_ids: set[int] | None = None, constraints: str = ""
) -> str:
    """Every round's proposals with their outcome, and the best labelled candidate so far;
    with `feasible_ids` (the candidates within `constraints`), the best among those."""
    from parzc.reports.tables import markdown_table

    labels = state.labels()
    proposals = state.proposals()
    lines = [f"# Loop over {state.space} / {state.dataset}", ""]
    lines.append(
        f"{len(labels)} candidates told ({int(labels['n_failed'].gt(0).sum())} failed), "
        f"labels file {state.labels_path}."
    )
    within = " within the constraints" if feasible_ids is not None else ""
    if feasible_ids is not None:
        lines += ["", f"Constraints: {constraints}. Proposals and picks meet them."]
    best = _told(labels, feasible_ids).sort("val_acc", descending=True)
    if len(best):
        top = best.row(0, named=True)
        lines += [
            "",
            f"Best by validation accuracy{within}: `{top['arch']}` ({top['val_acc']:.2f}).",
        ]
    picks = pick_by_round(state, labels, proposals, feasible_ids)
    if len(picks):
        lines += [
            "",
            "## The pick after each round",
            "",
            f"The told candidate{within} with the best validation accuracy, and its test "
            "accuracy (the benchmark's ground truth where the space has one, else the labels "
            "file's).",
            "",
            markdown_table(picks, digits=2),
        ]
    if len(proposals):
        table = proposals.join(
            labels.select("arch_id", pl.col("val_acc").alias("told_val_acc"), "n_failed"),
            on="arch_id",
            how="left",
        ).select(
            "round",
            "arch",
            "scorer",
            "score",
            "uncertainty",
            "value",
            "nearest_val_acc",
            "told_val_acc",
            "n_failed",
        )
        lines += ["", "## Proposals", "", markdown_table(table, digits=3)]
    return "\n".join(lines) + "\n"


def _told(labels: pl.DataFrame, feasible_ids: set[int] | None) -> pl.DataFrame:
    """The labelled candidates, only those among `feasible_ids` when given."""
    told = labels.filter(pl.col("val_acc").is_not_null())
    if feasible_ids is None:
        return told
    return told.filter(pl.col("arch_id").is_in(sorted(feasible_ids)))


def pick_by_round(
    state: LoopState,
    labels: pl.DataFrame,
    proposals: pl.DataFrame,
    feasible_ids: set[int] | None = None,
) -> pl.DataFrame:
    """Per round: labels told by then (labels from before the loop included) and the honest
    pick among them (among `feasible_ids` when given): the best validation accuracy, reported
    with its test accuracy."""
    if proposals.is_empty():
        return pl.DataFrame()
    told = _told(labels, feasible_ids)
    truth = state.search_space.accuracy_table() if state.search_space.ground_truth else told
    test = dict(
        truth.filter(pl.col("dataset") == state.dataset).select("arch_id", "test_acc").iter_rows()
    )
    # the round that proposed each told candidate; 0 for labels from before the loop
    proposed_in = proposals.select("arch_id", "round").unique("arch_id", keep="first")
    told = told.join(proposed_in, on="arch_id", how="left").with_columns(
        pl.col("round").fill_null(0)
    )
    rows = []
    for round_ in sorted(proposals["round"].unique().to_list()):
        known = told.filter(pl.col("round") <= round_)
        if known.is_empty():
            continue
        best = known.sort(["val_acc", "arch_id"], descending=[True, False]).row(0, named=True)
        rows.append(
            {
                "round": round_,
                "labels": len(known),
                "pick": best["arch"],
                "pick_val_acc": best["val_acc"],
                "pick_test_acc": test.get(best["arch_id"]),
            }
        )
    return pl.DataFrame(rows)
