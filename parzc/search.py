"""Architecture search over a candidate pool from the store: strategies, results, report.

Strategies (registry STRATEGIES) rank pool members:
  exhaustive  score every candidate with a trained predictor;
  evolution   regularised evolution (Real et al. 2019) with the predictor as fitness, under a
              budget of fitness evaluations; mutations come from the MUTATIONS registry;
  random      baseline: label `budget` random candidates with their validation accuracy;
  best_proxy  baseline: rank the candidates by one aggregate zero-cost proxy column.
"""

from __future__ import annotations

import inspect
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from parzc.costs import SearchCost, TrainingRun, load_training, search_cost
from parzc.device import resolve_device
from parzc.features import FeatureMatrix
from parzc.io import read_metadata, write_atomic, write_parquet
from parzc.predictors import Predictor
from parzc.registry import Registry
from parzc.report import markdown_table
from parzc.store import Store


@dataclass
class SearchPool:
    """The candidates: their features, one-hot encodings, encodings and ground truth."""

    data: FeatureMatrix
    archs: list[str]
    space_test_acc: np.ndarray  # sorted test accuracies of the whole space, for true ranks

    def __len__(self) -> int:
        return len(self.data)

    def true_rank(self, test_acc: np.ndarray) -> list[int | None]:
        """1 + the number of archs of the whole space with a higher test accuracy."""
        above = len(self.space_test_acc) - np.searchsorted(self.space_test_acc, test_acc, "right")
        return [
            int(r) + 1 if np.isfinite(a) else None for r, a in zip(above, test_acc, strict=True)
        ]


def load_pool(
    store: Store,
    space: str,
    dataset: str,
    proxies: Sequence[str],
    size: int | None = None,
    seed: int = 0,
    target: str | None = None,
) -> SearchPool:
    """Every arch whose network has features for `proxies` (extracted on `dataset`) in the
    store, a predictor's training archs included, or a seeded sample of `size` of them; ground
    truth of `target` (default `dataset`)."""
    target = target or dataset
    data = store.assemble(space, dataset, proxies, onehot=True, target=target, every_cell=True)
    if size is not None:
        if size > len(data):
            raise ValueError(
                f"a pool of {size} archs was asked for but the store holds {len(data)} "
                f"archs of {space}/{dataset} with features {list(proxies)}"
            )
        data = data.subset(
            np.sort(np.random.default_rng([seed, size]).permutation(len(data))[:size])
        )
    truth = pl.from_arrow(store.accuracy).filter(
        (pl.col("space") == space) & (pl.col("dataset") == target)
    )
    encoding = dict(zip(truth["arch_id"].to_list(), truth["arch"].to_list(), strict=True))
    return SearchPool(
        data=data,
        archs=[encoding[int(a)] for a in data.arch_ids],
        space_test_acc=np.sort(truth["test_acc"].drop_nulls().drop_nans().to_numpy()),
    )


@dataclass
class Outcome:
    """A strategy's answer: pool positions ranked best first, and what it read to get there."""

    ranked: np.ndarray
    score: np.ndarray
    uncertainty: np.ndarray
    featurised: np.ndarray  # positions whose zero-cost features were read
    labelled: np.ndarray  # positions whose ground-truth (validation) accuracy was read
    proxies: tuple[str, ...]  # feature columns read (decide which feature sets were needed)
    queries: int  # fitness evaluations (predictor or label queries)


StrategyFn = Callable[..., Outcome]


@dataclass(frozen=True)
class Strategy:
    run: StrategyFn  # (pool, predictor, rng, budget, **params) -> Outcome
    needs_predictor: bool


STRATEGIES: Registry[Strategy] = Registry("search strategy")
Mutation = Callable[[SearchPool, int, np.random.Generator], int]
MUTATIONS: Registry[Mutation] = Registry("mutation")
_NONE = np.zeros(0, dtype=np.int64)


def strategy(name: str, needs_predictor: bool) -> Callable[[StrategyFn], StrategyFn]:
    def register(fn: StrategyFn) -> StrategyFn:
        STRATEGIES.register(name)(Strategy(fn, needs_predictor))
        return fn

    return register


