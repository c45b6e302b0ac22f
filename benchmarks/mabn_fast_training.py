"""MABN's paper schedule vs a fast schedule on the same real NB201 splits, side by side.

    python benchmarks/mabn_fast_training.py --results results/nb201_full --sizes 78 156 469 \
        --seeds 0 1 2 --schedule fast:batch_size=64,lr=1e-3,epochs=100

Every schedule trains on the same split (networks of the store, CIFAR-10 validation accuracy)
and is scored by Kendall tau on every other stored network; fit seconds are measured in this one
process, one after the other, so their ratio holds on a busy machine too.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl
import torch
import yaml

from parzc.evaluation.metrics import rank_metrics
from parzc.predictors import create_predictor
from parzc.store import Store
from parzc.training.splits import make_split

PAPER = {"epochs": 200, "batch_size": 10, "lr": 1e-4}


def schedule(text: str) -> tuple[str, dict]:
    """'name:key=value,key=value' -> (name, params)."""
    name, _, body = text.partition(":")
    params = {k: _value(v) for k, v in (kv.split("=") for kv in body.split(",") if kv)}
    return name, params


def _value(text: str) -> object:
    """A number where the text is one (YAML reads 1e-3 as a string), else YAML's reading."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return yaml.safe_load(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", required=True)
    parser.add_argument("--dataset", default="cifar10", help="target (proxies: cifar10)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[78, 156, 469])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--schedule", action="append", default=[], type=schedule)
    parser.add_argument("--features", default="grad_norm,snip,synflow")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        type=schedule,
        help="extra MABN params for every schedule, as ':key=value,...'",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    common = {"device": "cpu"}
    for _, extra in args.param:
        common.update(extra)
    schedules = [("paper", PAPER), *args.schedule]
    data = Store(args.results).assemble(
        "nb201", "cifar10", args.features.split(","), onehot=True, target=args.dataset
    )
    rows = []
    for size in args.sizes:
        for seed in args.seeds:
            split = make_split(data.arch_ids, size, seed)
            train = data.subset(np.flatnonzero(split["split"].to_numpy() == "train"))
            test = data.subset(np.flatnonzero(split["split"].to_numpy() == "test"))
            for name, params in schedules:
                predictor = create_predictor("mabn", **{**common, **params})
                started = time.perf_counter()
                predictor.fit(train, seed=seed)
                seconds = time.perf_counter() - started
                score, _ = predictor.predict(test)
                kendall = rank_metrics(score, test.test_acc)["kendall"]
                rows.append(
                    {
                        "schedule": name,
                        "size": size,
                        "seed": seed,
                        "kendall": kendall,
                        "fit_s": seconds,
                    }
                )
                print(rows[-1], flush=True)
    table = (
        pl.DataFrame(rows)
        .group_by("schedule", "size", maintain_order=True)
        .agg(
            pl.col("kendall").mean().alias("kendall_mean"),
            pl.col("kendall").std().alias("kendall_std"),
            pl.col("fit_s").mean().alias("fit_s"),
        )
    )
    paper = table.filter(pl.col("schedule") == "paper").select(
        "size", pl.col("kendall_mean").alias("paper_kendall"), pl.col("fit_s").alias("paper_s")
    )
    table = table.join(paper, on="size").with_columns(
        (pl.col("kendall_mean") - pl.col("paper_kendall")).alias("delta_kendall"),
        (pl.col("paper_s") / pl.col("fit_s")).alias("speedup"),
    )
    with pl.Config(tbl_rows=-1, tbl_cols=-1, float_precision=3, tbl_width_chars=200):
        print(table.drop("paper_kendall", "paper_s"))


if __name__ == "__main__":
    main()
