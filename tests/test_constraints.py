"""Constraints on the candidates: bounds and their errors, which candidates meet them on a real
store, and the loop's proposals and pick, its summary, the ranking report and `parzc ask` that
keep to them (the pipeline's ranking table and `parzc rank`: tests/test_own_space.py)."""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import replace

import numpy as np
import polars as pl
import pytest
import yaml
from conftest import LAYER, NETWORK, digits_config

from parzc import stages
from parzc.config import ConfigError, validate
from parzc.constraints import Bound, describe, feasible, feasible_ids, parse_constraints
from parzc.loop import Loop
from parzc.spaces import get_space
from parzc.store.matrix import FeatureMatrix


def test_bounds_parse_in_order_and_read_as_written():
    bounds = parse_constraints({"net:params": {"max": 2e5}, "synflow": {"min": 1, "max": 3.5}})
    assert bounds == (Bound("net:params", None, 2e5), Bound("synflow", 1, 3.5))
    assert describe(bounds) == "net:params <= 200000, 1 <= synflow <= 3.5"
    assert str(Bound("net:flops", low=10)) == "net:flops >= 10"
    assert parse_constraints(None) == parse_constraints({}) == ()


@pytest.mark.parametrize(
    ("constraints", "message"),
    [
        (
            {"net:flops": {"max": 1e6}},
            "spaces/digits/constraints: 'net:flops' is extracted by no feature set",
        ),
        ({"params": {"min": 5, "max": 1}}, "spaces/digits/constraints: params: min 5 is above"),
        ({"params": {}}, "spaces/digits/constraints"),
        ({"params": {"maximum": 3}}, "maximum"),
    ],
)
def test_bad_constraints_name_the_field(tmp_path, constraints, message):
    with pytest.raises(ConfigError, match=message):
        validate(digits_config(tmp_path, constraints=constraints))


@pytest.fixture
def nb201_loop(mini_store, tmp_path) -> tuple[dict, np.ndarray]:
    """A loop over the mini store's 8 NB201 networks whose params must stay at or below their
    median, and the arch_ids within that bound."""
    root = tmp_path / "results"
    shutil.copytree(mini_store, root)
    config = validate(
        {
            "results": str(root),
            "device": "cpu",
            "batch": {"size": 8, "seed": 0},
            "shard_size": 4,
            "feature_sets": {"mini": {"layer": list(LAYER), "network": list(NETWORK)}},
            "spaces": {"nb201": {"datasets": ["cifar10"], "archs": {"count": 8, "seed": 0}}},
            "train": {"predictors": {"gbdt": {"model": "gbdt", "params": {"use_onehot": True}}}},
            "loop": {
                "space": "nb201",
                "dataset": "cifar10",
                "batch": 3,
                "budget": 8,
                "predictor": "gbdt",
                "acquisition": "greedy",
                "ensemble": ["net:nwot", "net:params"],
                "train_command": "true",
            },
        }
    )
    data = FeatureMatrix.load(Loop(config).features())
    params = data.aggregates[:, data.aggregate_names.index("net:params")]
    config["spaces"]["nb201"]["constraints"] = {"net:params": {"max": float(np.median(params))}}
    validate(config)
    return config, data.arch_ids[params <= np.median(params)]


def bounded(**columns: dict[str, float]):
    return parse_constraints({name.replace("net_", "net:"): b for name, b in columns.items()})


def test_feasible_holds_every_bound_and_leaves_out_unknown_values(nb201_loop):
    config, inside = nb201_loop
    data = FeatureMatrix.load(Loop(config).features())
    params = data.aggregates[:, data.aggregate_names.index("net:params")]
    synflow = data.aggregates[:, data.aggregate_names.index("synflow")]
    assert 0 < len(inside) < len(data)
    median = bounded(net_params={"max": float(np.median(params))})
    assert feasible_ids(data, median) == {int(a) for a in inside}
    both = bounded(net_params={"min": params.min() + 1}, synflow={"max": np.median(synflow)})
    expected = (params >= params.min() + 1) & (synflow <= np.median(synflow))
    assert (feasible(data, both) == expected).all()
    unknown = data.aggregates.copy()
    unknown[0, data.aggregate_names.index("net:params")] = np.nan
    with_nan = replace(data, aggregates=unknown)
    assert not feasible(with_nan, bounded(net_params={"min": 0}))[0]
    assert feasible(data, ()).all() and feasible_ids(data, ()) is None


