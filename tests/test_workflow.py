"""The Snakemake DAG: incremental re-runs (dry-run) and a real end-to-end run of the tiny config."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import LAYER, NETWORK, SHARDS, dry_run

from parzc.config import load
from parzc.dag import Plan
from parzc.store import Store

REPO = Path(__file__).resolve().parent.parent


def write_config(path: Path, results: Path, count: int, extra_set: bool = False) -> Path:
    """A config whose shards match the `mini_store` fixture (same proxies, batch, seeds)."""
    sets = {"mini": {"layer": list(LAYER), "network": list(NETWORK)}}
    if extra_set:
        sets["extra"] = {"layer": ["l2_norm"]}
    config = {
        "results": str(results),
        "device": "cpu",
        "batch": {"size": 8, "seed": 0},
        "init_seed": 0,
        "shard_size": SHARDS[0][1] + 1,
        "feature_sets": sets,
        "spaces": {"nb201": {"datasets": ["cifar10"], "archs": {"count": count, "seed": 0}}},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def planned_extractions(config: Path) -> list[tuple[str, str]]:
    """(feature set, range) of every extract_shard job a dry run would execute."""
    return re.findall(
        r"wildcards: space=nb201, dataset=cifar10, feature_set=(\w+), start=(\d+), "
        r"end=\d+",
        dry_run(config),
    )


@pytest.mark.parametrize("path", sorted((REPO / "config").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    """Every config the README points to passes the schema and the registries' checks; each
    trains every predictor it lists (for its tables or its searches), or runs a loop that
    refits one."""
    config = load(path)
    plan = Plan(config)
    experiments = plan.experiments()
    if "loop" in config and not experiments:
        assert plan.loop_outputs() and config["loop"]["predictor"] in config["train"]["predictors"]
        return
    trained = {e["predictor"] for e in experiments} | {r["predictor"] for r in plan.search_runs()}
    assert experiments and trained - {None} == set(config["train"]["predictors"])


def test_incremental_reruns_schedule_only_new_shards(mini_store, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(mini_store, results)
    same = write_config(tmp_path / "same.yaml", results, count=8)
    assert planned_extractions(same) == []
    more = write_config(tmp_path / "more.yaml", results, count=12)
    assert planned_extractions(more) == [("mini", "00008")]
    new_set = write_config(tmp_path / "set.yaml", results, count=8, extra_set=True)
    assert sorted(planned_extractions(new_set)) == [("extra", "00000"), ("extra", "00004")]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """results/ of a real `snakemake` run of config/test.yaml (extract -> train -> report)."""
    results = tmp_path_factory.mktemp("tiny") / "results"
    cmd = [
        "snakemake",
        "--cores",
        "2",
        "--configfile",
        "config/test.yaml",
        "--config",
        f"results={results}",
    ]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
    subprocess.run(
        [*cmd, "--report", str(results / "report.html")], cwd=REPO, check=True, capture_output=True
    )
    return results


def test_end_to_end_outputs(tiny_run):
    config = yaml.safe_load((REPO / "config/test.yaml").read_text())
    labels = set(config["train"]["predictors"])
    table = pl.read_csv(tiny_run / "tables/correlation.csv")
    assert set(table["predictor"]) == labels
    protocols = {"strict", "strict_cells", "same_label", "seed_mean_all_cells"}
    assert set(table["protocol"]) == protocols
    seed_mean = table.filter(pl.col("protocol") == "seed_mean_all_cells")
    assert seed_mean["predictor"].to_list() == ["gbdt_seed_mean"]
    assert "gbdt_seed_mean" not in table.filter(pl.col("protocol") == "strict")["predictor"]
    same_label = table.filter(pl.col("protocol") == "same_label")
    assert same_label["ceiling_kendall_mean"].to_list() == pytest.approx([1.0] * len(same_label))
    compared = pl.read_csv(tiny_run / "tables/protocols.csv")
    assert set(compared["protocol"]) == protocols
    draws = dict(table.select("predictor", "train_draw").unique().iter_rows())
    assert draws["gbdt_cells"] == "cells" and draws["gbdt"] == "networks"
    split = "splits/space=nb201/dataset=cifar10/draw=cells/n6_seed0.parquet"
    uniform = "splits/space=nb201/dataset=cifar10/n6_seed0.parquet"
    assert not pl.read_parquet(tiny_run / split).equals(pl.read_parquet(tiny_run / uniform))
    assert (tiny_run / "plots/kendall_vs_train_size.png").stat().st_size > 0
    assert (tiny_run / "report.html").stat().st_size > 0
    for table_name in ("features", "arch_stats"):
        assert len(list((tiny_run / table_name).rglob("*.parquet"))) == 2
    # every rule left a log and a benchmark
    assert list((tiny_run / "benchmarks/features").rglob("*.tsv"))
    assert list((tiny_run / "logs/predictions").rglob("*.log"))


def test_predictions_recompute_the_tables_with_sql(tiny_run):
    """Predictions are data: Kendall recomputed from the Parquet files matches the table."""
    from scipy.stats import kendalltau

    preds = pl.read_parquet(tiny_run / "predictions/**/*.parquet", hive_partitioning=False)
    table = pl.read_csv(tiny_run / "tables/correlation.csv").filter(
        pl.col("protocol") == "strict_cells"
    )
    for row in table.iter_rows(named=True):
        part = preds.filter((pl.col("predictor") == row["predictor"]) & pl.col("held_out"))
        tau = kendalltau(part["score"], part["target"]).statistic
        assert tau == pytest.approx(row["kendall_mean"], abs=1e-12, nan_ok=True)
    held_out = Store(tiny_run).sql("SELECT count(DISTINCT arch_id) AS n FROM features")["n"][0]
    mabn = preds.filter(pl.col("predictor") == "mabn")
    networks = mabn.filter(pl.col("arch_id") == pl.col("network_id"))
    assert held_out == 12 and networks.height == 12 and networks["held_out"].sum() == 6
    # every cell of a network is scored with its network's prediction
    twins = mabn.group_by("network_id").agg(pl.col("score").n_unique().alias("scores"))
    assert mabn.height >= 6 and twins["scores"].max() == 1


def test_cli_stages_rebuild_the_pipelines_outputs(tiny_run, tmp_path):
    """Every rule's job is a `parzc` subcommand writing the same files: assemble, split, train,
    evaluate and report rerun on a copy of the tiny run give the same predictions, metrics and
    tables as the workflow (training is seeded)."""
    from parzc.cli import main

    results = tmp_path / "results"
    for table in ("features", "arch_stats"):
        shutil.copytree(tiny_run / table, results / table)
    config = yaml.safe_load((REPO / "config/test.yaml").read_text())
    config["results"] = str(results)
    del config["search"]  # the report then covers the predictor tables only
    config_path = tmp_path / "test.yaml"
    config_path.write_text(yaml.safe_dump(config))
    plan = Plan(load(config_path))
    common = ["--config", str(config_path)]
    target = ["--space", "nb201", "--dataset", "cifar10"]
    assert main(["assemble", *common, *target]) == 0
    assert main(["split", *common, *target, "--size", "6", "--seed", "0"]) == 0
    assert main(["split", *common, *target, "--size", "6", "--seed", "0", "--draw", "cells"]) == 0
    for label in config["train"]["predictors"]:
        job = [*target, "--predictor", label, "--size", "6", "--seed", "0"]
        assert main(["train", *common, *job]) == 0
        assert main(["evaluate", *common, *job]) == 0
    assert main(["report", *common]) == 0
    workflow = Plan({**plan.config, "results": str(tiny_run)}).layout
    for e in plan.experiments():
        for kind in ("predictions", "metrics"):
            ours = pl.read_parquet(plan.layout.path(kind, **e))
            assert ours.equals(pl.read_parquet(workflow.path(kind, **e))), (kind, e)
    ours = pl.read_csv(plan.layout.path("correlation_csv"))
    assert ours.equals(pl.read_csv(workflow.path("correlation_csv")))