def _order(values: np.ndarray) -> np.ndarray:
    """Indices sorting `values` descending (stable); NaN last."""
    return np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")


class _Scorer:
    """Predictor scores of pool members, each computed once; remembers the query order."""

    def __init__(self, pool: SearchPool, predictor: Predictor) -> None:
        self.pool, self.predictor = pool, predictor
        self.scores: dict[int, tuple[float, float]] = {}

    def __call__(self, positions: Iterable[int]) -> None:
        new = [p for p in dict.fromkeys(int(p) for p in positions) if p not in self.scores]
        if new:
            score, unc = self.predictor.predict(self.pool.data.subset(np.asarray(new)))
            unc = np.full(len(new), np.nan) if unc is None else unc
            self.scores.update(
                zip(new, zip(score.tolist(), unc.tolist(), strict=True), strict=True)
            )

    def fitness(self, position: int) -> float:
        score = self.scores[position][0]
        return score if np.isfinite(score) else -np.inf

    def outcome(self, queries: int) -> Outcome:
        positions = np.fromiter(self.scores, dtype=np.int64, count=len(self.scores))
        score, unc = (
            np.array(v, dtype=np.float64) for v in zip(*self.scores.values(), strict=True)
        )
        order = _order(score)
        return Outcome(
            ranked=positions[order],
            score=score[order],
            uncertainty=unc[order],
            featurised=positions,
            labelled=_NONE,
            proxies=tuple(self.pool.data.proxies),
            queries=queries,
        )


@strategy("exhaustive", needs_predictor=True)
def exhaustive(
    pool: SearchPool, predictor: Predictor, rng: np.random.Generator, budget: int
) -> Outcome:
    """Score the whole pool with the predictor (the budget does not apply)."""
    scorer = _Scorer(pool, predictor)
    scorer(range(len(pool)))
    return scorer.outcome(queries=len(pool))


@strategy("evolution", needs_predictor=True)
def evolution(
    pool: SearchPool,
    predictor: Predictor,
    rng: np.random.Generator,
    budget: int,
    population: int = 20,
    sample_size: int = 5,
    mutation: str = "nearest",
) -> Outcome:
    """Regularised evolution with `budget` fitness evaluations (a revisited arch's score is reused).

    A random initial population; then repeatedly the best of `sample_size` random members (the
    tournament winner) is mutated, its child joins the population and the oldest member leaves.
    """
    if population < 1 or not 1 <= sample_size <= population:
        raise ValueError(
            f"evolution needs 1 <= sample_size ({sample_size}) <= population ({population})"
        )
    mutate = MUTATIONS.get(mutation)
    scorer = _Scorer(pool, predictor)
    members = deque(
        int(p) for p in rng.choice(len(pool), min(population, budget, len(pool)), False)
    )
    scorer(members)
    evaluations = len(members)
    while evaluations < budget:
        contenders = rng.choice(len(members), min(sample_size, len(members)), replace=False)
        parent = max((members[i] for i in contenders), key=scorer.fitness)
        child = mutate(pool, parent, rng)
        scorer([child])
        members.append(child)
        if len(members) > population:
            members.popleft()
        evaluations += 1
    return scorer.outcome(queries=evaluations)


@MUTATIONS.register("nearest")
def nearest_neighbour(pool: SearchPool, parent: int, rng: np.random.Generator) -> int:
    """A random candidate among the closest to `parent` in the space's one-hot op encoding.

    On a complete NB201 pool these are the archs that differ from the parent in exactly one
    edge operation (the classic NB201 mutation); on a sampled pool, the nearest that exist.
    """
    onehot = pool.data.onehot
    distance = np.abs(onehot - onehot[parent]).sum(axis=1)
    distance[distance == 0] = np.inf  # the parent and any copy of its encoding
    if not np.isfinite(distance.min()):
        return parent
    return int(rng.choice(np.flatnonzero(distance == distance.min())))


@MUTATIONS.register("random")
def random_member(pool: SearchPool, parent: int, rng: np.random.Generator) -> int:
    """Any other candidate, uniformly."""
    if len(pool) == 1:
        return parent
    other = int(rng.integers(len(pool) - 1))
    return other + (other >= parent)


