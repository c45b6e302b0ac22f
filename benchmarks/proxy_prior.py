"""Mix a run's saved fusion predictions, post hoc, with a proxy prior from another store.

    python benchmarks/proxy_prior.py RESULTS TARGET LABEL SIZES SEEDS PRIOR_RESULTS \
        --proxies net:meco --weights 0,0.1,0.2 [--protocols strict]

What `fusion`'s `prior_weight` / `prior_proxies` do to a fit's final scores, applied to the saved
predictions of LABEL in RESULTS (a full-NB201 run): (1 - w) x each score z-scored over the pool
networks' scores + w x the mean pool rank of `--proxies` (`PoolRanking`), the pool and the
proxies' values taken from PRIOR_RESULTS's matrix (the same networks, a store holding the
proxies, e.g. `config/nb201_meco.yaml`'s). The fits themselves are RESULTS's, made without those
proxies: a re-blend cannot add them, since their models would not read the new column. Scored
under every built-in protocol that applies (`--protocols` keeps some); prints one line per
(protocol, size, weight): Kendall mean ± std over the seeds. A weight picked from this table is
chosen on the networks it is scored on (docs/results.md says which were chosen elsewhere).
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import polars as pl
from blend_grid import floats
from fusion_protocol import run_matrix

from parzc.evaluation.predictions import evaluate_predictions
from parzc.evaluation.protocols import PROTOCOLS
from parzc.layout import Layout
from parzc.predictors.proxy_ensembles import PoolRanking, mixed_with_prior


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("results", "target", "label", "sizes", "seeds", "prior_results"):
        parser.add_argument(name)
    parser.add_argument("--proxies", default="net:meco")
    parser.add_argument("--weights", type=floats, default=[0.0, 0.1, 0.2])
    parser.add_argument("--protocols", default=",".join(PROTOCOLS.names()))
    args = parser.parse_args()
    protocols = {name: PROTOCOLS.get(name) for name in args.protocols.split(",")}
    data = run_matrix(args.prior_results, args.target)
    pool = data.subset(data.arch_ids == data.network_ids)
    prior = PoolRanking.fit(pool, args.proxies.split(","))
    prior_of = dict(zip(pool.network_ids.tolist(), prior.scores(pool), strict=True))
    layout = Layout(args.results)
    for size in map(int, args.sizes.split(",")):
        kendall: dict[tuple[str, float], list[float]] = defaultdict(list)
        for seed in map(int, args.seeds.split(",")):
            keys = {"space": "nb201", "dataset": args.target, "predictor": args.label}
            frame = pl.read_parquet(layout.path("predictions", **keys, size=size, seed=seed))
            networks = frame.filter(pl.col("arch_id") == pl.col("network_id"))
            if networks.height != len(pool):
                raise SystemExit(
                    f"{args.label} n={size} seed={seed}: scores {networks.height} of the "
                    f"{len(pool)} pool networks; the pool's scale needs them all"
                )
            scale = (networks["score"].mean(), networks["score"].std(ddof=0))
            ranks = frame["network_id"].replace_strict(prior_of, return_dtype=pl.Float64)
            score, ranks = frame["score"].to_numpy(), ranks.to_numpy()
            for weight in args.weights:
                mixed = frame.with_columns(
                    score=pl.Series(mixed_with_prior(score, scale, ranks, weight))
                )
                metrics = evaluate_predictions(mixed, protocols)
                for protocol, tau in metrics.select("protocol", "kendall").iter_rows():
                    kendall[(protocol, weight)].append(tau)
        for (protocol, weight), taus in sorted(kendall.items()):
            print(
                f"{args.label} {args.target} {protocol} n={size} prior_weight={weight}: "
                f"{np.mean(taus):.4f} ± {np.std(taus, ddof=1):.4f} ({len(taus)} seeds)",
                flush=True,
            )


if __name__ == "__main__":
    main()
