"""Running one search: load the pool from the store, run a strategy, cost it, save it."""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from parzc.device import resolve_device
from parzc.io import write_parquet
from parzc.predictors import Predictor
from parzc.search.costs import SearchCost, TrainingRun, load_training, search_cost
from parzc.search.strategies import STRATEGIES, SearchPool
from parzc.store import Store
from parzc.store.matrix import FeatureMatrix


def load_pool(
    store: Store,
    space: str,
    dataset: str,
    proxies: Sequence[str],
    size: int | None = None,
    seed: int = 0,
    target: str | None = None,
    matrix: FeatureMatrix | None = None,
) -> SearchPool:
    """Every arch whose network has features for `proxies` (extracted on `dataset`) in the
    store, a predictor's training archs included, or a seeded sample of `size` of them; ground
    truth of `target` (default `dataset`). `matrix`, the pipeline's assembled matrix of the
    same proxies and target, saves assembling the store again."""
    target = target or dataset
    reusable = matrix is not None and (matrix.space, matrix.dataset, matrix.target) == (
        space,
        dataset,
        target,
    )
    if reusable and list(matrix.proxies) == list(proxies):
        data = matrix
    else:
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
    matrix: FeatureMatrix | None = None,
) -> tuple[SearchResult, SearchCost]:
    """Load the pool (the predictor's features when `run` is given, else `features`; from
    `matrix` where it holds them), search it with the run's predictor, and cost the search."""
    training = load_training(run) if run is not None else None
    predictor = Predictor.load(run.model) if run is not None else None
    proxies = training.features if training is not None else list(features)
    pool = load_pool(store, space, dataset, proxies, pool_size, seed, target, matrix)
    result = run_search(
        pool, strategy, predictor, top_k=top_k, budget=budget, seed=seed, params=params
    )
    return result, search_cost(store, result, training)


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
