"""Does the learned proxy help on a space no benchmark paper tuned for? Predictors on digits.

    python benchmarks/digits_ground_truth.py --seeds 0     # the ground truth it reads (~90 s)
    python benchmarks/digits_predictors.py [--sizes 10 20 50] [--seeds 0 1 2 3 4]

The worked example's space (config/digits.yaml: 216 small CNNs on scikit-learn's 8x8 digits,
every proxy extracted into results/digits) with its full ground truth (every candidate trained
once, seed 0; benchmarks/out/digits_ground_truth.csv, joined to the candidates by their `arch`
encoding). For each training-label count n and seed, n candidates are drawn with
`numpy.random.default_rng([seed, n])`; each predictor is fitted on their validation accuracy
and scores every other candidate; the cell is Kendall tau (scipy.stats.kendalltau) against
those candidates' test accuracy, mean +- std over the seeds. Predictors:

- fusion: the config's fusion parameters (slots + aggregates branches, averaged with trees),
  pretrained on every candidate's proxies (the unlabelled pool, as `parzc rank` does) with the
  pretrained weights cached under benchmarks/out/digits_pretrained, so each seed pretrains
  once for every n; `--fusion-epochs` / `--fusion-pretrain-epochs` shorten its schedule;
- gbdt: gradient-boosted trees on the aggregate proxies; gbdt + one-hot: also the encoding;
- one-hot alone: gbdt on the encoding only (`use_proxies: false`), no proxy;
- best single proxy: the aggregate proxy whose Kendall with validation accuracy on the n
  training labels is highest in absolute value, its sign applied (failed values rank last),
  chosen on the training labels only; the picks are printed and kept in the runs CSV;
- val_acc (reference, not a predictor): the held-out candidates' own validation accuracy,
  what one more training of each would tell; the ceiling of ranking by one training.

Prints one row per fit as it goes, then the table (predictor x n) and the wall time; writes
the table as benchmarks/out/digits_predictors.csv and .md, and every fit (Kendall, fit
seconds, the picked proxy) as benchmarks/out/digits_predictors_runs.csv. Runtime with the
default schedule on a 2-core CPU: 45 s with other jobs at a load average of about 2, 3 minutes
at a load of 5 (fusion most of it, one torch thread; pretraining cached after the first run).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from parzc.config import load
from parzc.predictors import create_predictor
from parzc.predictors.training_free import rank_failures_last
from parzc.spaces import get_space
from parzc.store import Store
from parzc.store.matrix import FeatureMatrix

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
SPACE = "digits"
BEST_PROXY = "best single proxy"
REFERENCE = "val_acc (reference)"


def kendall(score: np.ndarray, truth: np.ndarray) -> float:
    return float(stats.kendalltau(score, truth).statistic)


def with_ground_truth(data: FeatureMatrix, path: Path) -> FeatureMatrix:
    """`data` with every candidate's accuracies from the ground-truth CSV (the store holds the
    labels file's few); a candidate the CSV lacks is an error."""
    truth = pl.read_csv(path).filter(pl.col("seed") == 0)
    space = get_space(SPACE)
    truth = truth.with_columns(pl.col("arch").map_elements(space.normalise, pl.String))
    rows = (
        pl.DataFrame({"arch_id": data.arch_ids})
        .join(space.archs().select("arch_id", "arch"), on="arch_id", how="left")
        .join(truth, on="arch", how="left", maintain_order="left")
    )
    if rows["val_acc"].null_count():
        missing = rows.filter(pl.col("val_acc").is_null())["arch"].to_list()
        raise SystemExit(
            f"{path}: {len(missing)} candidates have no seed-0 row (first: {missing[0]}); "
            "run python benchmarks/digits_ground_truth.py --seeds 0"
        )
    data.val_acc = rows["val_acc"].to_numpy().astype(np.float64)
    data.test_acc = rows["test_acc"].to_numpy().astype(np.float64)
    return data


def best_single_proxy(train: FeatureMatrix) -> tuple[str, float]:
    """(aggregate column, sign) whose Kendall with the training labels' validation accuracy
    is largest in absolute value; failed values rank last either way."""
    best, best_tau, best_sign = "", -1.0, 1.0
    for j, name in enumerate(train.aggregate_names):
        column = train.aggregates[:, j]
        tau = kendall(rank_failures_last(column), train.val_acc)
        if not np.isfinite(tau):  # constant on the training labels
            continue
        sign = 1.0 if tau >= 0 else -1.0
        tau = kendall(rank_failures_last(sign * column), train.val_acc)
        if abs(tau) > best_tau:
            best, best_tau, best_sign = name, abs(tau), sign
    if not best:
        raise ValueError("every aggregate proxy is constant on the training labels")
    return best, best_sign


def predictors(
    config: dict[str, Any], cache: Path, epochs: int | None, pretrain_epochs: int | None
) -> dict[str, tuple[str, dict[str, Any]]]:
    """label -> (registered predictor, params)."""
    fusion = dict(config["train"]["predictors"]["fusion"]["params"])
    fusion |= {"device": "cpu", "pretrain_cache": str(cache)}
    if epochs is not None:
        fusion["epochs"] = epochs
    if pretrain_epochs is not None:
        fusion["pretrain_epochs"] = pretrain_epochs
    return {
        "fusion": ("fusion", fusion),
        "gbdt": ("gbdt", {}),
        "gbdt + one-hot": ("gbdt", {"use_onehot": True}),
        "one-hot alone": ("gbdt", {"use_onehot": True, "use_proxies": False}),
    }


