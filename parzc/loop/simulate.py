"""Simulated sequential search on a benchmark space, answered by its recorded ground truth.

Every method labels candidates (the rows of a feature matrix: NB201, all 15,625 cells) one at a
time through an `Oracle` that answers a cell's recorded validation accuracy, as `parzc oracle`
does, within a budget and never twice for one candidate. After every label the honest pick is
recorded: the labelled candidate with the best validation accuracy (the first one labelled on
ties), reported by its test accuracy, which only this scoring reads. Methods, in METHODS:

parzc            rounds of `parzc.loop.ask.propose` (loop predictor refitted on every label,
                 a zero-label scorer before the second, an acquisition) in batches;
random           random search over every candidate;
evolution        regularised evolution (Real et al. 2019): a random initial population, then
                 the best of `sample_size` random members is mutated, the oldest member leaves;
local_search     NASLib-style local search: a random start, its neighbours in random order, a
                 move to the first better one, a random restart at a local optimum;
bananas          the `parzc` rounds with a predictor that reads no proxy (gbdt on the one-hot
                 encoding) and a random first batch;
proxy_evolution  evolution warm-started with the `population` best networks of one zero-cost
                 proxy (Abdelfattah et al. 2021).

A mutation (evolution, local search) is a move to the nearest encodings of the candidate's own
cell among the candidates (NB201: one operation changed, one-hot distance 2;
`parzc.neighbours.nearest_encodings`). Evolution mutates into a neighbour not labelled yet (a
random unlabelled candidate when every neighbour is), so no label is spent twice; local search
compares with an already labelled neighbour for free.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from parzc.loop.ask import DEFAULT_ENSEMBLE, LoopSettings, propose
from parzc.neighbours import nearest_encodings
from parzc.registry import Registry
from parzc.spaces import get_space
from parzc.store.matrix import FeatureMatrix

Method = Callable[..., None]  # (run: Run, **params) -> None; labels through run.oracle
METHODS: Registry[Method] = Registry("simulated search method")
BANANAS_PARAMS: dict[str, Any] = {"use_onehot": True, "use_proxies": False}


class SearchOver(Exception):
    """The budget is spent or no candidate is left: the method stops."""


@dataclass
class Oracle:
    """Validation accuracies by candidate row, each answered once within `budget` labels; a
    row asked again answers its label for free."""

    val_acc: np.ndarray
    budget: int
    order: list[int] = field(default_factory=list)
    _told: dict[int, float] = field(default_factory=dict, repr=False)

    @property
    def remaining(self) -> int:
        return self.budget - len(self.order)

    def knows(self, row: int) -> bool:
        return int(row) in self._told

    def label(self, row: int) -> float:
        """The validation accuracy of `row`; SearchOver once the budget is spent."""
        row = int(row)
        if row in self._told:
            return self._told[row]
        if self.remaining <= 0:
            raise SearchOver
        self.order.append(row)
        self._told[row] = float(self.val_acc[row])
        return self._told[row]


@dataclass
class Run:
    """What a method sees: every candidate's features without accuracies, the oracle, a seeded
    generator, and where fusion keeps its pretrained weights."""

    data: FeatureMatrix
    oracle: Oracle
    rng: np.random.Generator
    seed: int
    device: str = "cpu"
    pretrained: str = ""
    _codes: np.ndarray | None = field(default=None, repr=False)
    _neighbours: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.row_of = {int(a): i for i, a in enumerate(self.data.arch_ids)}

    @property
    def codes(self) -> np.ndarray:
        """The one-hot encoding of each candidate's own cell (the matrix holds its network's)."""
        if self._codes is None:
            self._codes = cell_codes(self.data.space, self.data.arch_ids)
        return self._codes

    def neighbours(self, row: int) -> np.ndarray:
        """The candidates at the smallest nonzero distance from `row`'s own encoding."""
        row = int(row)
        if row not in self._neighbours:
            (found,) = nearest_encodings(self.codes[row : row + 1], self.codes)
            self._neighbours[row] = found
        return self._neighbours[row]

    def random_unlabelled(self) -> int:
        """A uniformly drawn candidate without a label; SearchOver when none is left."""
        left = len(self.data) - len(self.oracle.order)
        if left <= 0:
            raise SearchOver
        while True:  # rejection: cheap while most candidates are unlabelled
            row = int(self.rng.integers(len(self.data)))
            if not self.oracle.knows(row):
                return row

    def labels(self) -> pl.DataFrame:
        """The labels so far as `propose` reads them (no test accuracy)."""
        rows = np.asarray(self.oracle.order, dtype=np.int64)
        return pl.DataFrame(
            {
                "arch_id": self.data.arch_ids[rows].astype(np.int32),
                "val_acc": self.oracle.val_acc[rows].astype(np.float64),
                "test_acc": np.full(len(rows), None),
            },
            schema_overrides={"test_acc": pl.Float64},
        )

    def label_all(self, rows: Sequence[int]) -> None:
        for row in rows:
            self.oracle.label(row)


