"""Architecture search and its cost accounting on a small real NB201 store."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil

import numpy as np
import polars as pl
import pytest
import torch
from snakemake.benchmark import benchmarked, write_benchmark_records

from parzc.cli import main
from parzc.config import load
from parzc.dag import Plan
from parzc.io import read_metadata
from parzc.layout import Layout
from parzc.predictors import Predictor, create_predictor
from parzc.reports.search import plot_search, search_markdown, search_table, summary_rows
from parzc.search.costs import TrainingRun, load_training, read_benchmark, search_cost
from parzc.search.run import load_pool, run_search, save_search, search_job
from parzc.search.strategies import STRATEGIES, SearchPool, nearest_neighbour
from parzc.spaces import get_space
from parzc.spaces.nb201 import OPS, parse_arch
from parzc.store import Store
from parzc.store.matrix import FeatureMatrix
from parzc.training.run import train_and_predict
from parzc.training.splits import make_split, save_split

FEATURES = ["grad_norm", "snip", "synflow"]
TINY_MABN = dict(
    epochs=2,
    embed_dim=16,
    patch_size=8,
    hidden_dim=8,
    depth=1,
    token_mlp_dim=8,
    channel_mlp_dim=16,
    mc_samples=2,
)


@pytest.fixture(scope="module")
def results(mini_store, tmp_path_factory):
    """A results folder: the 8-arch mini store plus one trained MABN (4 training archs) with its
    split, predictions, model and a Snakemake benchmark file measured by Snakemake's own timer."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("search_results")
    for table in ("features", "arch_stats"):
        shutil.copytree(mini_store / table, root / table)
    store = Store(root)
    run = TrainingRun.locate(Layout(root), "nb201", "cifar10", "mabn", 4, 0)
    pool_ids = store.sql("SELECT DISTINCT arch_id FROM arch_stats")["arch_id"].to_list()
    save_split(make_split(pool_ids, 4, 0), run.split)
    with benchmarked() as record:
        train_and_predict(
            store.assemble("nb201", "cifar10", FEATURES, onehot=True, every_cell=True),
            "mabn",
            "mabn",
            TINY_MABN,
            run.split,
            0,
            run.predictions,
            run.model,
        )
    run.benchmark.parent.mkdir(parents=True)
    write_benchmark_records([record], str(run.benchmark), False)
    return root, run


@pytest.fixture(scope="module")
def pool(results) -> SearchPool:
    return load_pool(Store(results[0]), "nb201", "cifar10", FEATURES)


@pytest.fixture(scope="module")
def predictor(results) -> Predictor:
    return Predictor.load(results[1].model)


class CountingPredictor:
    """Delegates to a predictor and counts the archs it was asked to score."""

    def __init__(self, inner: Predictor) -> None:
        self.inner, self.scored = inner, 0

    def predict(self, data: FeatureMatrix):
        self.scored += len(data)
        return self.inner.predict(data)


def test_exhaustive_ranks_the_pool_by_predicted_score(pool, predictor, results):
    result = run_search(pool, "exhaustive", predictor, top_k=3)
    score, unc = predictor.predict(pool.data)
    best = np.argsort(-score, kind="stable")[:3]
    top = result.top
    assert top["arch_id"].to_list() == pool.data.arch_ids[best].tolist()
    np.testing.assert_allclose(top["score"].to_numpy(), score[best])
    assert np.isfinite(top["uncertainty"].to_numpy()).all()
    assert result.queries == len(pool) == 8 and sorted(result.featurised) == sorted(
        pool.data.arch_ids
    )
    # true rank: 1 + archs of the whole space (15,625) with a higher test accuracy
    truth = pl.from_arrow(Store(results[0]).accuracy).filter(
        (pl.col("space") == "nb201") & (pl.col("dataset") == "cifar10")
    )
    assert result.space_archs == len(truth) == 15_625
    for acc, rank in zip(top["test_acc"], top["true_rank"], strict=True):
        assert rank == 1 + (truth["test_acc"] > acc).sum()