def write_outputs(
    out: Path, runs: list[dict[str, Any]], labels: list[str], sizes: list[int]
) -> list[dict[str, Any]]:
    """The runs CSV, the summary CSV and Markdown; returns the summary rows."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "digits_predictors_runs.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(runs[0]))
        writer.writeheader()
        writer.writerows(runs)
    summary = []
    for label in labels:
        for n in sizes:
            taus = [r["kendall"] for r in runs if r["predictor"] == label and r["n"] == n]
            summary.append(
                {
                    "predictor": label,
                    "n": n,
                    "kendall_mean": round(float(np.mean(taus)), 6),
                    "kendall_std": round(float(np.std(taus)), 6),
                    "seeds": len(taus),
                }
            )
    with (out / "digits_predictors.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(summary[0]))
        writer.writeheader()
        writer.writerows(summary)
    cell = {(s["predictor"], s["n"]): s for s in summary}
    lines = [
        "| predictor | " + " | ".join(f"n = {n}" for n in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for label in labels:
        values = [cell[label, n] for n in sizes]
        lines.append(
            f"| {label} | "
            + " | ".join(f"{v['kendall_mean']:.3f} ± {v['kendall_std']:.3f}" for v in values)
            + " |"
        )
    (out / "digits_predictors.md").write_text("\n".join(lines) + "\n")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="config/digits.yaml")
    parser.add_argument("--results", default="results/digits", help="the extracted store")
    parser.add_argument("--truth", type=Path, default=OUT / "digits_ground_truth.csv")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 50])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--fusion-epochs", type=int, help="fusion's fine-tuning epochs (default: the config's)"
    )
    parser.add_argument(
        "--fusion-pretrain-epochs", type=int, help="fusion's pretraining epochs (default: ditto)"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    started = time.perf_counter()

    config = load(args.config)  # registers the user space "digits"
    proxies = config["train"]["features"]
    data = Store(args.results).assemble(
        SPACE, SPACE, proxies, onehot=True, target=SPACE, every_cell=True
    )
    data = with_ground_truth(data, args.truth)
    pool = data.unlabelled()  # every candidate, without labels: what fusion pretrains on
    models = predictors(
        config, args.out / "digits_pretrained", args.fusion_epochs, args.fusion_pretrain_epochs
    )
    labels = [*models, BEST_PROXY, REFERENCE]
    print(
        f"{len(data)} candidates, {len(data.aggregate_names)} aggregate proxies, "
        f"one-hot width {data.onehot.shape[1]}; val/test Kendall over all "
        f"{kendall(data.val_acc, data.test_acc):.3f}",
        flush=True,
    )
    runs: list[dict[str, Any]] = []
    for n in args.sizes:
        for seed in args.seeds:
            chosen = np.random.default_rng([seed, n]).choice(len(data), size=n, replace=False)
            is_train = np.zeros(len(data), dtype=bool)
            is_train[chosen] = True
            train, rest = data.subset(is_train), data.subset(~is_train)
            row = {"n": n, "seed": seed}
            for label, (model, params) in models.items():
                t0 = time.perf_counter()
                predictor = create_predictor(model, **params)
                predictor.fit(train, seed=seed, pool=pool)
                score, _ = predictor.predict(rest)
                runs.append(
                    {
                        **row,
                        "predictor": label,
                        "kendall": kendall(score, rest.test_acc),
                        "fit_seconds": time.perf_counter() - t0,
                        "proxy": "",
                    }
                )
            t0 = time.perf_counter()
            name, sign = best_single_proxy(train)
            column = rest.aggregates[:, rest.aggregate_names.index(name)]
            runs.append(
                {
                    **row,
                    "predictor": BEST_PROXY,
                    "kendall": kendall(rank_failures_last(sign * column), rest.test_acc),
                    "fit_seconds": time.perf_counter() - t0,
                    "proxy": ("-" if sign < 0 else "") + name,
                }
            )
            runs.append(
                {
                    **row,
                    "predictor": REFERENCE,
                    "kendall": kendall(rest.val_acc, rest.test_acc),
                    "fit_seconds": 0.0,
                    "proxy": "",
                }
            )
            print(
                f"n={n:<3} seed={seed}  "
                + "  ".join(f"{r['predictor']} {r['kendall']:.3f}" for r in runs[-len(labels) :])
                + f"  (picked {runs[-2]['proxy']})",
                flush=True,
            )
    summary = write_outputs(args.out, runs, labels, args.sizes)
    cell = {(s["predictor"], s["n"]): s for s in summary}
    print(f"\nKendall tau on the held-out candidates' test accuracy ({len(args.seeds)} seeds)")
    print(f"{'predictor':22}" + "".join(f"{'n=' + str(n):>18}" for n in args.sizes))
    for label in labels:
        print(
            f"{label:22}"
            + "".join(
                f"{cell[label, n]['kendall_mean']:>11.3f} ± {cell[label, n]['kendall_std']:.3f}"
                for n in args.sizes
            )
        )
    for n in args.sizes:
        picks = [r["proxy"] for r in runs if r["predictor"] == BEST_PROXY and r["n"] == n]
        print(f"best single proxy at n={n}: {', '.join(picks)}")
    for label in models:
        spent = sum(r["fit_seconds"] for r in runs if r["predictor"] == label)
        print(f"{label}: {spent:.1f} s fitting and predicting")
    print(f"wall time {time.perf_counter() - started:.1f} s -> {args.out}/digits_predictors.*")


if __name__ == "__main__":
    main()
