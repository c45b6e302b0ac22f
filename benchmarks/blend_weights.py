"""Re-score saved fusion fits at other tree and smoothing weights, without refitting.

A fusion fit's members and trees do not depend on `tree_weight` or `neighbour_smoothing`: only
the blend does. For every (size, seed) fit of LABEL in a full-NB201 run (as
`benchmarks/fusion_protocol.py` or the DAG wrote them), this reloads the model, re-blends it at
each weight pair (`FusionPredictor.reweighted`) and scores the new predictions under every
built-in protocol that applies, exactly as the run's metrics are computed. Prints one line per
(protocol, size, tree weight, smoothing): Kendall mean ± std over the seeds. Weights picked from
this table are chosen on the same held-out networks they are scored on: a sensitivity analysis,
not a held-out result (docs/results.md). Fits made without trees skip every tree weight above 0,
with a line saying so. `--probe-weights` re-blends each fit's ridge probes at those weights too
(a fit without probes takes 0 only). `--prior-weights` with `--prior-proxies` mixes in a proxy
prior at those weights (`prior_weight`, `prior_proxies`). With `--write`, every re-blended fit
is also written into the run's layout as the fit `LABEL_twT_smS` (T, S: the weights in
hundredths; `_pwP` appended for a probe weight, `_prP` for a prior weight), predictions and
metrics, so `benchmarks/selection_labels.py` can choose
among them on a protocol's granted selection labels.

    python benchmarks/blend_weights.py RESULTS TARGET LABEL SIZES SEEDS \
        [--tree-weights 0,0.25,0.5,0.75] [--smoothing 0,0.2,0.4,0.6] [--probe-weights 0,0.25] \
        [--prior-proxies net:meco --prior-weights 0,0.1] [--protocols strict] [--write]
e.g. python benchmarks/blend_weights.py results/nb201_full cifar10 fx_flowhops_m3_smooth \
        78,156 0,1,2,3,4
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import defaultdict

import numpy as np
import polars as pl
from blend_grid import blends, floats
from fusion_protocol import run_matrix

from parzc.evaluation.predictions import evaluate_predictions
from parzc.evaluation.protocols import PROTOCOLS
from parzc.io import read_metadata, write_parquet
from parzc.layout import Layout
from parzc.predictors.base import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("results", "target", "label", "sizes", "seeds"):
        parser.add_argument(name)
    parser.add_argument("--tree-weights", type=floats, default=[0.0, 0.25, 0.5, 0.75])
    parser.add_argument("--smoothing", type=floats, default=[0.0, 0.2, 0.4, 0.6])
    parser.add_argument("--probe-weights", type=floats, help="default: each fit's own")
    parser.add_argument("--prior-weights", type=floats, help="default: each fit's own")
    parser.add_argument("--prior-proxies", help="comma-separated aggregate columns")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS.names()))
    parser.add_argument("--write", action="store_true", help="write each re-blended fit")
    args = parser.parse_args()
    if args.prior_weights and not args.prior_proxies:
        parser.error("--prior-weights needs --prior-proxies")
    protocols = {name: PROTOCOLS.get(name) for name in args.protocols.split(",")}
    every = {name: PROTOCOLS.get(name) for name in PROTOCOLS.names()}
    layout = Layout(args.results)
    data = run_matrix(args.results, args.target)
    networks = data.subset(data.arch_ids == data.network_ids)
    pool = networks.unlabelled()  # the pool train_and_predict fits with
    for size in map(int, args.sizes.split(",")):
        kendall: dict[tuple, list[float]] = defaultdict(list)
        for seed in map(int, args.seeds.split(",")):
            keys = {"space": "nb201", "dataset": args.target, "predictor": args.label}
            keys |= {"size": size, "seed": seed}
            fitted = Predictor.load(layout.path("model", **keys))
            source = layout.path("predictions", **keys)
            frame = pl.read_parquet(source)
            metadata = read_metadata(source)
            rows = networks.subset(np.isin(networks.network_ids, frame["network_id"].to_numpy()))
            priors = [
                (args.prior_proxies.split(","), weight) for weight in args.prior_weights or []
            ]
            for probe_weight, prior in itertools.product(
                args.probe_weights or [None], priors or [None]
            ):
                fit_name = f"{args.label} n={size} seed={seed}"
                grid = blends(
                    fitted, pool, args.tree_weights, args.smoothing, fit_name, probe_weight, prior
                )
                prior_weight = prior[1] if prior is not None else None
                for tree_weight, smoothing, model in grid:
                    scores = model.predict(rows)[0]
                    score = dict(zip(rows.network_ids.tolist(), scores, strict=True))
                    name = f"{args.label}_tw{round(tree_weight * 100)}_sm{round(smoothing * 100)}"
                    blend = {"tree_weight": tree_weight, "neighbour_smoothing": smoothing}
                    if probe_weight is not None:
                        name += f"_pw{round(probe_weight * 100)}"
                        blend["probe_weight"] = probe_weight
                    if prior is not None:
                        name += f"_pr{round(prior_weight * 100)}"
                        blend |= {"prior_proxies": prior[0], "prior_weight": prior_weight}
                    rescored = frame.with_columns(
                        score=pl.col("network_id").replace_strict(score, return_dtype=pl.Float64),
                        predictor=pl.lit(name),
                    )
                    # written fits carry every built-in protocol's metrics, as the run's do
                    metrics = evaluate_predictions(rescored, every if args.write else protocols)
                    for row in metrics.filter(pl.col("protocol").is_in(list(protocols))).iter_rows(
                        named=True
                    ):
                        key = (row["protocol"], probe_weight, prior_weight, tree_weight, smoothing)
                        kendall[key].append(row["kendall"])
                    if args.write:
                        params = json.loads(metadata["params"]) | blend
                        written = {**metadata, "params": json.dumps(params, sort_keys=True)}
                        target = {**keys, "predictor": name}
                        predictions = layout.path("predictions", **target)
                        write_parquet(rescored.to_arrow(), predictions, written)
                        write_parquet(metrics.to_arrow(), layout.path("metrics", **target))
        for (protocol, probe_weight, prior_weight, tree_weight, smoothing), taus in sorted(
            kendall.items(),
            key=lambda item: (item[0][0], item[0][1] or 0.0, item[0][2] or 0.0, *item[0][3:]),
        ):
            spread = np.std(taus, ddof=1) if len(taus) > 1 else 0.0  # as the run's tables
            probes = "" if probe_weight is None else f"probe_weight={probe_weight} "
            probes += "" if prior_weight is None else f"prior_weight={prior_weight} "
            print(
                f"{args.label} {args.target} {protocol} n={size} {probes}tree_weight={tree_weight} "
                f"smoothing={smoothing}: {np.mean(taus):.4f} ± {spread:.4f} "
                f"({len(taus)} seeds)",
                flush=True,
            )


if __name__ == "__main__":
    main()
