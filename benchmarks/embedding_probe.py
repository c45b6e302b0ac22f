"""Blend saved fusion fits with a ridge probe on their members' pretrained embeddings.

    python benchmarks/embedding_probe.py RESULTS TARGET LABEL SIZES SEEDS \
        [--ridge 1] [--weights 0.25,0.5] [--protocols strict] [--draw networks] [--train-label val]
e.g. python benchmarks/embedding_probe.py results/nb201_full cifar10 fusion_flow_m3_smooth \
        78,156 0,1,2,3,4

The post-hoc measurement that led to `fusion`'s `probe_weight`, on fits made without it. For
every (size, seed) fit of LABEL in a full-NB201 run, each member's pretrained weights (before
fine-tuning, from the run's pretraining cache) get a ridge probe (`RidgeProbe`, penalty
`--ridge`) of the training labels' ranks, fitted on the split's training networks only; the
members' probes are averaged. The probe's scores and the fit's saved scores (trees and
smoothing included), each z-scored over the scored networks, are blended at each of
`--weights` (the probe's weight) and scored under `--protocols` as the run's metrics are.
Prints per fit the Kendall tau of the fit, the probe and each blend, then each one's mean ± std
over the seeds and in how many seeds it beats the fit.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from dataclasses import replace

import numpy as np
import polars as pl
import torch
from blend_grid import floats
from scipy.stats import rankdata

from parzc.evaluation.predictions import evaluate_predictions
from parzc.evaluation.protocols import PROTOCOLS, training_labels
from parzc.layout import Layout
from parzc.predictors.base import Predictor
from parzc.predictors.fusion import FusionPredictor, RidgeProbe
from parzc.store.matrix import FeatureMatrix
from parzc.training.splits import load_split, split_path


def pretrained(
    fitted: FusionPredictor, layout: Layout, pool: FeatureMatrix, seed: int
) -> FusionPredictor:
    """`fitted`'s members before fine-tuning: its pretraining, reloaded from the run's cache (a
    fit on no labels keeps the pretrained models)."""
    cache = layout.path("pretrained", space=pool.space, dataset=pool.dataset)
    model = replace(fitted, pretrain_cache=cache, device="cpu")
    model.fit(pool.subset(np.zeros(len(pool), dtype=bool)), seed, pool)
    return model


def zscored(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / values.std()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("results", "target", "label", "sizes", "seeds"):
        parser.add_argument(name)
    parser.add_argument("--ridge", type=float, default=1.0)
    parser.add_argument("--weights", type=floats, default=[0.25, 0.5])
    parser.add_argument("--protocols", default="strict")
    parser.add_argument("--draw", default="networks")
    parser.add_argument("--train-label", default="val")
    args = parser.parse_args()
    protocols = {name: PROTOCOLS.get(name) for name in args.protocols.split(",")}
    layout = Layout(args.results)
    data = FeatureMatrix.load(f"{args.results}/matrices-v2/{args.target}.npz")
    networks = data.subset(data.arch_ids == data.network_ids)
    pool = networks.unlabelled()  # the pool train_and_predict fits with
    for size in map(int, args.sizes.split(",")):
        kendall: dict[tuple[str, str], list[float]] = defaultdict(list)
        for seed in map(int, args.seeds.split(",")):
            keys = {"space": "nb201", "dataset": args.target, "predictor": args.label}
            keys |= {"size": size, "seed": seed}
            fitted = Predictor.load(layout.path("model", **keys))
            frame = pl.read_parquet(layout.path("predictions", **keys))
            path = split_path(layout, "nb201", args.target, size, seed, args.draw)
            train_ids, _ = load_split(path)
            train = networks.subset(np.isin(networks.arch_ids, train_ids))
            rows = networks.subset(np.isin(networks.network_ids, frame["network_id"].to_numpy()))
            target = rankdata(training_labels(train, args.train_label))
            members = pretrained(fitted, layout, pool, seed)
            train_in, rows_in = (members._inputs(d, torch.device("cpu")) for d in (train, rows))
            probes = [
                RidgeProbe.fit(member, train_in, target, args.ridge, members.eval_seed)
                for member in members._models
            ]
            probe = zscored(
                np.mean([zscored(p.scores(rows_in, members.eval_seed)) for p in probes], axis=0)
            )
            saved = dict(zip(frame["network_id"].to_list(), frame["score"].to_list(), strict=True))
            fit = zscored(np.array([saved[n] for n in rows.network_ids.tolist()]))
            variants = {"fit": fit, "probe": probe}
            variants |= {f"blend {w}": (1 - w) * fit + w * probe for w in args.weights}
            line = []
            for name, score in variants.items():
                by_network = dict(zip(rows.network_ids.tolist(), score, strict=True))
                rescored = frame.with_columns(
                    score=pl.col("network_id").replace_strict(by_network, return_dtype=pl.Float64)
                )
                for row in evaluate_predictions(rescored, protocols).iter_rows(named=True):
                    kendall[row["protocol"], name].append(row["kendall"])
                    line.append(f"{row['protocol']} {name} {row['kendall']:.4f}")
            print(f"{args.label} {args.target} n={size} seed={seed}: {', '.join(line)}", flush=True)
        for (protocol, name), taus in sorted(kendall.items()):
            above = sum(t > f for t, f in zip(taus, kendall[protocol, "fit"], strict=True))
            spread = np.std(taus, ddof=1) if len(taus) > 1 else 0.0
            print(
                f"{args.label} {args.target} {protocol} n={size} {name}: {np.mean(taus):.4f} ± "
                f"{spread:.4f} ({len(taus)} seeds, above the fit in {above})",
                flush=True,
            )


if __name__ == "__main__":
    main()
