"""What does one round of the ask / tell loop cost on full NB201? Goal: at most 60 s on 2 cores.

    python benchmarks/loop_round_cost.py [--predictors fusion fusion_no_slots gbdt_onehot]
                                         [--repeats 5] [--labels 50] [--batch 10]

A round as a user pays it: the loop's features file (`loop_features`, the assembled matrix of
all 15,625 cells of the 9,445 networks of results/nb201_full, CIFAR-10 proxies, the config's
train/features; assembled once into benchmarks/out/loop_matrix_nb201_cifar10.npz) is loaded,
then `parzc.loop.ask.propose` refits the loop predictor on `--labels` labels, scores every
cell (each network once) and runs the acquisition for a batch of `--batch`. Each repetition
draws other labels (the canonical cells of random networks, their recorded CIFAR-10 validation
accuracy; repetition r uses seed r) and keeps the fit seed 0, so fusion's pretraining is read
from its cache (benchmarks/out/round_cost_pretrained) as in every round after the loop's
first; the first fit of each fusion setting, with an empty cache (pretraining included), is
reported on its own. Prints the load time, the uncached first round and the median (min, max)
of the repetitions per predictor (a train/predictors entry of `--config`; `--fusion-params`
overrides fusion's params), and writes benchmarks/out/loop_round_cost.csv.

`--threads` (default 1) bounds torch's and OpenMP's threads: on a 2-core machine that other
jobs keep busy, sklearn's OpenMP threads spin against them, and one gbdt fit on 50 labels took
5-15 s with the default threads against 0.2 s with one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import polars as pl
from loop_vs_baselines import predictor_entry
from threadpoolctl import threadpool_limits

from parzc.config import load
from parzc.loop.ask import LoopSettings, propose
from parzc.loop.simulate import ground_truth
from parzc.store.matrix import FeatureMatrix

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"


def draw_labels(data: FeatureMatrix, val: np.ndarray, n: int, seed: int) -> pl.DataFrame:
    """`n` random networks' canonical cells with their validation accuracy."""
    canonical = np.flatnonzero(data.arch_ids == data.network_ids)
    rows = np.random.default_rng(seed).choice(canonical, n, replace=False)
    return pl.DataFrame(
        {"arch_id": data.arch_ids[rows], "val_acc": val[rows], "test_acc": [None] * n},
        schema_overrides={"test_acc": pl.Float64},
    )


def timed_round(data, labels, settings, batch: int, pretrained: Path) -> float:
    started = time.perf_counter()
    proposals = propose(data, labels, set(), batch, settings, "cpu", str(pretrained))
    seconds = time.perf_counter() - started
    if len(proposals) != batch:
        raise RuntimeError(f"{len(proposals)} proposals instead of {batch}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="config/nb201_full.yaml")
    parser.add_argument(
        "--features",
        type=Path,
        default=OUT / "loop_matrix_nb201_cifar10.npz",
        help="the assembled matrix (python benchmarks/loop_vs_baselines.py writes it)",
    )
    parser.add_argument(
        "--predictors", nargs="+", default=["fusion", "fusion_no_slots", "gbdt_onehot"]
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--labels", type=int, default=50)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch (fusion) and OpenMP (trees) threads"
    )
    parser.add_argument("--fusion-params", default="{}", help="JSON merged into fusion's params")
    parser.add_argument("--acquisition", default="diverse")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    config = load(args.config)
    threadpool_limits(args.threads)

    started = time.perf_counter()
    data = FeatureMatrix.load(args.features)
    load_s = time.perf_counter() - started
    networks = len(np.unique(data.network_ids))
    print(f"loaded {len(data)} cells of {networks} networks in {load_s:.2f} s", flush=True)
    val, _ = ground_truth(data)
    data = data.unlabelled()  # the loop's features file holds no label
    rows = []
    for label in args.predictors:
        entry = predictor_entry(config, label)
        params = dict(entry.get("params", {}))
        if entry["model"] == "fusion":
            params |= {"num_threads": args.threads, **json.loads(args.fusion_params)}
        settings = LoopSettings(label, entry["model"], params, args.acquisition, seed=0)
        cache = args.out / "round_cost_pretrained" / label
        first = None
        if entry["model"] == "fusion":
            shutil.rmtree(cache, ignore_errors=True)
            labels = draw_labels(data, val, args.labels, 0)
            first = timed_round(data, labels, settings, args.batch, cache)
            print(f"{label}: first round (pretraining, uncached) {first:.1f} s", flush=True)
        seconds = []
        for repeat in range(args.repeats):
            labels = draw_labels(data, val, args.labels, repeat)
            seconds.append(timed_round(data, labels, settings, args.batch, cache))
            print(f"{label}: round {repeat} {seconds[-1]:.1f} s", flush=True)
        median = statistics.median(seconds)
        rows.append(
            {
                "predictor": label,
                "params": json.dumps(params, sort_keys=True),
                "labels": args.labels,
                "batch": args.batch,
                "load_s": round(load_s, 3),
                "first_round_s": None if first is None else round(first, 2),
                "median_round_s": round(median, 2),
                "min_round_s": round(min(seconds), 2),
                "max_round_s": round(max(seconds), 2),
                "repeats": args.repeats,
                "within_60s": load_s + median <= 60.0,
            }
        )
        print(
            f"{label}: median {median:.1f} s (min {min(seconds):.1f}, max {max(seconds):.1f}) "
            f"+ load {load_s:.1f} s per round",
            flush=True,
        )
    table = pl.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.write_csv(args.out / "loop_round_cost.csv")
    with pl.Config(tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=60):
        print(table.drop("params"))


if __name__ == "__main__":
    main()
