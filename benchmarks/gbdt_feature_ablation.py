"""Which inputs carry the tree baseline? GBDT Kendall tau per input set, sizes and seeds.

    python benchmarks/gbdt_feature_ablation.py --results results/nb201_1k --sizes 78 156 469

Reads an existing NB201 store (e.g. the one config/nb201_1k.yaml builds), draws the pipeline's
splits (`make_split`, same seeds) and fits the `gbdt` predictor on four input sets: the one-hot
op encoding alone, the three default proxies summed over layers, every stored aggregate
(layer sums and network proxies), and every aggregate plus the one-hot encoding. Kendall tau is
taken on the held-out valid cells, as in issue #4's anchors (LightGBM on 13 Suite-Zero proxies +
one-hot; one-hot alone 0.385 / 0.452 / 0.615 at 78 / 156 / 469 on CIFAR-10). An investigation,
not a timing: it tells whether a gap to the anchors comes from our features or the protocol.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from parzc.features import FeatureMatrix
from parzc.metrics import rank_metrics
from parzc.predictors import create_predictor
from parzc.splits import make_split
from parzc.store import Store

DEFAULT_PROXIES = ["grad_norm", "snip", "synflow"]


def input_sets(data: FeatureMatrix) -> dict[str, tuple[FeatureMatrix, bool]]:
    """label -> (matrix whose aggregates are that set, use the one-hot encoding)."""

    def only(columns: list[str]) -> FeatureMatrix:
        keep = [data.aggregate_names.index(c) for c in columns]
        return dataclasses.replace(
            data, aggregate_names=columns, aggregates=data.aggregates[:, keep]
        )

    return {
        "one-hot only": (only([]), True),
        "3 proxy sums": (only(DEFAULT_PROXIES), False),
        "all aggregates": (data, False),
        "all aggregates + one-hot": (data, True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", default="results/nb201_1k")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--sizes", type=int, nargs="+", default=[78, 156, 469])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--min-samples-leaf", type=int, help="default: the gbdt predictor's")
    args = parser.parse_args()
    data = Store(args.results).assemble("nb201", args.dataset, DEFAULT_PROXIES, onehot=True)
    print(f"{len(data)} archs, {len(data.aggregate_names)} aggregates: {data.aggregate_names}")
    print(f"{'inputs':26}" + "".join(f"{'n=' + str(n):>16}" for n in args.sizes))
    for label, (matrix, use_onehot) in input_sets(data).items():
        cells = []
        for size in args.sizes:
            taus = []
            for seed in args.seeds:
                is_train = make_split(matrix.arch_ids, size, seed)["split"].to_numpy() == "train"
                order = np.argsort(matrix.arch_ids)  # make_split sorts the pool
                train = matrix.subset(order[is_train])
                test = matrix.subset(order[~is_train])
                leaf = (
                    {}
                    if args.min_samples_leaf is None
                    else {"min_samples_leaf": args.min_samples_leaf}
                )
                model = create_predictor("gbdt", use_onehot=use_onehot, **leaf)
                model.fit(train, seed=seed)
                score, _ = model.predict(test)
                taus.append(rank_metrics(score[test.valid], test.test_acc[test.valid])["kendall"])
            cells.append(f"{np.mean(taus):.3f} +- {np.std(taus):.3f}")
        print(f"{label:26}" + "".join(f"{c:>16}" for c in cells))


if __name__ == "__main__":
    main()
