"""Spearman of each NB201 proxy with CIFAR-10 test accuracy at several proxy-batch sizes.

    python benchmarks/proxy_batch_size.py --networks 300 --sizes 16 32 64

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
from parzc.spaces import get_space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--networks", type=int, default=300)
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = get_space("nb201")
    archs = space.archs()
    nets = np.random.default_rng(args.seed).permutation(space.networks())[: args.networks]
    arch_of = dict(archs.select("arch_id", "arch").iter_rows())
    truth = space.accuracy_table().filter(pl.col("dataset") == "cifar10")
    acc = dict(truth.select("arch_id", "test_acc").iter_rows())
    layer, network = LAYER_PROXIES.names(), NETWORK_PROXIES.names()
    rows = []
    for size in args.sizes:
        batch = load_batch(size, 0)
        values: dict[str, list[float]] = {}
        started = time.perf_counter()
        for arch_id in nets:
            torch.manual_seed(int(arch_id))
            model = space.build(arch_of[int(arch_id)], "cifar10")
            result = compute_proxies(model, batch.images, batch.labels, layer, network, 10)
            for name, per_layer in result.per_layer.items():
                values.setdefault(name, []).append(float(np.sum(per_layer)))
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
        print(f"batch {size}: {ms:.0f} ms per arch (every proxy, one thread)")


if __name__ == "__main__":
    main()