def test_ucb_ranks_by_mean_plus_kappa_std_of_the_mc_samples(pool, predictor):
    score, unc = predictor.predict(pool.data)
    assert unc is not None and np.ptp(unc) > 0
    n = len(pool)
    greedy = run_search(pool, "ucb", predictor, top_k=n, params={"kappa": 0.0})
    exhaustive = run_search(pool, "exhaustive", predictor, top_k=n)
    assert greedy.top["arch_id"].to_list() == exhaustive.top["arch_id"].to_list()
    bold = run_search(pool, "ucb", predictor, top_k=n, params={"kappa": 1e6})
    most_unsure = pool.data.arch_ids[np.argsort(-unc, kind="stable")].tolist()
    assert bold.top["arch_id"].to_list() == most_unsure
    np.testing.assert_allclose(  # the reported score stays the predicted mean
        bold.top["score"].to_numpy(), score[np.argsort(-unc, kind="stable")]
    )


def test_verify_labels_the_shortlist_and_picks_by_validation_accuracy(pool, predictor, results):
    score, _ = predictor.predict(pool.data)
    shortlist = np.argsort(-score, kind="stable")[:3]
    result = run_search(pool, "verify", predictor, top_k=len(pool), params={"top": 3})
    by_val = shortlist[np.argsort(-pool.data.val_acc[shortlist], kind="stable")]
    assert result.top["arch_id"].to_list()[:3] == pool.data.arch_ids[by_val].tolist()
    assert sorted(result.labelled) == sorted(pool.data.arch_ids[shortlist])
    assert result.queries == len(pool) + 3
    # the shortlist's labels are counted with the predictor's training labels
    cost = search_cost(Store(results[0]), result, load_training(results[1]))
    trained = pl.read_parquet(results[1].split).filter(pl.col("split") == "train")["arch_id"]
    assert cost.labels == len(np.union1d(trained.to_numpy(), result.labelled))
    with pytest.raises(ValueError, match="top must be"):
        run_search(pool, "verify", predictor, params={"top": 0})


def test_a_pretrained_predictor_is_charged_its_pool_and_pretraining(results, pool, tmp_path):
    root, _ = results
    store = Store(root)
    data = store.assemble("nb201", "cifar10", FEATURES, onehot=True, every_cell=True)
    params = dict(dim=8, depth=1, pretrain_epochs=2, epochs=2, pretrain_proxies=["net:nwot"])
    layout = Layout(tmp_path)
    reports = []
    for size in (4, 5):  # the second fit reuses the first one's pretraining
        run = TrainingRun.locate(layout, "nb201", "cifar10", "fusion", size, 0)
        save_split(make_split(data.network_ids, size, 0), run.split)
        train_and_predict(
            data, "fusion", "fusion", params, run.split, 0, run.predictions, run.model
        )
        reports.append(json.loads(read_metadata(run.predictions)["fit_report"]))
    assert [r["pretrained_reused"] for r in reports] == [0, 1]
    assert reports[1]["pretrain_seconds"] == reports[0]["pretrain_seconds"] > 0
    assert list((tmp_path / "models" / "pretrained").rglob("*.pt"))
    training = load_training(run)
    assert sorted(training.pool_ids) == sorted(np.unique(data.network_ids))
    assert training.seconds >= reports[1]["fit_seconds"] + reports[1]["pretrain_seconds"]
    result = run_search(
        pool,
        "evolution",
        Predictor.load(run.model),
        budget=2,
        params={"population": 2, "sample_size": 2},
    )
    assert len(result.featurised) <= 2
    cost = search_cost(store, result, training)
    assert cost.extract_archs == len(np.unique(data.network_ids))  # the whole pretraining pool


def test_evolution_is_reproducible_and_respects_the_budget(pool, predictor):
    counted = CountingPredictor(predictor)
    params = {"population": 3, "sample_size": 2}
    first = run_search(pool, "evolution", counted, top_k=4, budget=6, seed=3, params=params)
    again = run_search(pool, "evolution", predictor, top_k=4, budget=6, seed=3, params=params)
    assert first.top.equals(again.top)
    assert first.queries == 6
    assert counted.scored == len(first.featurised) <= 6  # revisited archs are not re-scored
    assert set(first.top["arch_id"]) <= set(first.featurised) <= set(pool.data.arch_ids.tolist())
    short = run_search(pool, "evolution", predictor, budget=2, params={"population": 5})
    assert short.queries == 2 and len(short.featurised) == 2