@strategy("random", needs_predictor=False)
def random_search(
    pool: SearchPool, predictor: Predictor | None, rng: np.random.Generator, budget: int
) -> Outcome:
    """Label `budget` random candidates (validation accuracy, one label each); rank by it."""
    picked = rng.choice(len(pool), size=min(budget, len(pool)), replace=False)
    val = pool.data.val_acc[picked]
    order = _order(val)
    return Outcome(
        ranked=picked[order],
        score=val[order],
        uncertainty=np.full(len(picked), np.nan),
        featurised=_NONE,
        labelled=picked,
        proxies=(),
        queries=len(picked),
    )


@strategy("best_proxy", needs_predictor=False)
def best_proxy(
    pool: SearchPool,
    predictor: Predictor | None,
    rng: np.random.Generator,
    budget: int,
    proxy: str = "synflow",
) -> Outcome:
    """Rank the whole pool by one aggregate proxy column ("synflow", "net:nwot", ...)."""
    names = pool.data.aggregate_names
    if proxy not in names:
        raise ValueError(
            f"best_proxy: unknown proxy column {proxy!r}; available: {', '.join(names)}"
        )
    values = pool.data.aggregates[:, names.index(proxy)]
    order = _order(values)
    return Outcome(
        ranked=order,
        score=values[order],
        uncertainty=np.full(len(pool), np.nan),
        featurised=np.arange(len(pool)),
        labelled=_NONE,
        proxies=(proxy,),
        queries=len(pool),
    )


@dataclass
class SearchResult:
    """The top-k of one search, what it read, and how long its scoring took."""

    space: str
    dataset: str  # the target
    proxy_dataset: str  # where the proxies were extracted
    strategy: str
    seed: int
    top: pl.DataFrame  # rank, arch_id, arch, score, uncertainty, val_acc, test_acc, true_rank
    featurised: np.ndarray  # network_ids whose features the search read
    labelled: np.ndarray  # arch_ids whose ground truth the search read
    proxies: tuple[str, ...]
    queries: int
    pool_size: int
    pool_best_test_acc: float
    space_archs: int  # archs of the space with a test accuracy (true ranks are among these)
    score_s: float  # wall seconds of the strategy (predictor queries included)
    score_cpu_time_s: float  # CPU time of the strategy (this process)
    score_device: str
    params: dict[str, Any]


def run_search(
    pool: SearchPool,
    strategy: str,
    predictor: Predictor | None = None,
    *,
    top_k: int = 5,
    budget: int = 50,
    seed: int = 0,
    params: dict[str, Any] | None = None,
) -> SearchResult:
    """Run `strategy` on `pool` with a seeded RNG; timed from first to last query."""
    spec = STRATEGIES.get(strategy)
    if spec.needs_predictor and predictor is None:
        raise ValueError(f"search strategy {strategy!r} needs a trained predictor (a model file)")
    if budget < 1 or top_k < 1:
        raise ValueError(f"budget ({budget}) and top_k ({top_k}) must be positive")
    params = dict(params or {})
    accepted = list(inspect.signature(spec.run).parameters)[4:]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)} for search strategy {strategy!r}; "
            f"accepted: {', '.join(accepted) or 'none'}"
        )
    wall, cpu = time.perf_counter(), time.process_time()
    outcome = spec.run(pool, predictor, np.random.default_rng(seed), budget, **params)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    top = outcome.ranked[:top_k]
    test_acc = pool.data.test_acc[top]
    ids = pool.data.arch_ids
    return SearchResult(
        space=pool.data.space,
        dataset=pool.data.target,
        proxy_dataset=pool.data.dataset,
        strategy=strategy,
        seed=seed,
        top=pl.DataFrame(
            {
                "rank": np.arange(1, len(top) + 1, dtype=np.int32),
                "arch_id": ids[top],
                "arch": [pool.archs[p] for p in top],
                "score": outcome.score[:top_k],
                "uncertainty": outcome.uncertainty[:top_k],
                "val_acc": pool.data.val_acc[top],
                "test_acc": test_acc,
                "true_rank": pl.Series(pool.true_rank(test_acc), dtype=pl.Int64),
            }
        ),
        featurised=np.unique(pool.data.network_ids[outcome.featurised]),
        labelled=ids[outcome.labelled],
        proxies=outcome.proxies,
        queries=outcome.queries,
        pool_size=len(pool),
        pool_best_test_acc=float(np.nanmax(pool.data.test_acc)),
        space_archs=len(pool.space_test_acc),
        score_s=wall,
        score_cpu_time_s=cpu,
        score_device=resolve_device(getattr(predictor, "device", "cpu")).type,
        params=params,
    )


