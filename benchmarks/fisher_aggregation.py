"""Why parzc's fisher ranks NB201 networks below NAS-Bench-Suite-Zero's figure: the aggregation.

NASLib's fisher (the zero-cost-nas code Suite-Zero ran) computes one value per output channel,
then broadcasts it to every weight of that channel (C_in * kh * kw of them) before the network's
values are summed, so each layer counts fan-in times. parzc stores the per-layer sum over
channels. This script reads a store's per-layer fisher, multiplies each layer by its fan-in
(from the built network) and prints the Spearman correlation of both totals, and of the plain
per-layer sum of `params` for reference, with the target's test accuracy over the stored
networks.

    python benchmarks/fisher_aggregation.py results/nb201_full [--dataset cifar10]
"""

from __future__ import annotations

import argparse

import numpy as np
import polars as pl
from scipy import stats

from parzc.proxies.passes import find_layers
from parzc.spaces import get_space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results")
    parser.add_argument("--dataset", default="cifar10", help="the target")
    args = parser.parse_args()
    space = get_space("nb201")
    layers = pl.read_parquet(
        f"{args.results}/features/space=nb201/dataset=cifar10/**/*.parquet",
        columns=["arch_id", "layer_name", "proxy", "value"],
    ).filter(pl.col("proxy").cast(pl.Utf8).is_in(["fisher", "params"]))
    archs = dict(space.archs().select("arch_id", "arch").iter_rows())
    fan_in = []
    for arch_id in layers["arch_id"].unique().sort().to_list():
        model = space.build(archs[arch_id], "cifar10")
        fan_in += [(arch_id, name, m.weight[0].numel()) for name, m in find_layers(model)]
    fans = pl.DataFrame(fan_in, schema=["arch_id", "layer_name", "fan_in"], orient="row")
    totals = (
        layers.with_columns(pl.col("layer_name").cast(pl.Utf8), pl.col("proxy").cast(pl.Utf8))
        .join(fans.with_columns(pl.col("arch_id").cast(pl.Int32)), on=["arch_id", "layer_name"])
        .group_by("arch_id")
        .agg(
            fisher=pl.col("value").filter(pl.col("proxy") == "fisher").sum(),
            fisher_by_fan_in=(pl.col("value") * pl.col("fan_in"))
            .filter(pl.col("proxy") == "fisher")
            .sum(),
            params=pl.col("value").filter(pl.col("proxy") == "params").sum(),
        )
    )
    truth = space.accuracy_table().filter(pl.col("dataset") == args.dataset)
    frame = totals.join(truth.select("arch_id", "test_acc"), on="arch_id")
    print(f"{len(frame)} networks, target {args.dataset} test accuracy (Spearman):")
    for column in ("fisher", "fisher_by_fan_in", "params"):
        rho = stats.spearmanr(frame[column].to_numpy(), frame["test_acc"].to_numpy()).statistic
        print(f"  {column:18s} {rho:.3f}")
    print(f"  (NaN-free networks: {int(np.isfinite(frame['fisher'].to_numpy()).sum())})")


if __name__ == "__main__":
    main()
