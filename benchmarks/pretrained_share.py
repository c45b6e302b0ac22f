"""Interpolate saved fusion fits' members towards their pretrained weights, post hoc.

    python benchmarks/pretrained_share.py RESULTS TARGET LABEL SIZES SEEDS \
        [--shares 0,0.1,0.2,0.3] [--probe-weights 0,0.25] [--protocols strict]
e.g. python benchmarks/pretrained_share.py results/nb201_full cifar100 fx_probe 78,156 0,1,2,3,4

What `fusion`'s `pretrained_share` builds into a fit, measured on fits made without it: for
every (size, seed) fit of LABEL in a full-NB201 run, each member's fine-tuned weights are
interpolated with its pretrained ones (from the run's pretraining cache) at each of `--shares`
(the pretrained weights' share, `parzc.predictors.finetuning.interpolated`; 0 is the fit itself),
the fit is re-blended with its own trees and smoothing at each of `--probe-weights` (a weight
above 0 needs a fit with probes; default: the fit's own), and its predictions are scored under
`--protocols` as the run's metrics are. Prints per fit the Kendall tau of each (share, probe
weight), then each one's mean ± std over the seeds and in how many seeds it beats the first
of `--shares` (0: the fit itself) at the same probe weight.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
from blend_grid import floats
from saved_fits import Run, add_fit_arguments

from parzc.predictors.finetuning import interpolated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_fit_arguments(parser)
    parser.add_argument("--shares", type=floats, default=[0.0, 0.1, 0.2, 0.3])
    parser.add_argument("--probe-weights", type=floats, default=None)
    args = parser.parse_args()
    run = Run.of(args)
    probe_weights = args.probe_weights or [None]
    for size in map(int, args.sizes.split(",")):
        kendall: dict[tuple[str, float, float | None], list[float]] = defaultdict(list)
        for seed, fit in run.fits(args, size):
            fitted = fit.fitted
            if fitted._meta.get("pretrained_share", 0.0):
                raise SystemExit(f"{args.label} n={size} seed={seed}: already interpolated")
            pretrained = [
                m.state_dict() for m in fit.pretrained(run.layout, run.pool, seed)._models
            ]
            finetuned = [{k: v.clone() for k, v in m.state_dict().items()} for m in fitted._models]
            line = []
            for share in args.shares:
                for model, before, after in zip(fitted._models, pretrained, finetuned, strict=True):
                    model.load_state_dict(interpolated(before, after, share))
                for weight in probe_weights:
                    other = fitted.reweighted(
                        run.pool,
                        tree_weight=fitted._meta["tree_weight"],
                        neighbour_smoothing=fitted.neighbour_smoothing,
                        probe_weight=weight,
                    )
                    score = other.predict(fit.rows)[0]
                    for protocol, tau in fit.kendall(score, run.protocols).items():
                        kendall[protocol, share, weight].append(tau)
                        line.append(f"{protocol} share={share} probes={weight} {tau:.4f}")
            print(f"{args.label} {args.target} n={size} seed={seed}: {', '.join(line)}", flush=True)
        for (protocol, share, weight), taus in sorted(kendall.items(), key=str):
            base = kendall[protocol, args.shares[0], weight]
            above = sum(t > b for t, b in zip(taus, base, strict=True))
            spread = np.std(taus, ddof=1) if len(taus) > 1 else 0.0
            print(
                f"{args.label} {args.target} {protocol} n={size} share={share} probes={weight}: "
                f"{np.mean(taus):.4f} ± {spread:.4f} ({len(taus)} seeds, above share "
                f"{args.shares[0]} in {above})",
                flush=True,
            )


if __name__ == "__main__":
    main()