def _onehot_pool(archs: list[str]) -> SearchPool:
    """A pool of NB201 encodings without features (mutations read only the one-hot codes)."""
    space, n = get_space("nb201"), len(archs)
    empty = np.zeros((n, 0))
    data = FeatureMatrix(
        space="nb201",
        dataset="cifar10",
        target="cifar10",
        arch_ids=np.arange(n),
        network_ids=np.arange(n),
        proxies=[],
        layerwise=np.zeros((n, 0, 1)),
        layerwise_raw=np.zeros((n, 0, 1)),
        aggregate_names=[],
        aggregates=empty,
        onehot=np.stack([space.onehot(a) for a in archs]),
        val_acc=np.zeros(n),
        test_acc=np.zeros(n),
    )
    return SearchPool(data=data, archs=archs, space_test_acc=np.zeros(0))


def _with_ops(ops: list[str]) -> str:
    it = iter(ops)
    return "+".join("|" + "|".join(f"{next(it)}~{j}" for j in range(i)) + "|" for i in (1, 2, 3))


def _ops(arch: str) -> list[str]:
    return [op for group in parse_arch(arch) for op, _ in group]


def test_nearest_mutation_changes_one_nb201_op_when_such_a_neighbour_exists():
    parent = ["nor_conv_3x3"] * 6
    one_op = [_with_ops(parent[:e] + [op] + parent[e + 1 :]) for e in (0, 4) for op in OPS[:2]]
    two_ops = [_with_ops(["none", "none"] + parent[2:]), _with_ops(["skip_connect"] * 6)]
    pool = _onehot_pool([_with_ops(parent), *two_ops, *one_op])
    rng = np.random.default_rng(0)
    children = {nearest_neighbour(pool, 0, rng) for _ in range(40)}
    assert children == set(range(3, 3 + len(one_op)))  # every one-op neighbour, nothing else
    for child in children:
        assert sum(a != b for a, b in zip(_ops(pool.archs[child]), parent, strict=True)) == 1
    far = _onehot_pool([_with_ops(parent), *two_ops])
    assert nearest_neighbour(far, 0, rng) == 1  # the nearest that exists (two ops differ)


def test_random_search_labels_budget_archs_with_validation_accuracy(pool):
    result = run_search(pool, "random", top_k=8, budget=5, seed=1)
    assert result.queries == 5 and len(result.labelled) == 5 and len(result.featurised) == 0
    assert set(result.top["arch_id"]) == set(result.labelled)
    assert result.top["score"].to_list() == sorted(result.top["val_acc"], reverse=True)
    assert run_search(pool, "random", top_k=8, budget=5, seed=1).top.equals(result.top)


def test_best_proxy_equals_exhaustive_with_the_single_proxy_predictor(pool):
    single = create_predictor("single_proxy", proxy="net:nwot")
    by_proxy = run_search(pool, "best_proxy", top_k=8, params={"proxy": "net:nwot"})
    by_predictor = run_search(pool, "exhaustive", single, top_k=8)
    assert by_proxy.top["arch_id"].to_list() == by_predictor.top["arch_id"].to_list()
    assert by_proxy.proxies == ("net:nwot",) and len(by_proxy.labelled) == 0


def test_search_errors_name_the_problem(results, pool, predictor):
    with pytest.raises(KeyError, match="unknown search strategy 'annealing'; known: best_proxy"):
        run_search(pool, "annealing", predictor)
    with pytest.raises(ValueError, match="needs a trained predictor"):
        run_search(pool, "evolution")
    with pytest.raises(ValueError, match="unknown parameter.*population_size.*accepted: pop"):
        run_search(pool, "evolution", predictor, params={"population_size": 5})
    with pytest.raises(ValueError, match="unknown proxy column 'zen'"):
        run_search(pool, "best_proxy", params={"proxy": "zen"})
    with pytest.raises(ValueError, match="a pool of 9 archs"):
        load_pool(Store(results[0]), "nb201", "cifar10", FEATURES, size=9)


