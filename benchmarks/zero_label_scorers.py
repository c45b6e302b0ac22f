"""Which ranking should a loop's first round use, before any label: the proxy ensemble or the
pretrained proxy model? (`loop.zero_label`: `ensemble` or `pretrained`, parzc/loop/ask.py)

For every zero-label scorer this scores all candidates of a config's loop target without a label
and compares the ranking with the ground truth: Kendall tau against test accuracy over every
candidate, and what a first round of `--k` greedy proposals (one per network) would have found:
their mean and best test accuracy. The pretrained model is `fusion` with the loop predictor's
parameters, pretrained on the unlabelled candidates with `--seeds` seeds.

    # the digits example (ground truth: benchmarks/digits_ground_truth.py)
    python benchmarks/zero_label_scorers.py --config config/digits_loop.yaml \
        --truth benchmarks/out/digits_ground_truth.csv
    # full NB201 (after its store is extracted), a loop section given on the command line
    python benchmarks/zero_label_scorers.py --config config/nb201_full.yaml --space nb201 \
        --dataset cifar10 --predictor fusion_no_slots

The store must hold the target's features (snakemake --until extract_shard).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import polars as pl
from scipy import stats

from parzc.config import load
from parzc.dag import Plan
from parzc.loop.acquisition import ACQUISITIONS, Candidates
from parzc.loop.ask import ZERO_LABEL, LoopSettings
from parzc.store import Store
from parzc.store.matrix import FeatureMatrix


def ground_truth(data: FeatureMatrix, truth: str | None) -> np.ndarray:
    """Test accuracy of every row: from a labels-format CSV, else the matrix's ground truth."""
    if truth is None:
        return np.asarray(data.test_acc, dtype=np.float64)
    from parzc.spaces import get_space

    ids = dict(get_space(data.space).archs().select("arch", "arch_id").iter_rows())
    table = pl.read_csv(truth).group_by("arch").agg(pl.col("test_acc").mean())
    by_id = {ids[a]: t for a, t in table.iter_rows()}
    return np.array([by_id.get(int(a), np.nan) for a in data.arch_ids])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--space", help="target space (default: the config's loop)")
    parser.add_argument("--dataset", help="target dataset (default: the config's loop)")
    parser.add_argument("--predictor", help="train.predictors label whose params fusion uses")
    parser.add_argument("--truth", help="labels-format CSV of every candidate's test accuracy")
    parser.add_argument("--k", type=int, default=10, help="size of the first round")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()

    config = load(args.config)
    loop = config.get("loop", {})
    space = args.space or loop["space"]
    dataset = args.dataset or loop["dataset"]
    label = args.predictor or loop["predictor"]
    plan = Plan(config)
    data = Store(config["results"]).assemble(
        space,
        plan.proxy_dataset(space, dataset),
        config["train"]["features"],
        onehot=True,
        target=dataset,
        every_cell=True,
    )
    test = ground_truth(data, args.truth)
    known = np.isfinite(test)
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for scorer in ZERO_LABEL.names():
            for seed in args.seeds if scorer == "pretrained" else args.seeds[:1]:
                settings = LoopSettings(
                    predictor=label,
                    model=plan.predictors()[label]["model"],
                    params=plan.predictor_params(space, label),
                    zero_label=scorer,
                    seed=seed,
                )
                started = time.perf_counter()
                score, spread = ZERO_LABEL.get(scorer)(data, settings, "cpu", cache)
                seconds = time.perf_counter() - started
                candidates = Candidates(score, spread, data.onehot, data.network_ids)
                first, _ = ACQUISITIONS.get("greedy")(candidates, args.k)
                rows.append(
                    {
                        "scorer": scorer,
                        "seed": seed,
                        "kendall": stats.kendalltau(score[known], test[known]).statistic,
                        f"top{args.k}_mean_test": float(np.nanmean(test[first])),
                        f"top{args.k}_best_test": float(np.nanmax(test[first])),
                        "seconds": seconds,
                    }
                )
    table = pl.DataFrame(rows)
    summary = table.group_by("scorer", maintain_order=True).agg(
        pl.len().alias("seeds"),
        *(
            pl.format(
                "{} ± {}", pl.col(c).mean().round(3), pl.col(c).std().fill_null(0).round(3)
            ).alias(c)
            for c in table.columns[2:]
        ),
    )
    with pl.Config(tbl_cols=-1, tbl_width_chars=160):
        print(f"{space}/{dataset}: {len(data)} candidates, {int(known.sum())} with test accuracy")
        print(summary)


if __name__ == "__main__":
    main()
