"""Trees on a benchmark space's encodings, with and without GRAF's path features of the cell graph.

    python benchmarks/graph_path_trees.py SPACE:SIZE[,SIZE...] ... [--seeds 0,1,2,3,4] \
        [--max-set 3] [--target cifar10]
e.g. python benchmarks/graph_path_trees.py nb201:78,156 nb101:100,172 nb301:300

Not a timing. For every space and training size, each seed draws that many labelled
architectures at random (numpy, the seed) and fits `gbdt` on the one-hot code alone and on the
one-hot code plus the path features (`use_graph_features`, sets of up to `--max-set`
operations), both regressing the labels' ranks, without proxies (`parzc.store.encoded`: no
extraction). Prints the Kendall tau of each against test accuracy over the other
architectures, mean ± std over the seeds, in how many seeds the path features win, and the
seconds a fit with them took.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from parzc.evaluation.metrics import rank_metrics
from parzc.predictors import create_predictor
from parzc.store.encoded import encoded_matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spaces", nargs="+", help="SPACE:SIZE[,SIZE...]")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--max-set", type=int, default=3)
    parser.add_argument("--target", default="cifar10")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    for spec in args.spaces:
        space, sizes = spec.split(":")
        cells = encoded_matrix(space, args.target)
        for size in map(int, sizes.split(",")):
            taus: dict[bool, list[float]] = {False: [], True: []}
            seconds = []
            for seed in seeds:
                order = np.random.default_rng(seed).permutation(len(cells))
                train, test = cells.subset(order[:size]), cells.subset(order[size:])
                for paths in taus:
                    started = time.perf_counter()
                    model = create_predictor(
                        "gbdt",
                        use_proxies=False,
                        use_onehot=True,
                        use_graph_features=paths,
                        graph_max_set=args.max_set,
                        target="rank",
                    )
                    model.fit(train, seed=seed)
                    score = model.predict(test)[0]
                    if paths:
                        seconds.append(time.perf_counter() - started)
                    taus[paths].append(rank_metrics(score, test.test_acc)["kendall"])
            wins = sum(p > o for p, o in zip(taus[True], taus[False], strict=True))
            print(
                f"{space} {args.target} n={size} (scored {len(cells) - size}): one-hot "
                f"{np.mean(taus[False]):.3f} ± {np.std(taus[False], ddof=1):.3f}, + path features "
                f"{np.mean(taus[True]):.3f} ± {np.std(taus[True], ddof=1):.3f} (higher in {wins} "
                f"of {len(seeds)} seeds; {np.mean(seconds):.1f} s a fit)",
                flush=True,
            )


if __name__ == "__main__":
    main()
