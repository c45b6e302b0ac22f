"""How good a network does each search find with n labels? The loop against NAS baselines.

    python benchmarks/loop_vs_baselines.py                      # NB201 CIFAR-10, 10 seeds
    python benchmarks/loop_vs_baselines.py --targets nb201:cifar100 nb201:imagenet16-120
    python benchmarks/loop_vs_baselines.py --methods parzc --zero-label pretrained --name ...

Simulated sequential search (`parzc.loop.simulate`) on every cell of a benchmark space
(NB201: 15,625 cells of the 9,445 networks that results/nb201_full holds): each label is a
cell's recorded validation accuracy, answered by the benchmark oracle. After every label the
honest pick is the labelled cell with the best validation accuracy; the table gives its test
accuracy at 20 / 50 / 100 labels (`--at`), mean ± std over the seeds (default 0-9), per method:

- parzc: rounds of the ask / tell loop's `propose`, the loop predictor (`--loop-predictor`, a
  train/predictors entry of `--config`, params overridable with `--loop-params`) refitted on
  every label, a zero-label scorer (`--zero-label`) before the second label, the acquisition
  `--acquisition`, `--batch` proposals per round after `--first-batches`, the first round
  ranked by the mean rank of the `--ensemble` proxies;
- random: random search over every cell;
- evolution: regularised evolution, population 20, tournament 5 (`--population`,
  `--sample-size`), mutation = one operation changed, random initial population;
- local_search: first-improvement local search with random restarts (NASLib's);
- bananas: the parzc rounds with gbdt on the one-hot encoding alone (no proxy) and a random
  first batch;
- proxy_evolution: evolution whose initial population is the best networks of one zero-cost
  proxy (`--proxy`, default net:nwot).

`--constraints` (JSON, a space's `constraints` mapping, e.g. '{"net:flops": {"max": 100}}')
searches only the cells within the bounds: every method sees that subset alone, as its
candidates, its neighbours and the loop predictor's pool, and the reference picks are the
subset's.

The feature matrix of each target is assembled once from `--results` with the config's
train/features and cached as benchmarks/out/loop_matrix_<space>_<dataset>.npz; fusion's
pretrained weights are cached under benchmarks/out/loop_pretrained (one pretraining per seed,
shared by all targets). Every finished (target, method, seed) run is appended to
benchmarks/out/<name>_runs.csv and is not run again (`--fresh` starts over). Writes the table
as benchmarks/out/<name>.csv and .md and the pick's test accuracy against labels (mean ± std
bands) as <name>.png; prints the table and the wall time per method and seed. `--threads`
(default 1) bounds torch's and OpenMP's threads (sklearn's OpenMP threads spin against other
jobs on a busy 2-core machine: one gbdt fit took 5-15 s instead of 0.2 s).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from threadpoolctl import threadpool_limits

from parzc.config import load
from parzc.constraints import describe, feasible, parse_constraints
from parzc.dag import Plan
from parzc.loop.ask import DEFAULT_ENSEMBLE
from parzc.loop.simulate import METHODS, ground_truth, simulate
from parzc.store import Store
from parzc.store.matrix import FeatureMatrix

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
ORDER = ["parzc", "bananas", "proxy_evolution", "evolution", "local_search", "random"]


def target_matrix(
    results: str, config: dict[str, Any], space: str, dataset: str, out: Path
) -> FeatureMatrix:
    """The assembled matrix of every cell of (space, dataset), cached under `out` with the key
    of what it was assembled from (store folder, features, shard files)."""
    store = Store(results)
    proxy_dataset = Plan(config).proxy_dataset(space, dataset)  # NB201: cifar10 for all
    features = list(config["train"]["features"])
    shards = sorted(str(p) for p in Path(results, "features").rglob("*.parquet"))
    key = {"results": str(Path(results).resolve()), "features": features, "shards": shards}
    path = out / f"loop_matrix_{space}_{dataset}.npz"
    key_path = path.with_suffix(".json")
    if path.exists() and key_path.exists() and json.loads(key_path.read_text()) == key:
        return FeatureMatrix.load(path)
    started = time.perf_counter()
    matrix = store.assemble(
        space, proxy_dataset, features, onehot=True, target=dataset, every_cell=True
    )
    out.mkdir(parents=True, exist_ok=True)
    matrix.save(path)
    key_path.write_text(json.dumps(key))
    print(
        f"assembled {space}/{dataset}: {len(matrix)} cells of "
        f"{len(np.unique(matrix.network_ids))} networks in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return matrix


# the loop predictor of the measured runs when the config has no such label (it was
# config/nb201_full.yaml's `fusion` entry when they ran)
LOOP_PREDICTORS = {"fusion": {"model": "fusion", "params": {"tree_weight": 0.5, "mc_samples": 4}}}


def predictor_entry(config: dict[str, Any], label: str) -> dict[str, Any]:
    """The config's train/predictors entry `label`, else the loop predictor of that name."""
    entries = config["train"]["predictors"]
    if label in entries:
        return entries[label]
    if label in LOOP_PREDICTORS:
        return LOOP_PREDICTORS[label]
    raise SystemExit(
        f"{label!r} is neither a train/predictors label of the config nor one of "
        f"{sorted(LOOP_PREDICTORS)}"
    )


