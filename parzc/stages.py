"""One function per workflow rule: what a job does, given its inputs, outputs and settings.

The Snakemake scripts (workflow/scripts/) and the `parzc` CLI call these with the same paths
(parzc.layout), so a rule's work is reachable from Python, the CLI and the DAG alike.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from parzc.allocator import retain_freed_memory
from parzc.io import write_parquet, write_text
from parzc.sharding import ExtractSettings, shard_arch_ids

log = logging.getLogger(__name__)
PathLike = str | Path


def extract(
    settings: ExtractSettings,
    start: int,
    end: int,
    features: PathLike,
    arch_stats: PathLike,
    device: str = "auto",
):
    """Extract the networks at positions start..end of the settings' order into one shard."""
    from parzc.extract import extract_shard

    retain_freed_memory()
    ids = shard_arch_ids(settings.space, settings.arch_seed, start, end)
    summary = extract_shard(settings, ids, features, arch_stats, device)
    log.info("%s", summary)
    return summary


def _store(features: Sequence[PathLike], arch_stats: Sequence[PathLike]):
    """A store of exactly these shards."""
    from parzc.store import Store

    return Store(features=list(features), arch_stats=list(arch_stats))


def assemble(
    features: Sequence[PathLike],
    arch_stats: Sequence[PathLike],
    space: str,
    proxy_dataset: str,
    target: str,
    proxies: Sequence[str],
    out: PathLike,
) -> None:
    """The training matrix of (space, target): every cell of the stored networks."""
    store = _store(features, arch_stats)
    matrix = store.assemble(
        space, proxy_dataset, proxies, onehot=True, target=target, every_cell=True
    )
    matrix.save(out)


def assemble_target(plan, space: str, dataset: str, out: PathLike) -> str:
    """`assemble` with the shards, proxy dataset and features a config's `Plan` names for
    (space, dataset); a missing shard is an error naming it."""
    features = plan.target_shards("features", space, dataset)
    arch_stats = plan.target_shards("arch_stats", space, dataset)
    missing = [f for f in features + arch_stats if not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{missing[0]} missing: extract the store first (snakemake --until extract_shard)"
        )
    assemble(
        features,
        arch_stats,
        space,
        plan.proxy_dataset(space, dataset),
        dataset,
        plan.config["train"]["features"],
        out,
    )
    return str(out)


def split(
    pool: Sequence[int],
    size: int,
    seed: int,
    out: PathLike,
    space: str,
    dataset: str,
    draw: str = "networks",
) -> None:
    """Draw `size` training networks of `pool` with `seed` as `draw` says (`SPLIT_DRAWS`); the
    rest are held out."""
    import numpy as np

    from parzc.training.splits import SPLIT_DRAWS, make_split, save_split

    ordered = np.asarray(sorted(int(a) for a in pool))
    weights = SPLIT_DRAWS.get(draw)(space, ordered)
    save_split(
        make_split(ordered, size, seed, weights),
        out,
        seed=seed,
        space=space,
        dataset=dataset,
        draw=draw,
    )


def train(
    matrix: PathLike,
    split_path: PathLike,
    label: str,
    model: str,
    params: dict[str, Any],
    seed: int,
    predictions: PathLike,
    model_path: PathLike,
    device: str = "auto",
    train_label: str = "val",
) -> dict[str, Any]:
    """Fit one predictor on one split's `train_label` accuracies and save its model and its
    predictions of every cell (training cells flagged)."""
    from parzc.store.matrix import FeatureMatrix
    from parzc.training.run import train_and_predict

    retain_freed_memory()
    data = FeatureMatrix.load(matrix)
    return train_and_predict(
        data,
        label,
        model,
        params,
        split_path,
        seed,
        predictions,
        model_path,
        device=device,
        train_label=train_label,
    )


def rank(
    matrix: PathLike,
    label: str,
    model: str,
    params: dict[str, Any],
    seed: int,
    ranking: PathLike,
    model_path: PathLike,
    device: str = "auto",
) -> dict[str, Any]:
    """Fit one predictor on every label of the matrix's target; score and rank every candidate."""
    from parzc.layout import Layout
    from parzc.store.matrix import FeatureMatrix
    from parzc.training.rank import rank_candidates

    retain_freed_memory()
    data = FeatureMatrix.load(matrix)
    pretrained = Layout.of("rank_model", model_path).path(
        "pretrained", space=data.space, dataset=data.dataset
    )
    return rank_candidates(
        data, label, model, params, seed, ranking, model_path, pretrained, device
    )


