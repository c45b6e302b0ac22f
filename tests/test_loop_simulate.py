"""Simulated search (parzc.loop.simulate) on a small real NB201 store: the shared `mini_store`
fixture plus 32 more extracted networks (40 networks, 68 cells), every cell a candidate."""

from __future__ import annotations

import shutil

import numpy as np
import polars as pl
import pytest
import torch
from conftest import extract_into

from parzc.loop.simulate import METHODS, Oracle, SearchOver, ground_truth, simulate
from parzc.store import Store
from parzc.store.matrix import FeatureMatrix

LABELS = 30
FAST_GBDT = {"max_iter": 30}
SMALL_FUSION = {
    "tree_weight": 0.5,
    "branches": ["cell", "aggregates"],
    "pretrain_proxies": ["net:nwot", "synflow"],
    "pretrain_epochs": 2,
    "epochs": 5,
}
PARAMS = {
    "random": {},
    "evolution": {"population": 5, "sample_size": 2},
    "local_search": {},
    "proxy_evolution": {"proxy": "net:nwot", "population": 5, "sample_size": 2},
    "parzc": {"model": "gbdt", "params": FAST_GBDT, "batch": 4, "first_batches": [2]},
    "bananas": {"params": FAST_GBDT, "batch": 4},
}


@pytest.fixture(scope="module")
def matrix(mini_store, tmp_path_factory) -> FeatureMatrix:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("simulate_results")
    for table in ("features", "arch_stats"):
        shutil.copytree(mini_store / table, root / table)
    extract_into(root, 8, 39)
    return Store(root).assemble(
        "nb201", "cifar10", ["grad_norm", "snip", "synflow"], onehot=True, every_cell=True
    )


@pytest.fixture(scope="module")
def runs(matrix) -> dict[str, pl.DataFrame]:
    return {name: simulate(matrix, name, 0, LABELS, params) for name, params in PARAMS.items()}


def test_every_method_is_covered():
    assert sorted(PARAMS) == METHODS.names()


@pytest.mark.parametrize("method", sorted(PARAMS))
def test_picks_are_honest_and_labels_distinct(runs, matrix, method):
    frame = runs[method]
    val, test = ground_truth(matrix)
    row = {int(a): i for i, a in enumerate(matrix.arch_ids)}
    assert frame["method"].unique().to_list() == [method]
    assert frame["labels"].to_list() == list(range(1, len(frame) + 1))
    assert 1 <= len(frame) <= LABELS
    assert frame["arch_id"].n_unique() == len(frame)  # no candidate labelled twice
    assert frame["pick_val_acc"].is_sorted()  # monotone over labels
    assert frame["wall_s"].n_unique() == 1
    labelled = [row[a] for a in frame["arch_id"]]
    for n in range(1, len(frame) + 1):
        best = max(labelled[:n], key=lambda r: val[r])  # the first labelled on ties
        assert frame["pick_val_acc"][n - 1] == val[best]
        assert frame["pick_test_acc"][n - 1] == test[best]
        assert frame["pick_arch_id"][n - 1] == matrix.arch_ids[best]


@pytest.mark.parametrize("method", ["parzc", "bananas"])
def test_loop_labels_one_candidate_per_network(runs, matrix, method):
    network = dict(zip(matrix.arch_ids.tolist(), matrix.network_ids.tolist(), strict=True))
    networks = [network[a] for a in runs[method]["arch_id"]]
    assert len(set(networks)) == len(networks)
    assert len(networks) == LABELS  # 40 networks: the budget is the limit


def test_budget_beyond_the_candidates_stops_at_the_pool(matrix):
    frame = simulate(matrix, "random", 3, 10_000)
    assert len(frame) == len(matrix)
    assert frame["pick_val_acc"][-1] == np.max(ground_truth(matrix)[0])


@pytest.mark.parametrize("method", ["random", "evolution", "local_search", "parzc", "bananas"])
def test_same_seed_same_search(runs, matrix, method):
    again = simulate(matrix, method, 0, LABELS, PARAMS[method])
    assert again.drop("wall_s").equals(runs[method].drop("wall_s"))
    other = simulate(matrix, method, 1, LABELS, PARAMS[method])
    if method != "parzc":  # the zero-label ensemble and the fits decide parzc's first rounds
        assert other["arch_id"].to_list() != runs[method]["arch_id"].to_list()


def test_search_reads_no_accuracy_of_the_matrix(matrix):
    """The oracle answers from the space's records; the matrix's accuracies may be anything."""
    scrambled = matrix.unlabelled()
    a = simulate(matrix, "parzc", 0, 12, PARAMS["parzc"])
    b = simulate(scrambled, "parzc", 0, 12, PARAMS["parzc"])
    assert a.drop("wall_s").equals(b.drop("wall_s"))


def test_parzc_with_fusion_and_the_pretrained_scorer(matrix, tmp_path):
    params = {"model": "fusion", "params": SMALL_FUSION, "zero_label": "pretrained", "batch": 5}
    frame = simulate(matrix, "parzc", 0, 12, params, pretrained=str(tmp_path))
    assert len(frame) == 12 and frame["arch_id"].n_unique() == 12
    assert any(tmp_path.iterdir())  # pretrained once, reused by every round


def test_evolution_starts_from_the_proxy_s_best(matrix):
    frame = simulate(matrix, "proxy_evolution", 0, 5, PARAMS["proxy_evolution"])
    column = matrix.aggregates[:, matrix.aggregate_names.index("net:nwot")]
    canonical = matrix.arch_ids == matrix.network_ids
    best = matrix.arch_ids[canonical][np.argsort(-column[canonical], kind="stable")[:5]]
    assert frame["arch_id"].to_list() == best.tolist()


def test_oracle_answers_once_within_its_budget():
    oracle = Oracle(np.array([1.0, 2.0, 3.0]), budget=2)
    assert oracle.label(1) == 2.0 and oracle.label(1) == 2.0
    assert oracle.remaining == 1
    oracle.label(0)
    with pytest.raises(SearchOver):
        oracle.label(2)
    assert oracle.order == [1, 0]


def test_bad_settings_are_errors(matrix):
    with pytest.raises(ValueError, match="use_proxies"):
        simulate(matrix, "bananas", 0, 5, {"params": {"use_proxies": True}})
    with pytest.raises(ValueError, match="sample_size"):
        simulate(matrix, "evolution", 0, 5, {"population": 2, "sample_size": 3})
    with pytest.raises(ValueError, match="aggregate column"):
        simulate(matrix, "proxy_evolution", 0, 5, {"proxy": "nope"})
    with pytest.raises(KeyError, match="unknown simulated search method"):
        simulate(matrix, "hill_climbing", 0, 5)
