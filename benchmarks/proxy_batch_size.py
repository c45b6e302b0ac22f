"""Spearman of each NB201 proxy with CIFAR-10 test accuracy at several proxy-batch sizes.

    python benchmarks/proxy_batch_size.py --networks 300 --sizes 16 32 64 \
        --layer fisher grasp snip --network epe_nas jacov nwot zen

Canonical networks only (a seeded sample), the same networks and initialisations at every batch
size; summed per-layer proxies and network-level proxies, as NAS-Bench-Suite-Zero reports them.
Also prints the per-arch extraction time of each size (one thread).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl
import torch
from scipy import stats

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
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layer", nargs="*", help="per-layer proxies (default: all)")
    parser.add_argument("--network", nargs="*", help="network-level proxies (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = get_space("nb201")
    archs = space.archs()
    nets = np.random.default_rng(args.seed).permutation(space.networks())[: args.networks]
    arch_of = dict(archs.select("arch_id", "arch").iter_rows())
    truth = space.accuracy_table().filter(pl.col("dataset") == "cifar10")
    acc = dict(truth.select("arch_id", "test_acc").iter_rows())
    layer = LAYER_PROXIES.names() if args.layer is None else args.layer
    network = NETWORK_PROXIES.names() if args.network is None else args.network
    rows = []
    for size in args.sizes:
        batch = load_batch(size, 0)
        values: dict[str, list[float]] = {}
        started = time.perf_counter()
        for arch_id in nets:
            torch.manual_seed(int(arch_id))
            model = space.build(arch_of[int(arch_id)], "cifar10")
            result = compute_proxies(model, batch.images, batch.labels, layer, network, 10)
            sizes = np.array([layer_params(m) for _, m in find_layers(model)], dtype=np.float64)
            for name, per_layer in result.per_layer.items():
                values.setdefault(name, []).append(float(np.sum(per_layer)))
                if LAYER_PROXIES.get(name).weight_mean:  # the literature's sum over weights
                    values.setdefault(f"{name}:weights", []).append(float(per_layer @ sizes))
            for name, value in result.network.items():
                values.setdefault(f"net:{name}", []).append(value)
        ms = 1e3 * (time.perf_counter() - started) / len(nets)
        y = np.array([acc[int(a)] for a in nets])
        for name, xs in values.items():
            x = np.asarray(xs)
            ok = np.isfinite(x)
            rho = stats.spearmanr(x[ok], y[ok]).statistic
            rows.append({"batch": size, "proxy": name, "spearman": rho, "ms_per_arch": ms})
    table = pl.DataFrame(rows).pivot("batch", index="proxy", values="spearman")
    with pl.Config(tbl_rows=-1, float_precision=3):
        print(table.sort(str(args.sizes[0]), descending=True))
    for size in args.sizes:
        ms = next(r["ms_per_arch"] for r in rows if r["batch"] == size)
        print(f"batch {size}: {ms:.0f} ms per arch (these proxies, one thread)")


if __name__ == "__main__":
    main()
