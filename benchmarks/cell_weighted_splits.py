"""Does drawing training networks as cells are drawn change the cell-level protocols?

parzc draws each training split uniformly from NB201's 9,445 canonical networks; FlowerFormer
and FGP draw cells, so a network with many equivalent cells (up to 341) is that much more
likely to be labelled, and it weighs that much more in a Kendall tau over cells. This script
draws `size` distinct networks with probability proportional to their cell counts, fits one
predictor of an existing full-NB201 run's config on them (its pretrained weights are reused)
and prints the Kendall tau of every protocol next to the run's own (uniformly drawn) splits.

    python benchmarks/cell_weighted_splits.py results/nb201_full fusion_hops_m3_smooth \
        --target cifar10 --sizes 78 --seeds 0 1 2 3 4

Writes under RESULTS/cell_weighted/ (its own layout, sharing RESULTS/models/pretrained).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl

from parzc.config import load
from parzc.dag import Plan
from parzc.evaluation.predictions import evaluate_predictions
from parzc.evaluation.protocols import resolve_protocols
from parzc.layout import Layout
from parzc.store.matrix import FeatureMatrix
from parzc.training.run import train_and_predict
from parzc.training.splits import save_split


def weighted_split(data: FeatureMatrix, size: int, seed: int) -> pl.DataFrame:
    """`size` distinct networks drawn with probability proportional to their cell counts."""
    networks, cells = np.unique(data.network_ids, return_counts=True)
    rng = np.random.default_rng([seed, size, 1])
    train = rng.choice(len(networks), size=size, replace=False, p=cells / cells.sum())
    split = np.full(len(networks), "test", dtype=object)
    split[train] = "train"
    return pl.DataFrame({"arch_id": networks.astype(np.int32), "split": split.astype(str)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("predictor")
    parser.add_argument("--config", default="config/nb201_full.yaml")
    parser.add_argument("--target", default="cifar10")
    parser.add_argument("--sizes", type=int, nargs="+", default=[78])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    plan = Plan(load(args.config))
    entry = plan.predictors()[args.predictor]
    protocols = resolve_protocols(plan.config["evaluation"]["protocols"])
    run = Layout(args.results)
    scratch = args.results / "cell_weighted"
    pretrained = scratch / "models" / "pretrained"
    if not pretrained.exists():
        pretrained.parent.mkdir(parents=True, exist_ok=True)
        pretrained.symlink_to((args.results / "models" / "pretrained").resolve())
    layout = Layout(scratch)
    data = FeatureMatrix.load(run.path("matrix", space="nb201", dataset=args.target))
    rows = []
    for size in args.sizes:
        for seed in args.seeds:
            keys = {"space": "nb201", "dataset": args.target, "size": size, "seed": seed}
            split = layout.path("split", **keys)
            save_split(weighted_split(data, size, seed), split, seed=seed, draw="cells")
            predictions = layout.path("predictions", **keys, predictor=args.predictor)
            train_and_predict(
                data,
                args.predictor,
                entry["model"],
                plan.predictor_params("nb201", args.predictor),
                split,
                seed,
                predictions,
                layout.path("model", **keys, predictor=args.predictor),
                device="cpu",
                train_label=entry["train_label"],
            )
            for draw, path in (
                ("cells", predictions),
                ("networks", run.path("predictions", **keys, predictor=args.predictor)),
            ):
                if not Path(path).exists():  # the run has not fitted this one (yet)
                    continue
                for row in evaluate_predictions(path, protocols).iter_rows(named=True):
                    rows.append({"draw": draw, "size": size, "seed": seed, **row})
    table = (
        pl.DataFrame(rows)
        .group_by("protocol", "size", "draw")
        .agg(
            pl.col("kendall").mean().round(3).alias("kendall"),
            pl.col("kendall").std().round(3).alias("std"),
            pl.len().alias("seeds"),
        )
        .sort("protocol", "size", "draw")
    )
    with pl.Config(tbl_rows=-1):
        print(table)


if __name__ == "__main__":
    main()
