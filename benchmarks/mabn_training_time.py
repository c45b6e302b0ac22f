"""Seconds per epoch of MABN (token mixing / channel-only) and the MLP baseline, side by side.

    python benchmarks/mabn_training_time.py --archs 1563 --epochs 3

Trains on NB201-shaped inputs (3 proxies x 98 layers) with batch 10 on the CPU, one thread, and
projects the time of the paper's 200 epochs.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from parzc.predictors import create_predictor
from parzc.store.matrix import FeatureMatrix


def synthetic(n: int, seed: int = 0) -> FeatureMatrix:
    rng = np.random.default_rng(seed)
    layerwise = rng.random((n, 3, 98)).astype(np.float32)
    target = layerwise.sum(axis=(1, 2)) + rng.normal(0, 1, n)
    return FeatureMatrix(
        space="nb201",
        dataset="cifar10",
        target="cifar10",
        arch_ids=np.arange(n, dtype=np.int32),
        network_ids=np.arange(n, dtype=np.int32),
        proxies=["grad_norm", "snip", "synflow"],
        layerwise=layerwise,
        layerwise_raw=layerwise.astype(np.float64),
        aggregate_names=[],
        aggregates=np.zeros((n, 0)),
        onehot=None,
        val_acc=target,
        test_acc=target,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--archs", type=int, default=1563)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = synthetic(args.archs)
    variants = {
        "mabn (token mixing)": ("mabn", {}),
        "mabn (channel only)": ("mabn", {"token_mixing": False}),
        "mlp": ("mlp", {}),
    }
    rows = []
    for label, (model, params) in variants.items():
        report = create_predictor(model, epochs=args.epochs, device="cpu", **params).fit(data, 0)
        rows.append((label, report["seconds_per_epoch"]))
    base = rows[0][1]
    print(f"{'model':22} {'s/epoch':>8} {'200 epochs (min)':>17} {'ratio':>6}")
    for label, per_epoch in rows:
        print(f"{label:22} {per_epoch:8.2f} {per_epoch * 200 / 60:17.1f} {per_epoch / base:6.2f}")


if __name__ == "__main__":
    main()
