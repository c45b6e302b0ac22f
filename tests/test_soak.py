"""Soak test: extract and assemble every NB201 network in one process; memory stays flat.

Slow (about 1 minute per 1,000 archs on one busy CPU thread); excluded by default. Run with
    pytest -m slow tests/test_soak.py -s
PARZC_SOAK_ARCHS (default 9445: every NB201 network) and PARZC_SOAK_SHARD (default 100) shrink it.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import mini_settings, shard_part

from parzc.extract import extract_shard
from parzc.sharding import arch_order, shard_arch_ids, shard_ranges
from parzc.store import Store
from parzc.store.check import check_store

SEED = 0
MARGIN_MB = 64  # allowed growth of peak RSS between shard 5 and shard 30 (and the last shard)


def memory_mb() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MiB: current and peak resident set size."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024  # kB
    return fields["VmRSS"], fields["VmHWM"]


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_soak_extract_and_assemble_all_nb201(tmp_path):
    n_archs = int(os.environ.get("PARZC_SOAK_ARCHS", 9445))
    shard_size = int(os.environ.get("PARZC_SOAK_SHARD", 100))
    ranges = shard_ranges(n_archs, shard_size)
    assert len(ranges) >= 30, "the flatness check needs at least 30 shards"
    settings = mini_settings(
        feature_set="soak",
        layer_proxies=("params", "l2_norm"),
        network_proxies=("params",),
        arch_seed=SEED,
    )
    root = tmp_path / "results"
    threads, level = torch.get_num_threads(), logging.getLogger("parzc").level
    torch.set_num_threads(1)
    logging.getLogger("parzc").setLevel(logging.WARNING)  # no per-arch records kept in memory
    samples = []  # (shard number, archs so far, seconds so far, VmRSS, VmHWM)
    started = time.perf_counter()
    try:
        for number, (start, end) in enumerate(ranges, start=1):
            rel = shard_part(start, end, feature_set="soak")
            ids = shard_arch_ids("nb201", SEED, start, end)
            extract_shard(settings, ids, root / "features" / rel, root / "arch_stats" / rel, "cpu")
            samples.append((number, end + 1, time.perf_counter() - started, *memory_mb()))
            if number in (1, 5, 10, 30) or number % 20 == 0 or number == len(ranges):
                n, archs, secs, rss, hwm = samples[-1]
                print(
                    f"shard {n:4d}  archs {archs:6d}  {secs:7.1f} s  "
                    f"RSS {rss:6.1f} MiB  peak {hwm:6.1f} MiB"
                )
    finally:
        torch.set_num_threads(threads)
        logging.getLogger("parzc").setLevel(level)
    extract_s = time.perf_counter() - started

    t0 = time.perf_counter()
    problems = check_store(root)
    check_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = Store(root).assemble("nb201", "cifar10", ["params", "l2_norm"])
    assemble_s = time.perf_counter() - t0
    rss, hwm = memory_mb()
    print(
        f"{n_archs} archs in {len(ranges)} shards: extraction {extract_s:.0f} s "
        f"({1e3 * extract_s / n_archs:.0f} ms/arch), store check {check_s:.1f} s, "
        f"assembly {assemble_s:.1f} s; after assembly RSS {rss:.0f} MiB, peak {hwm:.0f} MiB"
    )

    assert problems == []
    assert len(data) == n_archs
    assert np.array_equal(np.sort(data.arch_ids), np.sort(arch_order("nb201", SEED)[:n_archs]))
    assert np.isfinite(data.layerwise).all()
    peak = {number: hwm for number, _, _, _, hwm in samples}
    assert peak[30] <= peak[5] + MARGIN_MB, samples[:30]
    assert peak[len(ranges)] <= peak[5] + MARGIN_MB, samples[-5:]