def ranking_report(
    rankings: Sequence[PathLike],
    top: int,
    csv: PathLike,
    md: PathLike,
    matrix: PathLike | None = None,
    constraints: Mapping[str, Mapping[str, float]] | None = None,
) -> None:
    """Every candidate's rank under each predictor (CSV) and the best unlabelled ones
    (Markdown); with `constraints` (a space's `constraints` mapping, judged on `matrix`), the
    best unlabelled ones within them."""
    from parzc.constraints import describe, feasible_ids, parse_constraints
    from parzc.reports.tables import markdown_table, write_table
    from parzc.store.matrix import FeatureMatrix
    from parzc.training.rank import ranking_table

    bounds = parse_constraints(constraints)
    ids, within = None, ""
    if bounds:
        if matrix is None:
            raise ValueError("constraints need the target's feature matrix to be judged on")
        ids = feasible_ids(FeatureMatrix.load(matrix), bounds)
        within = f" within the constraints ({describe(bounds)})"
    table, best = ranking_table(list(rankings), top, ids)
    write_table(table, csv)
    write_text(
        md,
        f"The {len(best)} best-ranked candidates without a label{within} (rank 1 = best; mean "
        "over the predictors' ranks, each predictor's scores averaged over its seeds):\n\n"
        + markdown_table(best),
    )


def loop_round(
    config: Mapping[str, Any], round_: int, features: PathLike, device: str = "auto"
) -> pl.DataFrame:
    """Round `round_` of the config's loop: freeze the labels, propose the next batch."""
    from parzc.dag import Plan
    from parzc.loop.rounds import ask_round

    plan = Plan(dict(config))
    loop = config["loop"]
    proposals = ask_round(
        plan.loop_state(),
        features,
        plan.loop_settings(),
        loop["batch"],
        loop["budget"],
        round_,
        device,
    )
    with pl.Config(tbl_cols=-1, fmt_str_lengths=80, tbl_width_chars=200):
        log.info("round %d proposes:\n%s", round_, proposals)
    return proposals


def loop_train(
    config: Mapping[str, Any], arch_id: int, seed: int, command: str, out: PathLike
) -> dict[str, Any]:
    """Train one candidate of the config's loop with `command`, unless it is told already."""
    from parzc.dag import Plan
    from parzc.loop.training import run_training

    state = Plan(dict(config)).loop_state()
    archs = state.search_space.archs()
    arch = archs.filter(pl.col("arch_id") == arch_id)["arch"].item()
    return run_training(state, command, arch, seed, out)


def loop_summary(config: Mapping[str, Any], out: PathLike) -> None:
    """The loop's summary: its rounds' proposals and outcomes, the best candidate told (within
    the space's constraints, judged on the loop's feature matrix)."""
    from parzc.constraints import describe, feasible_ids
    from parzc.dag import Plan
    from parzc.loop.rounds import summary_markdown
    from parzc.store.matrix import FeatureMatrix

    plan = Plan(dict(config))
    state = plan.loop_state()
    constraints = plan.constraints(state.space)
    ids = None
    if constraints:
        path = plan.layout.path("loop_features", space=state.space, dataset=state.dataset)
        ids = feasible_ids(FeatureMatrix.load(path), constraints)
    write_text(out, summary_markdown(state, ids, describe(constraints)))