def cell_codes(space: str, arch_ids: np.ndarray) -> np.ndarray:
    """uint8 one-hot encodings of the cells `arch_ids` of `space`."""
    space_obj = get_space(space)
    encodings = dict(space_obj.archs().select("arch_id", "arch").iter_rows())
    return np.stack([space_obj.onehot(encodings[int(a)]) for a in arch_ids]).astype(np.uint8)


def ground_truth(data: FeatureMatrix) -> tuple[np.ndarray, np.ndarray]:
    """(val_acc, test_acc) of every row of `data` on its target, from the space's recorded
    accuracies (`SearchSpace.accuracy_table`)."""
    space = get_space(data.space)
    if not space.ground_truth:
        raise ValueError(f"space {data.space!r} has no ground truth to simulate a search on")
    table = space.accuracy_table().filter(pl.col("dataset") == data.target)
    rows = pl.DataFrame({"arch_id": data.arch_ids.astype(np.int32)}).join(
        table.select("arch_id", "val_acc", "test_acc"), on="arch_id", how="left"
    )
    if rows["val_acc"].null_count():
        raise ValueError(f"{rows['val_acc'].null_count()} candidates have no recorded accuracy")
    return rows["val_acc"].to_numpy(), rows["test_acc"].to_numpy()


def honest_picks(order: Sequence[int], val: np.ndarray, test: np.ndarray) -> pl.DataFrame:
    """After each label: the labelled row with the best validation accuracy (the first one
    labelled on ties) and its validation and test accuracy."""
    best, picks = -np.inf, []
    pick = -1
    for row in order:
        if val[row] > best:
            best, pick = val[row], row
        picks.append(pick)
    picks_ = np.asarray(picks, dtype=np.int64)
    return pl.DataFrame(
        {
            "labels": np.arange(1, len(picks_) + 1, dtype=np.int32),
            "pick_row": picks_,
            "pick_val_acc": val[picks_].astype(np.float64),
            "pick_test_acc": test[picks_].astype(np.float64),
        }
    )


@contextmanager
def _pretrain_folder(folder: str | None) -> Iterator[str]:
    if folder:
        yield folder
    else:
        with tempfile.TemporaryDirectory(prefix="parzc-pretrained-") as tmp:
            yield tmp


def simulate(
    data: FeatureMatrix,
    method: str,
    seed: int,
    labels: int,
    params: Mapping[str, Any] | None = None,
    device: str = "cpu",
    pretrained: str | None = None,
) -> pl.DataFrame:
    """Run `method` (METHODS) with `params` on every candidate of `data` for up to `labels`
    labels; one row per label: method, seed, labels, pick_test_acc, pick_val_acc, arch_id (the
    labelled candidate), pick_arch_id and wall_s (the run's wall seconds).

    `data` is the assembled matrix of every candidate (`Store.assemble(..., onehot=True,
    target=dataset, every_cell=True)`); its accuracies are not read: the oracle answers from
    `ground_truth`. `pretrained` is fusion's pretraining cache folder (default: a temporary
    one for this run).
    """
    method_fn = METHODS.get(method)
    val, test = ground_truth(data)
    oracle = Oracle(val, labels)
    started = time.perf_counter()
    with _pretrain_folder(pretrained) as folder:
        run = Run(data.unlabelled(), oracle, np.random.default_rng(seed), seed, device, folder)
        try:
            method_fn(run, **dict(params or {}))
        except SearchOver:
            pass
    wall = time.perf_counter() - started
    picks = honest_picks(oracle.order, val, test)
    return picks.select(
        pl.lit(method).alias("method"),
        pl.lit(seed, dtype=pl.Int32).alias("seed"),
        "labels",
        "pick_test_acc",
        "pick_val_acc",
        pl.Series("arch_id", data.arch_ids[oracle.order], dtype=pl.Int32),
        pl.Series("pick_arch_id", data.arch_ids[picks["pick_row"].to_numpy()], dtype=pl.Int32),
        pl.lit(wall).alias("wall_s"),
    )


# -- methods ---------------------------------------------------------------------------------


@METHODS.register("random")
def random_search(run: Run) -> None:
    """Label candidates in a random order."""
    run.label_all(run.rng.permutation(len(run.data)))


def _mutate(run: Run, parent: int) -> int:
    """A random unlabelled neighbour of `parent`, or a random unlabelled candidate."""
    options = [r for r in run.neighbours(parent) if not run.oracle.knows(r)]
    return int(run.rng.choice(options)) if options else run.random_unlabelled()


def _evolve(run: Run, members: Sequence[int], population: int, sample_size: int) -> None:
    """Regularised evolution from the labelled `members` (oldest first) until the search ends."""
    alive = deque((int(r), run.oracle.label(r)) for r in members)
    while True:
        contenders = run.rng.choice(len(alive), min(sample_size, len(alive)), replace=False)
        parent = max((alive[i] for i in contenders), key=lambda member: member[1])[0]
        child = _mutate(run, parent)
        alive.append((child, run.oracle.label(child)))
        if len(alive) > population:
            alive.popleft()