def _benchmark_row(path) -> dict[str, str]:
    with open(path) as fh:
        return next(csv.DictReader(fh, delimiter="\t"))


def _extract_s(store: Store, arch_ids) -> float:
    ms = store.sql("SELECT arch_id, any_value(extract_ms) AS ms FROM arch_stats GROUP BY arch_id")
    return ms.filter(pl.col("arch_id").is_in([int(a) for a in arch_ids]))["ms"].sum() / 1e3


@pytest.mark.parametrize("strategy", ["exhaustive", "evolution"])
def test_cost_sums_benchmark_and_extraction_times_of_the_archs_used(results, strategy):
    root, run = results
    store = Store(root)
    result, cost = search_job(
        store, "nb201", "cifar10", strategy, run=run, budget=3, params={}, seed=0
    )
    bench = _benchmark_row(run.benchmark)
    assert cost.train_s == pytest.approx(float(bench["s"]))
    train_ids = pl.read_parquet(run.split).filter(pl.col("split") == "train")["arch_id"]
    used = np.union1d(result.featurised, train_ids.to_numpy())
    assert cost.extract_archs == len(used) and cost.labels == 4
    assert cost.extract_s == pytest.approx(_extract_s(store, used))
    assert cost.score_s == result.score_s and cost.score_queries == result.queries
    assert np.isnan(cost.label_train_s)  # NB201 ships no per-arch training times
    assert cost.gpu_s == 0.0  # everything ran on the CPU
    assert cost.cpu_s == pytest.approx(cost.extract_s + cost.train_s + cost.score_s)


def test_phases_on_a_gpu_count_as_gpu_seconds(results, pool, predictor):
    root, run = results
    training = dataclasses.replace(load_training(run), device="cuda:0")
    cost = search_cost(Store(root), run_search(pool, "exhaustive", predictor), training)
    assert cost.gpu_s == training.seconds
    assert cost.cpu_s == pytest.approx(cost.extract_s + cost.score_s)


def test_baseline_costs(results):
    store = Store(results[0])
    result, cost = search_job(store, "nb201", "cifar10", "random", budget=3, seed=2)
    assert (cost.extract_archs, cost.extract_s, cost.train_s, cost.labels) == (0, 0.0, 0.0, 3)
    result, cost = search_job(store, "nb201", "cifar10", "best_proxy", params={"proxy": "snip"})
    assert cost.labels == 0 and cost.label_train_s == 0.0
    assert cost.extract_s == pytest.approx(_extract_s(store, result.featurised))


def test_read_benchmark_averages_repeats_and_reads_na(tmp_path):
    path = tmp_path / "bench.tsv"
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    first = "2.00\t0:00:02" + "\tNA" * 8
    second = "4.00\t0:00:04" + "\t1.0" * 7 + "\t3.0"
    path.write_text(f"{header}{first}\n{second}\n")
    bench = read_benchmark(path)
    assert bench.seconds == 3.0 and np.isnan(bench.cpu_time_s)