def evaluate(
    predictions: PathLike, out: PathLike, protocols: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """Rank metrics of one predictions file under each protocol (the config's
    `evaluation.protocols`; default `strict` and `strict_cells`) that applies to it."""
    from parzc.evaluation.predictions import evaluate_predictions
    from parzc.evaluation.protocols import resolve_protocols

    resolved = None if protocols is None else resolve_protocols(protocols)
    write_parquet(evaluate_predictions(predictions, resolved).to_arrow(), out)


def proxy_table(
    features: Sequence[PathLike],
    arch_stats: Sequence[PathLike],
    space: str,
    proxy_dataset: str,
    target: str,
    csv: PathLike,
    md: PathLike,
) -> None:
    """Rank correlation of every aggregate proxy with the target's test accuracy."""
    from parzc.reports.proxies import proxy_correlation_table
    from parzc.reports.tables import write_table

    store = _store(features, arch_stats)
    write_table(proxy_correlation_table(store, space, proxy_dataset, target), csv, md)


def correlation_tables(
    metrics: Sequence[PathLike],
    predictors: Mapping[str, Mapping[str, Any]],
    overrides: Mapping[str, Mapping[str, Mapping[str, Any]]],
    csv: PathLike,
    md: PathLike,
    ablation_csv: PathLike,
    ablation_md: PathLike,
    plot: PathLike,
    by_size_md: PathLike,
    protocols_csv: PathLike,
    protocols_md: PathLike,
    protocols: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Seed-aggregated predictor tables, the loss ablation, Kendall by training size (one
    section per protocol), the Kendall-vs-size plot (`strict`) and the protocol comparison
    (`protocols`: the config's `evaluation.protocols`, for their anchors' figures)."""
    from parzc.evaluation.protocols import resolve_protocols
    from parzc.reports import predictors as report
    from parzc.reports.tables import markdown_table, write_table

    frame = report.collect_metrics(list(metrics))
    table = report.correlation_table(frame)
    write_table(table, csv)
    write_table(report.compact_table(table), md_path=md)
    write_table(report.loss_ablation_table(frame, predictors, overrides), ablation_csv, ablation_md)
    report.plot_kendall_vs_size(table, plot)
    sections = []
    for protocol in table["protocol"].unique(maintain_order=True).to_list():
        first = table.filter(pl.col("protocol") == protocol).row(0, named=True)
        sections.append(
            f"## Kendall tau, protocol {protocol}: trained on {first['train_label']}, scored "
            f"against {first['score_label']} over the {first['evaluation']}\n\n"
            + markdown_table(report.kendall_by_size(table, protocol))
        )
    write_text(by_size_md, "\n".join(sections))
    resolved = resolve_protocols(protocols or {})
    write_table(report.protocol_table(table, resolved), protocols_csv, protocols_md)


def scatter(predictions: PathLike, out: PathLike) -> None:
    """Predicted against true accuracy of one predictions file."""
    from parzc.reports.predictors import plot_scatter

    plot_scatter(pl.read_parquet(predictions), out)


def search(
    features: Sequence[PathLike],
    arch_stats: Sequence[PathLike],
    space: str,
    proxy_dataset: str,
    target: str,
    strategy: str,
    seed: int,
    settings: Mapping[str, Any],
    train_features: Sequence[str],
    out: PathLike,
    run=None,
    matrix: PathLike | None = None,
) -> None:
    """One architecture search (a strategy, a seed, optionally a trained predictor) and its
    cost; `settings` is the config's `search` section; `matrix`, the target's assembled
    matrix, is read instead of assembling the store again."""
    from parzc.search.run import save_search, search_job
    from parzc.store.matrix import FeatureMatrix

    retain_freed_memory()
    store = _store(features, arch_stats)
    result, cost = search_job(
        store,
        space,
        proxy_dataset,
        strategy,
        run=run,
        features=train_features,
        top_k=settings["top_k"],
        budget=settings["budget"],
        seed=seed,
        pool_size=settings["pool"],
        # a strategy's own `train_size` chose its predictor (parzc.dag); the rest are its params
        params={k: v for k, v in settings["strategies"][strategy].items() if k != "train_size"},
        target=target,
        matrix=FeatureMatrix.load(matrix) if matrix is not None else None,
    )
    with pl.Config(tbl_cols=-1, fmt_str_lengths=80, tbl_width_chars=200):
        log.info("top %d:\n%s\n%s", len(result.top), result.top, cost.describe())
    save_search(out, result, cost, run)


def search_report(files: Sequence[PathLike], csv: PathLike, md: PathLike, plot: PathLike) -> None:
    """The seed-aggregated search report and its accuracy-vs-cost plot."""
    from parzc.reports.search import plot_search, search_markdown, search_table, summary_rows

    table = search_table(summary_rows(list(files)))
    write_text(csv, table.write_csv())
    write_text(md, search_markdown(table))
    plot_search(table, plot)
