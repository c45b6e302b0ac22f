"""Choose a fusion fit's fine-tuning length and blend on a holdout of its own training labels.

    python benchmarks/holdout_selection.py RESULTS TARGET SIZE SEEDS PARAMS_JSON \
        [--draw cells] [--train-label val_mean] [--epochs 200,400] \
        [--tree-weights 0,0.25,0.5] [--smoothing 0.2,0.4] [--holdout 0.2] \
        [--prior-results results/nb201_meco --prior-proxies net:meco --prior-weights 0,0.1]

No label beyond the training split's is read. Per seed, `--holdout` of the training networks of
the run's split (SIZE, seed, `--draw`) are set aside (seeded); the model (PARAMS_JSON, e.g. a
config predictor's params) is fitted on the others once per `--epochs` value, as
`benchmarks/fusion_protocol.py` fits (written into the run's layout as `holdout_eN`, so
pretrained weights are reused), and every blend of `--tree-weights` x `--smoothing` is scored
by the Kendall tau of its scores with the set-aside networks' training label (tree weights
above 0 are skipped, saying so, for fits without trees). With `--prior-weights`, each blend is
also mixed at those weights with the proxy prior of `--prior-proxies` taken from another store
(`--prior-results`, the same networks), as `benchmarks/proxy_prior.py` mixes a run's fits. Prints
one line per (epochs, tree weight, smoothing, prior weight): mean ± std over the seeds, then the
best; fit the full split with the best and score it as the protocol does
(benchmarks/fusion_protocol.py, benchmarks/blend_weights.py).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl
from blend_grid import blends, floats
from fusion_protocol import run_matrix
from scipy.stats import kendalltau

from parzc.allocator import retain_freed_memory
from parzc.evaluation.protocols import training_labels
from parzc.layout import Layout
from parzc.predictors.base import Predictor
from parzc.predictors.proxy_ensembles import PoolRanking, mixed_with_prior
from parzc.training.run import train_and_predict
from parzc.training.splits import load_split, make_split, save_split, split_path


def main() -> None:
    retain_freed_memory()  # as the train rule's job does
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("results", "target", "size", "seeds", "params"):
        parser.add_argument(name)
    parser.add_argument("--draw", default="networks")
    parser.add_argument("--train-label", default="val")
    parser.add_argument("--epochs", default="200,400")
    parser.add_argument("--tree-weights", type=floats, default=[0.0, 0.25, 0.5])
    parser.add_argument("--smoothing", type=floats, default=[0.2, 0.4])
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--prior-results", help="a store holding --prior-proxies")
    parser.add_argument("--prior-proxies", default="net:meco")
    parser.add_argument("--prior-weights", type=floats, default=[0.0])
    args = parser.parse_args()
    layout = Layout(args.results)
    data = run_matrix(args.results, args.target)
    networks = data.subset(data.arch_ids == data.network_ids)
    pool = networks.unlabelled()  # the pool train_and_predict fits with
    size = int(args.size)
    ids = np.sort(networks.arch_ids)
    kendall: dict[tuple[int, float, float, float], list[float]] = defaultdict(list)
    prior_of = {}
    if args.prior_results:
        other = run_matrix(args.prior_results, args.target)
        other = other.subset(other.arch_ids == other.network_ids)
        ranking = PoolRanking.fit(other, args.prior_proxies.split(","))
        prior_of = dict(zip(other.network_ids.tolist(), ranking.scores(other), strict=True))
    for seed in map(int, args.seeds.split(",")):
        train_ids, _ = load_split(split_path(layout, "nb201", args.target, size, seed, args.draw))
        kept = make_split(train_ids, 1 - args.holdout, seed)
        fit_ids = kept.filter(kept["split"] == "train")["arch_id"].to_numpy()
        held = np.setdiff1d(train_ids, fit_ids)
        inner = Path(args.results) / "holdout" / f"{args.target}_n{size}_seed{seed}.parquet"
        split = pl.DataFrame(
            {"arch_id": ids, "split": np.where(np.isin(ids, fit_ids), "train", "test")}
        )
        save_split(split, inner, seed=seed, draw=args.draw, holdout=args.holdout)
        rows = networks.subset(np.isin(networks.arch_ids, held))
        truth = training_labels(rows, args.train_label)
        prior = np.array([prior_of.get(int(n), np.nan) for n in rows.network_ids])
        for epochs in map(int, args.epochs.split(",")):
            keys = {"space": "nb201", "dataset": args.target, "predictor": f"holdout_e{epochs}"}
            keys |= {"size": len(fit_ids), "seed": seed}
            model_path = layout.path("model", **keys)
            if not Path(model_path).exists():
                train_and_predict(
                    data,
                    keys["predictor"],
                    "fusion",
                    {**json.loads(args.params), "epochs": epochs},
                    inner,
                    seed,
                    layout.path("predictions", **keys),
                    model_path,
                    device="cpu",
                    train_label=args.train_label,
                )
            fitted = Predictor.load(model_path)
            fit_name = f"seed={seed} epochs={epochs}"
            for tree_weight, smoothing, model in blends(
                fitted, pool, args.tree_weights, args.smoothing, fit_name
            ):
                score = model.predict(rows)[0]
                pool_score = model.predict(pool)[0] if prior_of else score
                scale = (pool_score.mean(), pool_score.std())
                for weight in args.prior_weights:
                    mixed = mixed_with_prior(score, scale, prior, weight) if weight > 0 else score
                    tau = kendalltau(mixed, truth).statistic
                    kendall[epochs, tree_weight, smoothing, weight].append(float(tau))
                    print(
                        f"seed={seed} epochs={epochs} tree_weight={tree_weight} "
                        f"smoothing={smoothing} prior_weight={weight}: {tau:.4f} on "
                        f"{len(held)} held-back networks",
                        flush=True,
                    )
    for key, taus in sorted(kendall.items()):
        spread = np.std(taus, ddof=1) if len(taus) > 1 else 0.0
        print(
            f"epochs={key[0]} tree_weight={key[1]} smoothing={key[2]} prior_weight={key[3]}: "
            f"{np.mean(taus):.4f} ± {spread:.4f} ({len(taus)} seeds)"
        )
    best = max(kendall, key=lambda k: np.mean(kendall[k]))
    print(
        f"best: epochs={best[0]} tree_weight={best[1]} smoothing={best[2]} prior_weight={best[3]}"
    )


if __name__ == "__main__":
    main()