def _check_population(population: int, sample_size: int) -> None:
    if population < 1 or not 1 <= sample_size <= population:
        raise ValueError(
            f"evolution needs 1 <= sample_size ({sample_size}) <= population ({population})"
        )


@METHODS.register("evolution")
def evolution(run: Run, population: int = 20, sample_size: int = 5) -> None:
    """Regularised evolution from `population` random candidates."""
    _check_population(population, sample_size)
    size = min(population, len(run.data))
    _evolve(run, run.rng.choice(len(run.data), size, replace=False), population, sample_size)


@METHODS.register("proxy_evolution")
def proxy_evolution(
    run: Run, proxy: str = "net:nwot", population: int = 20, sample_size: int = 5
) -> None:
    """Regularised evolution from the `population` networks (their canonical cells) that the
    aggregate column `proxy` ranks best (failed values last)."""
    _check_population(population, sample_size)
    data = run.data
    if proxy not in data.aggregate_names:
        raise ValueError(f"proxy {proxy!r} is no aggregate column ({data.aggregate_names})")
    column = data.aggregates[:, data.aggregate_names.index(proxy)]
    canonical = np.flatnonzero(data.arch_ids == data.network_ids)
    value = np.where(np.isfinite(column[canonical]), column[canonical], -np.inf)
    top = canonical[np.argsort(-value, kind="stable")[:population]]
    _evolve(run, top, population, sample_size)


@METHODS.register("local_search")
def local_search(run: Run) -> None:
    """First-improvement local search with random restarts."""
    while True:
        current = run.random_unlabelled()
        value = run.oracle.label(current)
        improved = True
        while improved:
            improved = False
            for row in run.rng.permutation(run.neighbours(current)):
                candidate = run.oracle.label(row)
                if candidate > value:
                    current, value, improved = int(row), candidate, True
                    break


def _random_networks(run: Run, k: int) -> list[int]:
    """Up to `k` random candidates of distinct networks that have no labelled candidate."""
    taken = {int(run.data.network_ids[r]) for r in run.oracle.order}
    rows: list[int] = []
    for row in run.rng.permutation(len(run.data)):
        network = int(run.data.network_ids[row])
        if network not in taken:
            rows.append(int(row))
            taken.add(network)
            if len(rows) == k:
                break
    return rows


def _batches(batch: int, first_batches: Sequence[int]) -> Iterator[int]:
    if batch < 1 or any(b < 1 for b in first_batches):
        raise ValueError(f"batch sizes must be >= 1: {[*first_batches, batch]}")
    return itertools.chain(first_batches, itertools.repeat(batch))


def _rounds(
    run: Run,
    settings: LoopSettings,
    batch: int,
    first_batches: Sequence[int],
    random_start: bool,
) -> None:
    """Label the proposals of successive rounds; with `random_start`, random networks until two
    labels exist (no zero-label scorer is read)."""
    for size in _batches(batch, first_batches):
        k = min(size, run.oracle.remaining)
        if k <= 0:
            return
        if random_start and len(run.oracle.order) < 2:
            rows = _random_networks(run, k)
        else:
            labels = run.labels()
            proposals = propose(run.data, labels, set(), k, settings, run.device, run.pretrained)
            rows = [run.row_of[int(a)] for a in proposals["arch_id"]]
        if not rows:
            raise SearchOver
        run.label_all(rows)


@METHODS.register("parzc")
def parzc_loop(
    run: Run,
    model: str = "fusion",
    params: Mapping[str, Any] | None = None,
    acquisition: str = "diverse",
    acquisition_params: Mapping[str, Any] | None = None,
    zero_label: str = "ensemble",
    ensemble: Sequence[str] = tuple(DEFAULT_ENSEMBLE),
    batch: int = 10,
    first_batches: Sequence[int] = (),
) -> None:
    """Rounds of `propose`: `first_batches` sizes first, then `batch` per round."""
    settings = LoopSettings(
        predictor=model,
        model=model,
        params=dict(params or {}),
        acquisition=acquisition,
        acquisition_params=dict(acquisition_params or {}),
        zero_label=zero_label,
        ensemble=tuple(ensemble),
        seed=run.seed,
    )
    _rounds(run, settings, batch, first_batches, random_start=False)


@METHODS.register("bananas")
def bananas(
    run: Run,
    params: Mapping[str, Any] | None = None,
    acquisition: str = "diverse",
    acquisition_params: Mapping[str, Any] | None = None,
    batch: int = 10,
    first_batches: Sequence[int] = (),
) -> None:
    """The `parzc` rounds with gbdt on the one-hot encoding alone and a random first batch."""
    params = BANANAS_PARAMS | dict(params or {})
    if params.get("use_proxies", True):
        raise ValueError("bananas reads no proxy: its gbdt needs use_proxies: false")
    settings = LoopSettings(
        predictor="bananas",
        model="gbdt",
        params=params,
        acquisition=acquisition,
        acquisition_params=dict(acquisition_params or {}),
        seed=run.seed,
    )
    _rounds(run, settings, batch, first_batches, random_start=True)