def test_report_aggregates_seeds_and_spells_out_unknown_costs(results, tmp_path):
    root, run = results
    store = Store(root)
    paths = []
    for seed in (0, 1):
        for strategy, trained in (("exhaustive", run), ("random", None)):
            result, cost = search_job(
                store, "nb201", "cifar10", strategy, run=trained, budget=4, seed=seed
            )
            paths.append(tmp_path / f"{strategy}_{seed}.parquet")
            save_search(paths[-1], result, cost, trained)
    rows = summary_rows(paths)
    assert len(rows) == 4 and set(rows["method"]) == {"exhaustive (mabn n=4)", "random"}
    table = search_table(rows)
    assert table["seeds"].to_list() == [2, 2]
    exhaustive = table.filter(pl.col("strategy") == "exhaustive").row(0, named=True)
    assert exhaustive["test_acc_mean"] == pytest.approx(
        rows.filter(pl.col("strategy") == "exhaustive")["test_acc"].mean()
    )
    # the best of a search's top-k, next to its top-1 pick
    best = [pl.read_parquet(p)["test_acc"].max() for p in paths if "exhaustive" in p.name]
    assert exhaustive["best_of_top_k_mean"] == pytest.approx(sum(best) / len(best))
    assert exhaustive["best_of_top_k_mean"] >= exhaustive["test_acc_mean"]
    text = search_markdown(table)
    assert "| random |" in text and "unknown" in text
    plot_search(table, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 1000


def test_cli_prints_the_top_k_and_the_cost(results, capsys):
    root, run = results
    args = ["search", "--results", str(root), "--space", "nb201", "--dataset", "cifar10"]
    assert (
        main(
            [
                *args,
                "--model",
                str(run.model),
                "--strategy",
                "evolution",
                "--top-k",
                "2",
                "--budget",
                "4",
                "--param",
                "population=2",
                "--param",
                "sample_size=1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "true_rank" in out and "evolution over 8 candidates" in out and "labels" in out
    assert main([*args, "--strategy", "best_proxy", "--param", "proxy=net:nwot"]) == 0
    assert main([*args, "--strategy", "evolution"]) == 2  # needs --model
    assert "needs a trained predictor" in capsys.readouterr().err


def test_plan_lists_searches_of_the_test_config():
    plan = Plan(load("config/test.yaml"))
    runs = plan.search_runs()
    assert {(r["strategy"], r["predictor"], r["size"]) for r in runs} == {
        ("exhaustive", "mabn", 6),
        ("evolution", "mabn", 6),
        ("exhaustive", "fusion", 6),
        ("evolution", "fusion", 6),
        ("random", None, None),
        ("best_proxy", None, None),
    }
    assert plan.search_path(runs[0]).startswith("results/test/search/space=nb201/dataset=cifar10/")
    needing = {"exhaustive", "ucb", "verify", "evolution"}
    assert set(plan.strategy_pattern(True).split("|")) == needing
    assert set(STRATEGIES) == needing | {"random", "best_proxy"}
    config = load("config/test.yaml")
    config["search"]["predictors"] = ["nope"]
    with pytest.raises(ValueError, match=r"search.predictors \['nope'\]"):
        Plan(config).search_runs()


def test_search_train_size_picks_the_predictor_per_search_or_strategy():
    """search.train_size, or a strategy's own train_size, picks the labels of the predictor a
    search uses; a size outside the train sizes is trained for the searches only."""
    config = load("config/test.yaml")
    config["spaces"]["nb201"]["train_sizes"] = [4, 6]
    plan = Plan(config)
    sizes = {r["size"] for r in plan.search_runs() if r["predictor"] is not None}
    assert sizes == {6}
    config["search"]["train_size"] = 4
    assert {r["size"] for r in Plan(config).search_runs() if r["predictor"]} == {4}
    config["search"]["train_size"] = 5
    config["search"]["strategies"]["verify"] = {"top": 2, "train_size": 3}
    runs = [r for r in Plan(config).search_runs() if r["predictor"]]
    assert {(r["strategy"], r["size"]) for r in runs} == {
        ("exhaustive", 5),
        ("evolution", 5),
        ("verify", 3),
    }
    metrics = Plan(config).metrics_files()
    assert metrics and not [m for m in metrics if "/n5_" in m or "/n3_" in m]  # searches only
    config["search"]["train_size"] = 12
    with pytest.raises(ValueError, match="search train_size 12 for nb201: .* pool of 12"):
        Plan(config).search_runs()


def test_a_model_trained_outside_snakemake_is_costed_from_its_own_fit_report(results, tmp_path):
    """`parzc train` writes no Snakemake benchmark: the search costs the training with the fit
    and prediction seconds its predictions file records, and leaves its CPU time unknown."""
    root, run = results
    copy = tmp_path / "results"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("benchmarks"))
    moved = TrainingRun.locate(Layout(copy), "nb201", "cifar10", "mabn", 4, 0)
    assert not moved.benchmark.exists()
    training = load_training(moved)
    report = json.loads(read_metadata(moved.predictions)["fit_report"])
    assert training.seconds == pytest.approx(report["fit_seconds"] + report["predict_seconds"])
    assert np.isnan(training.cpu_time_s)
    result, cost = search_job(Store(copy), "nb201", "cifar10", "exhaustive", run=moved)
    assert cost.train_s == pytest.approx(training.seconds)