def test_the_loop_proposes_and_picks_only_within_the_constraints(nb201_loop, tmp_path):
    config, inside = nb201_loop
    loop = Loop(config)
    arch_of = dict(get_space("nb201").archs().select("arch_id", "arch").iter_rows())
    truth = get_space("nb201").accuracy_table().filter(pl.col("dataset") == "cifar10")
    val = dict(truth.select("arch_id", "val_acc").iter_rows())
    asked = []
    for _ in range(3):  # the proxy ensemble first, then gbdt on the labels told
        proposals = loop.ask()
        asked += proposals["arch_id"].to_list()
        for arch_id, arch in proposals.select("arch_id", "arch").iter_rows():
            loop.tell(arch, val_acc=val[arch_id], seed=0)
    assert sorted(asked) == sorted(inside.tolist())  # every feasible one, nothing else
    assert loop.ask().is_empty()  # budget left, but no candidate within the constraints
    # a label from outside trains the predictor but is never the pick
    stored = FeatureMatrix.load(loop.features()).arch_ids
    outside = next(int(a) for a in stored if a not in set(inside))
    loop.tell(arch_of[outside], val_acc=99.9, seed=0)
    out = tmp_path / "summary.md"
    stages.loop_summary(config, out)
    text = out.read_text()
    assert "Constraints: net:params <= " in text
    best = arch_of[max(inside.tolist(), key=lambda a: val[a])]
    assert f"Best by validation accuracy within the constraints: `{best}`" in text
    picks = text.split("## The pick after each round")[1].split("## Proposals")[0]
    cell = best.replace("|", "\\|")  # as a Markdown table cell
    assert cell in picks and arch_of[outside].replace("|", "\\|") not in picks


def test_the_ranking_table_lists_only_candidates_within_the_constraints(nb201_loop, tmp_path):
    config, inside = nb201_loop
    matrix = Loop(config).features()
    data = FeatureMatrix.load(matrix)
    arch_of = dict(get_space("nb201").archs().select("arch_id", "arch").iter_rows())
    ranking = tmp_path / "seed0.parquet"
    pl.DataFrame(  # scores rank the candidates by arch_id, the last first
        {
            "predictor": "gbdt",
            "arch_id": data.arch_ids.astype(np.int32),
            "arch": [arch_of[int(a)] for a in data.arch_ids],
            "labelled": False,
            "failed": False,
            "val_acc": None,
            "score": data.arch_ids.astype(np.float64),
        }
    ).write_parquet(ranking)
    csv, md = tmp_path / "ranking.csv", tmp_path / "ranking.md"
    constraints = config["spaces"]["nb201"]["constraints"]
    stages.ranking_report([ranking], 20, csv, md, matrix, constraints)
    table = pl.read_csv(csv)
    assert set(table.filter(pl.col("feasible"))["arch_id"]) == set(inside.tolist())
    listed = [int(row.split("|")[1]) for row in md.read_text().splitlines()[4:]]
    assert listed == sorted(inside.tolist(), reverse=True)
    assert "within the constraints (net:params <= " in md.read_text()
    stages.ranking_report([ranking], 20, csv, md)  # without constraints: every candidate
    assert pl.read_csv(csv)["feasible"].all() and len(md.read_text().splitlines()) == 4 + 8
    with pytest.raises(ValueError, match="need the target's feature matrix"):
        stages.ranking_report([ranking], 20, csv, md, None, constraints)


def test_parzc_ask_says_which_constraints_its_proposals_meet(nb201_loop, tmp_path):
    config, inside = nb201_loop
    path = tmp_path / "loop.yaml"
    path.write_text(yaml.safe_dump(config))
    out = subprocess.run(
        ["parzc", "ask", "--config", str(path), "--format", "csv"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    limit = config["spaces"]["nb201"]["constraints"]["net:params"]["max"]
    assert f"round 1: 3 proposal(s) within the constraints (net:params <= {limit:g})" in out
    proposed = pl.read_csv(io.StringIO(out.split("\n", 1)[1]))["arch_id"].to_list()
    assert len(proposed) == 3 and set(proposed) <= set(inside.tolist())