def search_job(
    store: Store,
    space: str,
    dataset: str,
    strategy: str,
    *,
    run: TrainingRun | None = None,
    features: Sequence[str] = ("grad_norm", "snip", "synflow"),
    top_k: int = 5,
    budget: int = 50,
    seed: int = 0,
    pool_size: int | None = None,
    params: dict[str, Any] | None = None,
    target: str | None = None,
) -> tuple[SearchResult, SearchCost]:
    """Load the pool (the predictor's features when `run` is given, else `features`), search it
    with the run's predictor, and cost the search."""
    training = load_training(run) if run is not None else None
    predictor = Predictor.load(run.model) if run is not None else None
    proxies = training.features if training is not None else list(features)
    pool = load_pool(store, space, dataset, proxies, pool_size, seed, target)
    result = run_search(
        pool, strategy, predictor, top_k=top_k, budget=budget, seed=seed, params=params
    )
    return result, search_cost(store, result, training)


# ---- per-search files and the seed-aggregated report ----------------------------------------

KEYS = ("space", "dataset", "method", "strategy", "predictor", "train_size")


def save_search(
    path: str | Path, result: SearchResult, cost: SearchCost, run: TrainingRun | None
) -> None:
    """The top-k table, with the run's keys, pool facts and cost as JSON metadata `search`."""
    summary = {
        "space": result.space,
        "dataset": result.dataset,
        "proxy_dataset": result.proxy_dataset,
        "strategy": result.strategy,
        "predictor": run.predictor if run else None,
        "train_size": run.train_size if run else None,
        "seed": result.seed,
        "params": result.params,
        "queries": result.queries,
        "pool_size": result.pool_size,
        "pool_best_test_acc": result.pool_best_test_acc,
        "space_archs": result.space_archs,
        **cost.as_dict(),
    }
    write_parquet(result.top.to_arrow(), path, {"search": json.dumps(summary)})


def summary_rows(paths: Sequence[str | Path]) -> pl.DataFrame:
    """One row per search file: its summary and the chosen (top-1) architecture."""
    rows = []
    for path in paths:
        summary = json.loads(read_metadata(path)["search"])
        best = pl.read_parquet(path).row(0, named=True)
        summary.pop("params")
        rows.append(
            {**summary, **{k: best[k] for k in ("arch_id", "arch", "test_acc", "true_rank")}}
        )
    frame = pl.DataFrame(rows, infer_schema_length=None)
    label = pl.when(pl.col("predictor").is_null()).then(pl.col("strategy"))
    return frame.with_columns(
        label.otherwise(pl.format("{} ({} n={})", "strategy", "predictor", "train_size")).alias(
            "method"
        )
    )


COST_COLUMNS = ("extract_s", "train_s", "score_s", "cpu_s", "gpu_s", "label_train_s")


def search_table(rows: pl.DataFrame) -> pl.DataFrame:
    """Mean and std over seeds of the chosen arch's test accuracy and true rank, and mean costs.

    `label_train_s` stays NaN (unknown) when any label's training time is unknown.
    """
    aggs = [
        pl.col("seed").n_unique().alias("seeds"),
        pl.col("pool_size").mean().alias("pool"),
        pl.col("pool_best_test_acc").mean(),
        pl.col("space_archs").max(),
        pl.col("queries").mean(),
        pl.col("extract_archs").mean(),
        pl.col("labels").mean(),
        pl.col("test_acc").mean().alias("test_acc_mean"),
        pl.col("test_acc").std().alias("test_acc_std"),
        pl.col("true_rank").mean().alias("true_rank_mean"),
        pl.col("true_rank").std().alias("true_rank_std"),
    ]
    aggs += [pl.col(c).mean().alias(f"{c}_mean") for c in COST_COLUMNS]
    return (
        rows.group_by(KEYS)
        .agg(aggs)
        .sort("space", "dataset", "test_acc_mean", descending=[False, False, True])
    )


