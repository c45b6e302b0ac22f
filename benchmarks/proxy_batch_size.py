"""Spearman of each NB201 proxy with test accuracy at several proxy-batch sizes and inputs.

    python benchmarks/proxy_batch_size.py --networks 300 --sizes 16 32 64 \
        --layer fisher grasp snip --network epe_nas jacov nwot zen
    python benchmarks/proxy_batch_size.py --networks 300 --sizes 16 \
        --inputs cifar10 imagenet16-120 --targets cifar10 cifar100 imagenet16-120

Canonical networks only (a seeded sample), the same networks and initialisations at every batch
size; summed per-layer proxies and network-level proxies, as NAS-Bench-Suite-Zero reports them.
`--inputs` names the datasets whose proxy inputs are used: the shipped CIFAR-10 images resized to
that dataset's input size and a network built with its class count (what extraction does for a
target without `proxy_dataset`); `--targets` the datasets whose test accuracy each proxy is
scored against. One column per (batch size, inputs, target), and a row for the mean rank of
each `--ensemble` (repeatable; default: `fusion`'s pretraining target); also prints the per-arch
extraction time of each (batch size, inputs) (one thread).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl
import torch
from scipy import stats

from parzc.predictors.fusion import FusionPredictor
from parzc.predictors.proxy_ensembles import column_ranks, mean_rank
from parzc.proxies import LAYER_PROXIES, NETWORK_PROXIES
from parzc.proxies.batch import load_batch
from parzc.proxies.compute import compute_proxies
from parzc.proxies.counting import layer_params
from parzc.proxies.passes import find_layers
from parzc.spaces import get_space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--networks", type=int, default=300)
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--inputs", nargs="+", default=["cifar10"])
    parser.add_argument("--targets", nargs="+", default=["cifar10"])
    parser.add_argument("--ensemble", nargs="+", action="append")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layer", nargs="*", help="per-layer proxies (default: all)")
    parser.add_argument("--network", nargs="*", help="network-level proxies (default: all)")
    args = parser.parse_args()
    ensembles = args.ensemble or [FusionPredictor().pretrain_proxies]
    torch.set_num_threads(1)
    space = get_space("nb201")
    archs = space.archs()
    nets = np.random.default_rng(args.seed).permutation(space.networks())[: args.networks]
    arch_of = dict(archs.select("arch_id", "arch").iter_rows())
    truth = space.accuracy_table().select("dataset", "arch_id", "test_acc")
    accuracies = {
        target: dict(truth.filter(pl.col("dataset") == target).drop("dataset").iter_rows())
        for target in args.targets
    }
    layer = LAYER_PROXIES.names() if args.layer is None else args.layer
    network = NETWORK_PROXIES.names() if args.network is None else args.network
    rows, timings = [], []
    for size in args.sizes:
        for inputs in args.inputs:
            info = space.dataset(inputs)
            batch = load_batch(size, 0, info.input_size, info.num_classes)
            values: dict[str, list[float]] = {}
            started = time.perf_counter()
            for arch_id in nets:
                torch.manual_seed(int(arch_id))
                model = space.build(arch_of[int(arch_id)], inputs)
                result = compute_proxies(
                    model, batch.images, batch.labels, layer, network, info.num_classes
                )
                sizes = np.array([layer_params(m) for _, m in find_layers(model)], dtype=np.float64)
                for name, per_layer in result.per_layer.items():
                    values.setdefault(name, []).append(float(np.sum(per_layer)))
                    if LAYER_PROXIES.get(name).weight_mean:  # the literature's sum over weights
                        values.setdefault(f"{name}:weights", []).append(float(per_layer @ sizes))
                for name, value in result.network.items():
                    values.setdefault(f"net:{name}", []).append(value)
            ms = 1e3 * (time.perf_counter() - started) / len(nets)
            for ensemble in ensembles:
                if all(name in values for name in ensemble):
                    ranks = column_ranks([np.asarray(values[name]) for name in ensemble])
                    values[f"mean rank of {' '.join(ensemble)}"] = list(mean_rank(ranks))
            timings.append(f"batch {size}, {inputs} inputs: {ms:.0f} ms per arch")
            for target in args.targets:
                y = np.array([accuracies[target][int(a)] for a in nets])
                column = (
                    str(size)
                    if len(args.inputs) == len(args.targets) == 1
                    else (f"{size} {inputs}->{target}")
                )
                for name, xs in values.items():
                    x = np.asarray(xs)
                    ok = np.isfinite(x)
                    rho = stats.spearmanr(x[ok], y[ok]).statistic
                    rows.append({"column": column, "proxy": name, "spearman": rho})
    table = pl.DataFrame(rows).pivot("column", index="proxy", values="spearman")
    with pl.Config(
        tbl_rows=-1,
        tbl_cols=-1,
        tbl_width_chars=1000,
        fmt_str_lengths=400,
        tbl_hide_column_data_types=True,
        float_precision=3,
    ):
        print(table.sort(table.columns[1], descending=True))
    for line in timings:
        print(line + " (these proxies, one thread)")


if __name__ == "__main__":
    main()