def method_params(args: argparse.Namespace, config: dict[str, Any]) -> dict[str, dict]:
    """Each method's simulate params from the command line."""
    entry = predictor_entry(config, args.loop_predictor)
    loop_params = {**entry.get("params", {}), **json.loads(args.loop_params)}
    if entry["model"] == "fusion":
        loop_params.setdefault("num_threads", args.threads)
    rounds = {
        "acquisition": args.acquisition,
        "acquisition_params": json.loads(args.acquisition_params),
        "batch": args.batch,
        "first_batches": args.first_batches,
    }
    evolution = {"population": args.population, "sample_size": args.sample_size}
    return {
        "parzc": {
            "model": entry["model"],
            "params": loop_params,
            "zero_label": args.zero_label,
            "ensemble": args.ensemble,
            **rounds,
        },
        "bananas": rounds,
        "random": {},
        "evolution": evolution,
        "local_search": {},
        "proxy_evolution": {"proxy": args.proxy, **evolution},
    }


def summary(runs: pl.DataFrame, at: list[int]) -> pl.DataFrame:
    """Per target and method: the pick's test accuracy at each of `at` labels (a run that
    ended earlier keeps its last pick), mean and std over seeds, and wall seconds per seed."""
    rows = []
    keys = ["space", "dataset", "method"]
    for (space, dataset, method), part in runs.group_by(keys, maintain_order=True):
        row: dict[str, Any] = {"space": space, "dataset": dataset, "method": method}
        seeds = part.partition_by("seed")
        for n in at:
            values = [s.filter(pl.col("labels") <= n)["pick_test_acc"][-1] for s in seeds]
            row[f"mean_{n}"] = float(np.mean(values))
            row[f"std_{n}"] = float(np.std(values))
        row["seeds"] = len(seeds)
        row["wall_s_per_seed"] = float(np.mean([s["wall_s"][0] for s in seeds]))
        rows.append(row)
    order = {m: i for i, m in enumerate(ORDER)}
    return pl.DataFrame(rows).sort(
        "space", "dataset", pl.col("method").replace_strict(order, default=len(order))
    )


