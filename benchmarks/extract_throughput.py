"""Shared-pass extraction vs a naive one-deepcopy-per-proxy extractor, side by side in one run.

    python benchmarks/extract_throughput.py --archs 12 --threads 1

Each mode runs in its own child process (so its peak RSS is its own) over the same NB201
architectures, batch and proxies; prints archs/s of both, their ratio, and peak RSS.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import time

import torch

from parzc.proxies import LAYER_PROXIES, NETWORK_PROXIES
from parzc.proxies.batch import load_batch
from parzc.proxies.compute import compute_proxies
from parzc.sharding import shard_arch_ids
from parzc.spaces import get_space


def run(mode: str, n_archs: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    space = get_space("nb201")
    archs = dict(space.archs().select("arch_id", "arch").iter_rows())
    batch = load_batch(16, 0)
    ids = shard_arch_ids("nb201", 0, 0, n_archs - 1)
    layer, network = LAYER_PROXIES.names(), NETWORK_PROXIES.names()
    started = time.perf_counter()
    for arch_id in ids:
        torch.manual_seed(int(arch_id))
        model = space.build(archs[int(arch_id)], "cifar10")
        if mode == "shared":
            compute_proxies(model, batch.images, batch.labels, layer, network, 10)
        else:  # the zero-cost-nas habit: a fresh copy of the network for every measure
            for name in layer:
                compute_proxies(copy.deepcopy(model), batch.images, batch.labels, [name], [], 10)
            for name in network:
                compute_proxies(copy.deepcopy(model), batch.images, batch.labels, [], [name], 10)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "mode": mode,
        "archs": n_archs,
        "seconds": seconds,
        "archs_per_s": n_archs / seconds,
        "peak_rss_mb": peak_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--archs", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mode", choices=("shared", "naive"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run(args.mode, args.archs, args.threads)))
        return
    results = {}
    for mode in ("shared", "naive"):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--mode",
                mode,
                "--archs",
                str(args.archs),
                "--threads",
                str(args.threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        results[mode] = json.loads(out.strip().splitlines()[-1])
    print(f"{'mode':8} {'archs':>5} {'seconds':>8} {'archs/s':>8} {'peak RSS MB':>12}")
    for r in results.values():
        print(
            f"{r['mode']:8} {r['archs']:5d} {r['seconds']:8.1f} {r['archs_per_s']:8.3f} "
            f"{r['peak_rss_mb']:12.0f}"
        )
    ratio = results["shared"]["archs_per_s"] / results["naive"]["archs_per_s"]
    print(f"speed-up of shared passes over one-copy-per-proxy: {ratio:.2f}x")


if __name__ == "__main__":
    main()
