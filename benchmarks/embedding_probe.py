"""Blend saved fusion fits with a ridge probe on their members' pretrained embeddings.

    python benchmarks/embedding_probe.py RESULTS TARGET LABEL SIZES SEEDS \
        [--ridge 1] [--weights 0.25,0.5] [--rbf 2:0.3,2:1] [--protocols strict]
e.g. python benchmarks/embedding_probe.py results/nb201_full cifar10 fusion_flow_m3_smooth \
        78,156 0,1,2,3,4

The post-hoc measurement that led to `fusion`'s `probe_weight`, on fits made without it. For
every (size, seed) fit of LABEL in a full-NB201 run, each member's pretrained weights (before
fine-tuning, from the run's pretraining cache) get a ridge probe (`RidgeProbe`, penalty
`--ridge`) of the training labels' ranks (the label and split the fit's predictions file
records), fitted on the split's training networks only; the
members' probes are averaged. With `--rbf LENGTH:PENALTY,...` kernel ridge probes with an RBF
kernel (scikit-learn's `KernelRidge`, length scale LENGTH times the square root of the embedding's
width, on the same standardised embedding) are scored next to the linear one, each blended as it
is. The probe's scores and the fit's saved scores (trees and
smoothing included), each z-scored over the scored networks, are blended at each of
`--weights` (the probe's weight) and scored under `--protocols` as the run's metrics are.
Prints per fit the Kendall tau of the fit, the probe and each blend, then each one's mean ± std
over the seeds and in how many seeds it beats the fit.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch
from blend_grid import floats
from saved_fits import Run, add_fit_arguments, zscored
from scipy.stats import rankdata
from sklearn.kernel_ridge import KernelRidge

from parzc.evaluation.protocols import training_labels
from parzc.predictors.finetuning import RidgeProbe


def rbf_scores(
    x_train: np.ndarray, x_rows: np.ndarray, target: np.ndarray, length: float, penalty: float
) -> np.ndarray:
    """The rows' scores by an RBF kernel ridge of the centred `target` on standardised
    embeddings (`RidgeProbe.standardised`), length scale `length` x the square root of their
    width."""
    gamma = 1.0 / (length**2 * x_train.shape[1])
    model = KernelRidge(alpha=penalty, kernel="rbf", gamma=gamma)
    return model.fit(x_train, target - target.mean()).predict(x_rows)


def kernels(text: str) -> list[tuple[float, float]]:
    """Comma-separated LENGTH:PENALTY pairs, e.g. "2:0.3,2:1"."""
    return [tuple(map(float, pair.split(":"))) for pair in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_fit_arguments(parser)
    parser.add_argument("--ridge", type=float, default=1.0)
    parser.add_argument("--weights", type=floats, default=[0.25, 0.5])
    parser.add_argument("--rbf", type=kernels, default=[])
    args = parser.parse_args()
    run = Run.of(args)
    for size in map(int, args.sizes.split(",")):
        kendall: dict[tuple[str, str], list[float]] = defaultdict(list)
        for seed, fit in run.fits(args, size):
            target = rankdata(training_labels(fit.train, fit.train_label))
            members = fit.pretrained(run.layout, run.pool, seed)
            train_in, rows_in = (
                members._inputs(d, torch.device("cpu")) for d in (fit.train, fit.rows)
            )
            probes = [
                RidgeProbe.fit(member, train_in, target, args.ridge, members.eval_seed)
                for member in members._models
            ]
            embedded = [  # each probe's standardised training and scored embeddings, once
                tuple(p.standardised(d, members.eval_seed) for d in (train_in, rows_in))
                for p in probes
            ]
            linear = [
                zscored(x_rows @ p.weights) for p, (_, x_rows) in zip(probes, embedded, strict=True)
            ]
            probes_by_name = {"probe": zscored(np.mean(linear, axis=0))}
            for length, penalty in args.rbf:
                scores = [zscored(rbf_scores(*x, target, length, penalty)) for x in embedded]
                probes_by_name[f"rbf {length}:{penalty}"] = zscored(np.mean(scores, axis=0))
            saved = zscored(fit.saved_scores())
            variants = {"fit": saved}
            for name, scores in probes_by_name.items():
                variants[name] = scores
                variants |= {
                    f"{name} blend {w}": (1 - w) * saved + w * scores for w in args.weights
                }
            line = []
            for name, score in variants.items():
                for protocol, tau in fit.kendall(score, run.protocols).items():
                    kendall[protocol, name].append(tau)
                    line.append(f"{protocol} {name} {tau:.4f}")
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
