"""How well proxy ensembles rank a full-NB201 run's canonical networks before any label.

For each target, Kendall tau and Spearman of every named ensemble (the mean rank of its
aggregate columns, `parzc.predictors.proxy_ensembles`, as `fusion`'s pretraining target
combines them) and of each single column with the target's test accuracy, over the store's
canonical networks (9,445 on full NB201).

    python benchmarks/proxy_ensembles.py results/nb201_full cifar10,cifar100,imagenet16-120 \
        target=net:nwot,net:jacov,synflow,net:params,net:flops \
        target+meco=net:nwot,net:jacov,synflow,net:params,net:flops,net:meco

Each ENSEMBLE is NAME=COLUMN,COLUMN,...; `--singles` adds one row per column named in them.
The matrices come from the run's `matrices-v2/` cache (assembled there when missing).
"""

from __future__ import annotations

import argparse

import numpy as np
from fusion_protocol import run_matrix
from scipy import stats

from parzc.predictors.proxy_ensembles import proxy_ensemble


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("targets")
    parser.add_argument("ensembles", nargs="+", metavar="NAME=COLUMN,...")
    parser.add_argument("--singles", action="store_true")
    args = parser.parse_args()
    ensembles = {}
    for entry in args.ensembles:
        name, _, columns = entry.partition("=")
        ensembles[name] = columns.split(",")
    if args.singles:
        for column in dict.fromkeys(c for cols in list(ensembles.values()) for c in cols):
            ensembles[column] = [column]
    print("| ensemble | target | networks | Kendall | Spearman |\n|---|---|---|---|---|")
    for target in args.targets.split(","):
        data = run_matrix(args.results, target)
        networks = data.subset(data.arch_ids == data.network_ids)
        truth = np.asarray(networks.test_acc, dtype=np.float64)
        for name, columns in ensembles.items():
            score = proxy_ensemble(networks, columns)
            tau = stats.kendalltau(score, truth).statistic
            rho = stats.spearmanr(score, truth).statistic
            print(f"| {name} | {target} | {len(truth)} | {tau:.3f} | {rho:.3f} |", flush=True)


if __name__ == "__main__":
    main()