def markdown(table: pl.DataFrame, at: list[int], references: dict[tuple, tuple]) -> str:
    lines = []
    for (space, dataset), part in table.group_by(["space", "dataset"], maintain_order=True):
        best_val_test, best_test = references[space, dataset]
        lines += [
            f"### {space} / {dataset}",
            "",
            f"Test accuracy of the honest pick (best validation accuracy among the labelled), "
            f"mean ± std over {part['seeds'].max()} seeds; the cell of best validation accuracy "
            f"of all has {best_val_test:.2f}, the best test accuracy is {best_test:.2f}.",
            "",
            "| method | " + " | ".join(f"{n} labels" for n in at) + " | wall s per seed |",
            "|---|" + "---|" * (len(at) + 1),
        ]
        for row in part.iter_rows(named=True):
            cells = [f"{row[f'mean_{n}']:.2f} ± {row[f'std_{n}']:.2f}" for n in at]
            lines.append(
                f"| {row['method']} | " + " | ".join(cells) + f" | {row['wall_s_per_seed']:.1f} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot(runs: pl.DataFrame, path: Path) -> None:
    """The pick's test accuracy against labels used, mean ± std over seeds; a panel per target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = runs.select("space", "dataset").unique(maintain_order=True).rows()
    fig, axes = plt.subplots(1, len(targets), figsize=(6 * len(targets), 4.5), squeeze=False)
    for ax, (space, dataset) in zip(axes[0], targets, strict=True):
        part = runs.filter((pl.col("space") == space) & (pl.col("dataset") == dataset))
        curves = (
            part.group_by("method", "labels")
            .agg(pl.col("pick_test_acc").mean().alias("mean"), pl.col("pick_test_acc").std(0))
            .sort("labels")
        )
        rank = {m: i for i, m in enumerate(ORDER)}
        methods = sorted(curves["method"].unique(), key=lambda m: (rank.get(m, len(rank)), m))
        for method in methods:
            curve = curves.filter(pl.col("method") == method)
            x, mean, std = (curve[c].to_numpy() for c in ("labels", "mean", "pick_test_acc"))
            (line,) = ax.plot(x, mean, label=method, lw=1.5)
            ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.15)
        settled = part.filter(pl.col("labels") >= 10)["pick_test_acc"]
        low = float(np.percentile(settled, 2))
        high = float(settled.max()) + 0.1 * max(float(settled.max()) - low, 0.1)
        ax.set(
            xlabel="labels used",
            ylabel="test accuracy of the honest pick (%)",
            title=f"{space} / {dataset}",
            ylim=(low, high),  # the first labels' wide bands would hide the curves
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="config/nb201_full.yaml")
    parser.add_argument("--results", default="results/nb201_full", help="the extracted store")
    parser.add_argument("--targets", nargs="+", default=["nb201:cifar10"], help="space:dataset")
    parser.add_argument("--methods", nargs="+", default=ORDER, choices=METHODS.names())
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--at", type=int, nargs="+", default=[20, 50, 100])
    parser.add_argument("--loop-predictor", default="fusion")
    parser.add_argument("--loop-params", default="{}", help="JSON merged into its params")
    parser.add_argument("--zero-label", default="ensemble", choices=["ensemble", "pretrained"])
    parser.add_argument(
        "--ensemble",
        nargs="+",
        default=DEFAULT_ENSEMBLE,
        help="the proxies whose mean rank picks the first round (zero_label: ensemble)",
    )
    parser.add_argument("--acquisition", default="diverse")
    parser.add_argument("--acquisition-params", default="{}", help='JSON, e.g. {"kappa": 1}')
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--first-batches", type=int, nargs="*", default=[])
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--sample-size", type=int, default=5)
    parser.add_argument("--proxy", default="net:nwot")
    parser.add_argument("--name", default="loop_vs_baselines", help="output files' stem")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch (fusion) and OpenMP (trees) threads"
    )
    parser.add_argument("--fresh", action="store_true", help="ignore the runs already made")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--constraints", default="{}", help="JSON: column -> {min, max}")
    args = parser.parse_args()
    started = time.perf_counter()

    config = load(args.config)
    threadpool_limits(args.threads)
    torch.set_num_threads(args.threads)
    params = method_params(args, config)
    bounds = parse_constraints(json.loads(args.constraints))
    runs_path = args.out / f"{args.name}_runs.csv"
    done = pl.read_csv(runs_path) if runs_path.exists() and not args.fresh else None
    frames = [done] if done is not None else []
    references = {}
    print(f"parzc: {json.dumps(params['parzc'])}", flush=True)
    for target in args.targets:
        space, dataset = target.split(":")
        matrix = target_matrix(args.results, config, space, dataset, args.out)
        if bounds:
            matrix = matrix.subset(np.flatnonzero(feasible(matrix, bounds)))
            print(f"{target}: {len(matrix)} cells within {describe(bounds)}", flush=True)
        val, test = ground_truth(matrix)
        references[space, dataset] = (float(test[np.argmax(val)]), float(test.max()))
        for method in args.methods:
            for seed in args.seeds:
                if done is not None and len(
                    done.filter(
                        (pl.col("space") == space)
                        & (pl.col("dataset") == dataset)
                        & (pl.col("method") == method)
                        & (pl.col("seed") == seed)
                    )
                ):
                    continue
                frame = simulate(
                    matrix,
                    method,
                    seed,
                    args.labels,
                    params[method],
                    pretrained=str(args.out / "loop_pretrained"),
                ).select(pl.lit(space).alias("space"), pl.lit(dataset).alias("dataset"), pl.all())
                at = frame.filter(pl.col("labels").is_in(args.at))["pick_test_acc"].to_list()
                print(
                    f"{space}/{dataset} {method} seed {seed}: "
                    + " ".join(f"{v:.2f}" for v in at)
                    + f" ({frame['wall_s'][0]:.1f} s)",
                    flush=True,
                )
                frames.append(frame)
                args.out.mkdir(parents=True, exist_ok=True)
                pl.concat(frames, how="vertical_relaxed").write_csv(runs_path)
    runs = pl.concat(frames, how="vertical_relaxed").filter(
        pl.col("method").is_in(args.methods)
        & pl.col("seed").is_in(args.seeds)
        & pl.concat_str("space", pl.lit(":"), "dataset").is_in(args.targets)
    )
    table = summary(runs, args.at)
    table.write_csv(args.out / f"{args.name}.csv")
    text = markdown(table, args.at, references)
    settings = f"parzc settings: `{json.dumps(params['parzc'])}`\n\n"
    if bounds:
        settings += f"Only the cells within {describe(bounds)}.\n\n"
    (args.out / f"{args.name}.md").write_text(settings + text)
    plot(runs, args.out / f"{args.name}.png")
    print("\n" + text)
    print(f"wall time {time.perf_counter() - started:.0f} s; outputs {args.out}/{args.name}.*")


if __name__ == "__main__":
    main()
