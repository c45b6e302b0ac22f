"""Kendall tau of network-level proxies with test accuracy on the labelled archs of any space.

    python benchmarks/proxy_spaces.py nb101:100 nb301:60 --proxies meco nwot params

For each SPACE:N, the first N archs of the space's pool that carry a test accuracy on its first
shipped dataset, each network initialised with its arch_id as seed and scored on the shipped
CIFAR-10 batch (16 images, seed 0, at the dataset's input size) as extraction would; prints the
Kendall tau of each proxy and the seconds a network took for all of them (one thread).
"""

from __future__ import annotations

import argparse
import time

import polars as pl
import torch
from scipy import stats

from parzc.proxies.batch import load_batch
from parzc.proxies.compute import compute_proxies
from parzc.spaces import get_space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spaces", nargs="+", metavar="SPACE:N")
    parser.add_argument("--proxies", nargs="+", default=["meco", "nwot", "jacov", "params"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| space | dataset | archs | " + " | ".join(args.proxies) + " | s / network |")
    print("|---" * (len(args.proxies) + 4) + "|")
    for entry in args.spaces:
        name, _, count = entry.partition(":")
        space = get_space(name)
        truth = space.accuracy_table()
        dataset = truth["dataset"][0]
        accuracy = dict(
            truth.filter(pl.col("dataset") == dataset)[["arch_id", "test_acc"]].iter_rows()
        )
        archs = space.archs().filter(pl.col("arch_id").is_in(list(accuracy)))[: int(count)]
        info = space.dataset(dataset)
        batch = load_batch(16, 0, info.input_size, info.num_classes)
        values: dict[str, list[float]] = {proxy: [] for proxy in args.proxies}
        started = time.perf_counter()
        for arch_id, arch in archs.select("arch_id", "arch").iter_rows():
            torch.manual_seed(arch_id)
            model = space.build(arch, dataset)
            result = compute_proxies(
                model, batch.images, batch.labels, [], args.proxies, info.num_classes
            )
            for proxy in args.proxies:
                values[proxy].append(result.network[proxy])
        seconds = (time.perf_counter() - started) / len(archs)
        truth_values = [accuracy[a] for a in archs["arch_id"]]
        taus = [stats.kendalltau(values[p], truth_values).statistic for p in args.proxies]
        cells = " | ".join(f"{tau:.3f}" for tau in taus)
        print(f"| {name} | {dataset} | {len(archs)} | {cells} | {seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
