"""Search strategies over a candidate pool, each registered in STRATEGIES:

exhaustive  score every candidate with a trained predictor;
evolution   regularised evolution (Real et al. 2019) with the predictor as fitness, under a
            budget of fitness evaluations; mutations come from the MUTATIONS registry;
verify      score every candidate, label the `top` best-scored ones and pick among them by
            their validation accuracy (the predictor shortlists, labels decide);
random      baseline: label `budget` random candidates with their validation accuracy;
best_proxy  baseline: rank the candidates by one aggregate zero-cost proxy column.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from parzc.neighbours import nearest_encodings
from parzc.registry import Registry
from parzc.store.matrix import FeatureMatrix

if TYPE_CHECKING:
    from parzc.predictors import Predictor


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

    def reordered(self, order: np.ndarray) -> Outcome:
        """The same outcome with its ranking permuted by `order`."""
        return replace(
            self,
            ranked=self.ranked[order],
            score=self.score[order],
            uncertainty=self.uncertainty[order],
        )


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


@strategy("ucb", needs_predictor=True)
def upper_confidence(
    pool: SearchPool,
    predictor: Predictor,
    rng: np.random.Generator,
    budget: int,
    kappa: float = 1.0,
) -> Outcome:
    """Score the whole pool and rank by mean + kappa * std of the predictor's MC samples (an
    optimistic pick among candidates it is unsure of); without an uncertainty it is exhaustive.
    The reported score stays the predicted mean."""
    scorer = _Scorer(pool, predictor)
    scorer(range(len(pool)))
    outcome = scorer.outcome(queries=len(pool))
    bonus = np.nan_to_num(outcome.uncertainty, nan=0.0)
    return outcome.reordered(_order(outcome.score + kappa * bonus))


@strategy("verify", needs_predictor=True)
def verify_shortlist(
    pool: SearchPool,
    predictor: Predictor,
    rng: np.random.Generator,
    budget: int,
    top: int = 10,
) -> Outcome:
    """Score the whole pool, read the validation accuracy of the `top` best-scored candidates
    (one label each, counted with the training labels) and rank that shortlist by it, then the
    rest by score. With a predictor trained on n labels the search uses n + top labels."""
    if top < 1:
        raise ValueError(f"verify: top must be >= 1, got {top}")
    scorer = _Scorer(pool, predictor)
    scorer(range(len(pool)))
    outcome = scorer.outcome(queries=len(pool))
    shortlist = outcome.ranked[:top]
    order = np.concatenate([_order(pool.data.val_acc[shortlist]), np.arange(top, len(pool))])
    return replace(
        outcome.reordered(order), labelled=shortlist, queries=outcome.queries + len(shortlist)
    )


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
    (nearest,) = nearest_encodings(onehot[parent : parent + 1], onehot)
    return int(rng.choice(nearest)) if len(nearest) else parent


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
