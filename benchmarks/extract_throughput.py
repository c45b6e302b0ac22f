"""Shared-pass extraction vs a naive one-deepcopy-per-proxy extractor, side by side in one run.

    python benchmarks/extract_throughput.py --archs 12 --threads 1 --rounds 3

Each mode runs in its own child process (so its peak RSS is its own) over the same NB201
architectures, batch and proxies, after one untimed warm-up network; the two modes alternate
for `--rounds` rounds so that a drift in the machine's speed hits both alike. Prints archs/s of
both (all rounds together), their ratio, each round's ratio with their mean and standard error,
and peak RSS. `--allocator system` leaves glibc's allocator policy as it is instead of applying
`parzc.allocator.retain_freed_memory` as extraction jobs do.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

from parzc.allocator import retain_freed_memory
from parzc.proxies import LAYER_PROXIES, NETWORK_PROXIES
from parzc.proxies.batch import load_batch
from parzc.proxies.compute import compute_proxies
from parzc.sharding import shard_arch_ids
from parzc.spaces import get_space


def run(mode: str, n_archs: int, threads: int, allocator: str) -> dict:
    if allocator == "retain":
        retain_freed_memory()  # as an extraction job does, in both modes
    torch.set_num_threads(threads)
    space = get_space("nb201")
    archs = dict(space.archs().select("arch_id", "arch").iter_rows())
    batch = load_batch(16, 0)
    ids = shard_arch_ids("nb201", 0, 0, n_archs)  # the first is a warm-up, not timed
    layer, network = LAYER_PROXIES.names(), NETWORK_PROXIES.names()

    def extract(arch_id: int) -> None:
        torch.manual_seed(arch_id)
        model = space.build(archs[arch_id], "cifar10")
        if mode == "shared":
            compute_proxies(model, batch.images, batch.labels, layer, network, 10)
        else:  # the zero-cost-nas habit: a fresh copy of the network for every measure
            for name in layer:
                compute_proxies(copy.deepcopy(model), batch.images, batch.labels, [name], [], 10)
            for name in network:
                compute_proxies(copy.deepcopy(model), batch.images, batch.labels, [], [name], 10)

    extract(int(ids[0]))  # one-time costs of a fresh process (kernels, caches)
    started = time.perf_counter()
    for arch_id in ids[1:]:
        extract(int(arch_id))
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "mode": mode,
        "archs": n_archs,
        "seconds": seconds,
        "archs_per_s": n_archs / seconds,
        "peak_rss_mb": peak_mb,
    }


def child(mode: str, args: argparse.Namespace) -> dict:
    """One mode's run in a fresh process."""
    flags = ["--mode", mode, "--archs", str(args.archs), "--threads", str(args.threads)]
    flags += ["--allocator", args.allocator]
    out = subprocess.run(
        [sys.executable, __file__, *flags], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--archs", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--allocator", choices=("retain", "system"), default="retain")
    parser.add_argument("--mode", choices=("shared", "naive"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run(args.mode, args.archs, args.threads, args.allocator)))
        return
    runs: dict[str, list[dict]] = {"shared": [], "naive": []}
    for _ in range(args.rounds):
        for mode, done in runs.items():
            done.append(child(mode, args))
    print(f"allocator: {args.allocator}, {args.rounds} rounds, one process per mode and round")
    print(f"{'mode':8} {'archs':>5} {'seconds':>8} {'archs/s':>8} {'peak RSS MB':>12}")
    speed = {}
    for mode, done in runs.items():
        archs, seconds = sum(r["archs"] for r in done), sum(r["seconds"] for r in done)
        speed[mode] = archs / seconds
        peak = max(r["peak_rss_mb"] for r in done)
        print(f"{mode:8} {archs:5d} {seconds:8.1f} {speed[mode]:8.3f} {peak:12.0f}")
    ratio = speed["shared"] / speed["naive"]
    print(f"speed-up of shared passes over one-copy-per-proxy: {ratio:.2f}x")
    # each round times both modes back to back; the spread of the rounds' ratios is the drift
    pairs = zip(runs["shared"], runs["naive"], strict=True)
    rounds = [naive["seconds"] / shared["seconds"] for shared, naive in pairs]
    spread = statistics.stdev(rounds) / len(rounds) ** 0.5 if len(rounds) > 1 else float("nan")
    shown = ", ".join(f"{r:.2f}x" for r in rounds)
    print(f"per round: {shown} (mean {statistics.mean(rounds):.2f}x, standard error {spread:.2f})")


if __name__ == "__main__":
    main()
