"""Fit predictors on an existing full-NB201 run's splits without re-running its DAG.

Loads (or assembles from the run's store) each target's feature matrix once and calls
`parzc.training.run.train_and_predict` for every (size, seed), exactly as the `train` rule
does, writing predictions, models and metrics (under every built-in protocol that applies)
into the run's results layout, so `parzc report` and the tables read them with the rest. Used
for the fusion predictor's full protocol and ablation (docs/results.md), where re-running the DAG
would redo every job.

    python benchmarks/fusion_protocol.py RESULTS TARGET LABEL MODEL PARAMS_JSON SIZES SEEDS \
        [--draw cells] [--train-label val_mean]
e.g. python benchmarks/fusion_protocol.py results/nb201_full cifar10 fusion fusion '{}' \
        78,156 0,1,2
`--draw` (default `networks`) names the training draw (`parzc.training.splits.SPLIT_DRAWS`); a
split the run has not made (e.g. `cells` at a size its config draws by networks only) is drawn as
its `make_split` rule would, from the run's networks with the same seed. `--train-label` is the
training label (`parzc.evaluation.protocols.LABELS`, default `val`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import polars as pl

from parzc import stages
from parzc.allocator import retain_freed_memory
from parzc.evaluation.protocols import PROTOCOLS
from parzc.layout import Layout
from parzc.store import Store
from parzc.store.matrix import FeatureMatrix
from parzc.training.run import train_and_predict
from parzc.training.splits import split_path


def main() -> None:
    retain_freed_memory()  # as the train rule's job does
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("results", "target", "label", "model", "params", "sizes", "seeds"):
        parser.add_argument(name)
    parser.add_argument("--draw", default="networks")
    parser.add_argument("--train-label", default="val")
    args = parser.parse_args()
    fit_all(
        args.results,
        args.target,
        args.label,
        args.model,
        json.loads(args.params),
        [int(size) for size in args.sizes.split(",")],
        [int(seed) for seed in args.seeds.split(",")],
        draw=args.draw,
        train_label=args.train_label,
    )


def fit_all(
    results: str,
    target: str,
    label: str,
    model: str,
    params: dict[str, Any],
    sizes: list[int],
    seeds: list[int],
    *,
    draw: str = "networks",
    train_label: str = "val",
) -> None:
    """Fit `model` with `params` as `label` for every (size, seed) the run lacks predictions
    of, and score each fit under every protocol; prints one line a fit."""
    layout = Layout(results)
    data = run_matrix(results, target)
    for size in sizes:
        for seed in seeds:
            keys = {"space": "nb201", "dataset": target, "predictor": label, "size": size}
            predictions = layout.path("predictions", **keys, seed=seed)
            if Path(predictions).exists():
                continue
            started = time.perf_counter()
            split = split_path(layout, "nb201", target, size, seed, draw)
            if not Path(split).exists():
                networks = data.arch_ids[data.arch_ids == data.network_ids]
                stages.split(networks, size, seed, split, "nb201", target, draw=draw)
            report = train_and_predict(
                data,
                label,
                model,
                params,
                split,
                seed,
                predictions,
                layout.path("model", **keys, seed=seed),
                device="cpu",
                train_label=train_label,
            )
            evaluate(predictions, layout.path("metrics", **keys, seed=seed))
            metrics = pl.read_parquet(layout.path("metrics", **keys, seed=seed))
            kendall = " ".join(
                f"{protocol}={tau:.4f}"
                for protocol, tau in metrics.select("protocol", "kendall").iter_rows()
            )
            print(
                f"{label} {target} n={size} seed={seed} kendall {kendall} "
                f"fit={report['fit_seconds']:.1f}s "
                f"pretrain={report.get('pretrain_seconds', 0):.1f}s "
                f"wall={time.perf_counter() - started:.1f}s",
                flush=True,
            )


def run_matrix(results: str, target: str) -> FeatureMatrix:
    """Every NB201 cell of the run's store with `target`'s labels, assembled once and cached
    under the run's `matrices-v2/` (the DAG's own matrices may be older)."""
    cache = Path(results) / "matrices-v2" / f"{target}.npz"
    if not cache.exists():
        matrix = Store(results).assemble(
            "nb201",
            "cifar10",
            ["grad_norm", "snip", "synflow"],
            onehot=True,
            target=target,
            every_cell=True,
        )
        matrix.save(cache)
    return FeatureMatrix.load(cache)


def evaluate(predictions: str, metrics: str) -> None:
    """Metrics under every built-in protocol that applies to the fit."""
    stages.evaluate(predictions, metrics, {name: {} for name in PROTOCOLS})


if __name__ == "__main__":
    main()
