"""Where does a predictor's ranking come from? Kendall tau per input set / variant, sizes, seeds.

    python benchmarks/predictor_ablation.py gbdt --results results/nb201_1k --sizes 78 156 469
    python benchmarks/predictor_ablation.py mabn --sizes 78 469 --seeds 0 1 2 --only global_log
    python benchmarks/predictor_ablation.py mabn --results results/spaces_full --space nb101 \
        --sizes 172

Reads an existing store (NB201 by default, e.g. the one config/nb201_1k.yaml builds), draws
the pipeline's splits (`make_split`, same seeds), fits each variant on validation accuracy and
prints the mean and std of Kendall tau on the held-out networks (the store holds canonical
networks only), as for the reference anchors
(LightGBM on 13 Suite-Zero proxies + one-hot: 0.683 / 0.768 / 0.814 at 78 / 156 / 469 on
CIFAR-10; one-hot alone 0.385 / 0.452 / 0.615). Suites:

- gbdt: the tree baseline on the one-hot encoding alone, the three default proxies summed over
  layers, every stored aggregate (layer sums and network proxies), and every aggregate + one-hot.
- mabn: MABN with ParZC's within-arch min-max layer vectors (alone and + one-hot), with
  signed-log global scaling, with both, with both + one-hot; the tree baseline on every
  aggregate + one-hot as reference.

An investigation, not a timing: it tells whether a gap comes from the features, the scaling or
the protocol.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from parzc.evaluation.metrics import rank_metrics
from parzc.predictors import create_predictor
from parzc.store import Store
from parzc.store.matrix import FeatureMatrix
from parzc.training.splits import make_split

DEFAULT_PROXIES = ["grad_norm", "snip", "synflow"]

# label -> (predictor, params, which aggregate columns it sees: None = all)
Variant = tuple[str, dict[str, Any], list[str] | None]


def gbdt_suite(epochs: int) -> dict[str, Variant]:
    return {
        "gbdt one-hot only": ("gbdt", {"use_onehot": True}, []),
        "gbdt 3 proxy sums": ("gbdt", {}, DEFAULT_PROXIES),
        "gbdt all aggregates": ("gbdt", {}, None),
        "gbdt all aggregates + one-hot": ("gbdt", {"use_onehot": True}, None),
    }


def mabn_suite(epochs: int) -> dict[str, Variant]:
    mabn = {"epochs": epochs, "device": "cpu"}
    return {
        "mabn within_arch (ParZC)": ("mabn", mabn, None),
        "mabn within_arch + one-hot": ("mabn", {**mabn, "use_onehot": True}, None),
        "mabn global_log": ("mabn", {**mabn, "scaling": "global_log"}, None),
        "mabn both": ("mabn", {**mabn, "scaling": "both"}, None),
        "mabn both + one-hot": ("mabn", {**mabn, "scaling": "both", "use_onehot": True}, None),
        "gbdt all aggregates + one-hot": ("gbdt", {"use_onehot": True}, None),
    }


SUITES: dict[str, Callable[[int], dict[str, Variant]]] = {"gbdt": gbdt_suite, "mabn": mabn_suite}


def with_aggregates(data: FeatureMatrix, columns: list[str] | None) -> FeatureMatrix:
    if columns is None:
        return data
    keep = [data.aggregate_names.index(c) for c in columns]
    return dataclasses.replace(data, aggregate_names=columns, aggregates=data.aggregates[:, keep])


def held_out_kendall(
    data: FeatureMatrix, model: str, params: dict[str, Any], size: int, seed: int
) -> float:
    """Fit on the pipeline's split (size, seed); Kendall tau on the held-out networks."""
    is_train = make_split(data.arch_ids, size, seed)["split"].to_numpy() == "train"
    order = np.argsort(data.arch_ids)  # make_split sorts the pool
    train, test = data.subset(order[is_train]), data.subset(order[~is_train])
    predictor = create_predictor(model, **params)
    predictor.fit(train, seed=seed)
    score, _ = predictor.predict(test)
    return rank_metrics(score, test.test_acc)["kendall"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("suite", choices=sorted(SUITES))
    parser.add_argument("--results", default="results/nb201_1k")
    parser.add_argument("--space", default="nb201")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--sizes", type=int, nargs="+", default=[78, 156, 469])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=100, help="torch predictors' epochs")
    parser.add_argument(
        "--only", nargs="+", help="run only the variants whose label contains one of these"
    )
    args = parser.parse_args()
    data = Store(args.results).assemble(args.space, args.dataset, DEFAULT_PROXIES, onehot=True)
    print(f"{len(data)} archs, {len(data.aggregate_names)} aggregates: {data.aggregate_names}")
    print(f"{'variant':32}" + "".join(f"{'n=' + str(n):>16}" for n in args.sizes), flush=True)
    for label, (model, params, columns) in SUITES[args.suite](args.epochs).items():
        if args.only and not any(part in label for part in args.only):
            continue
        matrix = with_aggregates(data, columns)
        cells = []
        for size in args.sizes:
            taus = [held_out_kendall(matrix, model, params, size, s) for s in args.seeds]
            cells.append(f"{np.mean(taus):.3f} +- {np.std(taus):.3f}")
        print(f"{label:32}" + "".join(f"{c:>16}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