def search_markdown(table: pl.DataFrame) -> str:
    """The report: 'mean ± std' accuracy and rank, mean seconds per phase, unknowns spelled out."""

    def pm(name: str, digits: int) -> pl.Expr:
        mean, std = pl.col(f"{name}_mean").round(digits), pl.col(f"{name}_std").round(digits)
        return pl.format("{} ± {}", mean, std.fill_null(0)).alias(name)

    def seconds(name: str) -> pl.Expr:
        value = pl.col(f"{name}_mean")
        text = pl.when(value.is_nan() | value.is_null()).then(pl.lit("unknown"))
        return text.otherwise(value.round(1).cast(pl.String)).alias(name)

    compact = table.select(
        "space",
        "dataset",
        "method",
        "seeds",
        pl.col("pool").cast(pl.Int64),
        pl.col("queries").round(0).cast(pl.Int64),
        pl.col("labels").round(0).cast(pl.Int64),
        pm("test_acc", 2),
        pm("true_rank", 1),
        pl.col("space_archs").cast(pl.Int64),
        pl.col("pool_best_test_acc").alias("pool_best"),
        pl.col("extract_archs").round(0).cast(pl.Int64),
        *(seconds(c) for c in COST_COLUMNS),
    )
    return SEARCH_NOTES + "\n" + markdown_table(compact)


SEARCH_NOTES = """# Architecture search

Each search returns its top-k; the chosen architecture is its top-1. `test_acc` and `true_rank`
(1 = best of the `space_archs` archs with ground truth) are mean ± std over seeds; `pool_best` is
the best test accuracy among the candidates. Seconds are means over seeds: `extract_s` sums the
per-arch extraction times of the `extract_archs` archs the search and its predictor's training
split needed, `train_s` is the predictor's train_predictor job (Snakemake benchmark `s`),
`score_s` the search itself. `cpu_s` / `gpu_s` add up the phases by the device they ran on.
`label_train_s` is the training time of the `labels` ground-truth labels used: "unknown" when the
space ships no per-architecture training times (NB201 does not), never estimated.
"""


def plot_search(table: pl.DataFrame, path: str | Path) -> None:
    """Chosen arch's test accuracy (mean ± std over seeds) against measured device-seconds and
    against ground-truth labels used; one row of panels per (space, dataset)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = table.select("space", "dataset").unique().sort("space", "dataset").rows()
    fig, axes = plt.subplots(len(panels), 2, figsize=(11, 4 * len(panels)), squeeze=False)
    for (ax_s, ax_l), (space, dataset) in zip(axes, panels, strict=True):
        part = table.filter((pl.col("space") == space) & (pl.col("dataset") == dataset))
        for row in part.iter_rows(named=True):
            seconds = row["cpu_s_mean"] + row["gpu_s_mean"]
            for ax, x in ((ax_s, seconds), (ax_l, row["labels"])):
                ax.errorbar(
                    x,
                    row["test_acc_mean"],
                    yerr=row["test_acc_std"] or 0.0,
                    marker="o",
                    capsize=3,
                    label=row["method"],
                )
        for ax in (ax_s, ax_l):
            ax.axhline(
                part["pool_best_test_acc"].max(), color="grey", ls="--", lw=1, label="best in pool"
            )
            ax.set(ylabel="test accuracy of the chosen arch (%)", title=f"{space} / {dataset}")
            ax.grid(alpha=0.3)
        most = float((part["cpu_s_mean"] + part["gpu_s_mean"]).max())
        ax_s.set_xscale("symlog", linthresh=1.0)
        ax_s.set(
            xlim=(-0.5, 2 * most + 1),
            xlabel="measured CPU + GPU seconds (label training time excluded)",
        )
        ax_l.set(xlabel="ground-truth labels used")
        ax_l.legend(fontsize=7)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
