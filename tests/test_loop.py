"""The ask / tell loop on the digits example: acquisitions, ask and tell on the command line
(pending proposals, failures, the budget), the benchmark oracle, and the loop as a DAG that
survives a kill in the middle of a round."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from conftest import digits_config, planned_jobs

from parzc.config import ConfigError, validate
from parzc.loop import Loop
from parzc.loop.acquisition import ACQUISITIONS, Candidates
from parzc.loop.ask import ZERO_LABEL, LoopSettings
from parzc.loop.oracle import oracle_result
from parzc.store.matrix import FeatureMatrix

REPO = Path(__file__).resolve().parent.parent

FAKE_TRAINING = """
import hashlib, json, sys, time
arch, seed, out, log = sys.argv[1:5]
with open(log, "a") as fh:
    fh.write(f"start {arch}\\n")
time.sleep(float(sys.argv[5]))
if "tanh" in arch and "depth=1" in arch:
    sys.exit(3)  # this family of candidates fails to train
val = 60 + int(hashlib.sha256(arch.encode()).hexdigest(), 16) % 4000 / 100
with open(out, "w") as fh:
    json.dump({"val_acc": val, "test_acc": val - 1, "train_time_s": 0.5}, fh)
with open(log, "a") as fh:
    fh.write(f"done {arch}\\n")
"""


def fake_val_acc(arch: str) -> float:
    import hashlib

    return 60 + int(hashlib.sha256(arch.encode()).hexdigest(), 16) % 4000 / 100


def loop_config(tmp_path: Path, sleep: float = 0.0, **loop) -> dict:
    """The digits config of tests/conftest.py with a loop whose training is FAKE_TRAINING."""
    trainer = tmp_path / "fake_train.py"
    trainer.write_text(FAKE_TRAINING)
    command = (
        f"{sys.executable} {trainer} {{arch}} {{seed}} {{result}} {tmp_path / 'trainings.log'} "
        f"{sleep}"
    )
    config = digits_config(tmp_path, count=24, train_sizes=[])
    config["train"]["predictors"] = {"gbdt": {"model": "gbdt", "params": {"use_onehot": True}}}
    del config["rank"]
    config["loop"] = {
        "space": "digits",
        "dataset": "digits",
        "rounds": 3,
        "batch": 2,
        "budget": 6,
        "predictor": "gbdt",
        "train_command": command,
        "resources": {"mem_mb": 1000, "runtime": 5},
        **loop,
    }
    return config


def write(config: dict, tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def parzc(*args: str) -> str:
    return subprocess.run(
        ["parzc", *args], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout


# -- acquisitions ----------------------------------------------------------------------------


def test_acquisitions_take_one_candidate_per_network_and_diverse_spreads_out():
    score = np.array([5.0, 4.9, 4.8, 1.0, 0.5])
    onehot = np.array([[1, 0, 1, 0], [1, 0, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [0, 1, 1, 0]])
    networks = np.array([0, 1, 0, 3, 4])  # rows 0 and 2 are twins of one network
    candidates = Candidates(score, np.full(5, np.nan), onehot, networks)
    rows, value = ACQUISITIONS.get("greedy")(candidates, 3)
    assert rows.tolist() == [0, 1, 3] and value.tolist() == [5.0, 4.9, 1.0]
    rows, _ = ACQUISITIONS.get("diverse")(candidates, 2, min_distance=2)
    assert rows.tolist() == [0, 3]  # row 1 is one edit (distance 2) from row 0
    rows, _ = ACQUISITIONS.get("diverse")(candidates, 4, min_distance=2)
    assert rows.tolist() == [0, 3, 1, 4]  # too few distant ones: filled greedily, twins skipped
    spread = np.array([0.0, 0.0, 0.0, 10.0, 0.0])
    rows, value = ACQUISITIONS.get("ucb")(replace(candidates, uncertainty=spread), 1, kappa=1.0)
    assert rows.tolist() == [3] and value.tolist() == [11.0]
    with pytest.raises(ValueError, match="acquisition 'greedy' takes no parameter 'kappa'"):
        ACQUISITIONS.get("greedy")(candidates, 1, kappa=2.0)


def test_local_acquisition_searches_around_the_best_labels_first():
    score = np.array([5.0, 4.9, 4.8, 1.0, 0.5])
    onehot = np.array([[1, 0, 1, 0], [1, 0, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [0, 1, 1, 0]])
    networks = np.array([0, 1, 0, 3, 4])
    labelled = np.array([[0, 1, 1, 1], [1, 0, 1, 1]])  # best label first
    candidates = Candidates(score, np.full(5, np.nan), onehot, networks, labelled)
    rows, value = ACQUISITIONS.get("local")(candidates, 2, anchors=1, radius=1)
    assert rows.tolist() == [3, 4] and value.tolist() == [1.0, 0.5]  # the best label's neighbours
    rows, _ = ACQUISITIONS.get("local")(candidates, 3, anchors=2, radius=1)
    assert rows.tolist() == [0, 1, 3]  # both anchors' neighbourhoods, by score
    rows, _ = ACQUISITIONS.get("local")(candidates, 4, anchors=1, radius=1)
    assert rows.tolist() == [3, 4, 0, 1]  # neighbourhood ran out: the rest greedily
    rows, _ = ACQUISITIONS.get("local")(replace(candidates, labelled=np.zeros((0, 4))), 2)
    assert rows.tolist() == [0, 1]  # before any label: greedy
    with pytest.raises(ValueError, match="anchors >= 1 and radius >= 1"):
        ACQUISITIONS.get("local")(candidates, 1, anchors=0)


def test_oracle_answers_validation_accuracy_from_the_benchmark():
    arch = (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
        "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    result = oracle_result("nb201", "cifar10", arch)
    assert set(result) == {"arch", "val_acc"} and 80 < result["val_acc"] < 100
    with pytest.raises(ValueError, match="has no recorded accuracy|bad edge"):
        oracle_result("nb201", "cifar10", arch.replace("skip_connect", "conv_7x7"))


def test_loop_config_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="loop/predictor: 'fusion' is not a train/predictors"):
        validate(loop_config(tmp_path, predictor="fusion"))
    with pytest.raises(ConfigError, match="loop/acquisition: unknown acquisition 'thompson'"):
        validate(loop_config(tmp_path, acquisition="thompson"))
    with pytest.raises(
        ConfigError, match="loop/acquisition_params: .*'local' takes no parameter 'kappa'"
    ):
        validate(loop_config(tmp_path, acquisition="local", acquisition_params={"kappa": 1}))
    with pytest.raises(ConfigError, match="loop: digits/mnist is not a configured target"):
        validate(loop_config(tmp_path, dataset="mnist"))


# -- ask and tell on the command line ----------------------------------------------------------


def test_ask_tell_pending_failures_and_budget(tmp_path):
    """Pending proposals are never proposed again; a failure uses budget and is never proposed
    again; once the budget is spent, ask proposes nothing."""
    path = write(loop_config(tmp_path, budget=5), tmp_path)
    subprocess.run(
        ["snakemake", "--cores", "2", "--configfile", str(path), "--until", "extract_shard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    first = parzc("ask", "--config", str(path), "--format", "csv")
    assert "round 1: 2 proposal(s)" in first and "zero-label:ensemble" in first
    proposed = pl.read_parquet(
        tmp_path / "results/loop/space=digits/dataset=digits/round1/proposals.parquet"
    )["arch"].to_list()
    features = tmp_path / "results/loop/space=digits/dataset=digits/features.npz"
    pretrained = LoopSettings(
        predictor="fusion",
        model="fusion",
        params={"branches": ["slots", "aggregates"], "pretrain_epochs": 2, "dim": 16},
        zero_label="pretrained",
        ensemble=("net:nwot", "params"),
    )
    score, _ = ZERO_LABEL.get("pretrained")(
        FeatureMatrix.load(features), pretrained, "cpu", str(tmp_path / "pretrained")
    )
    assert score.shape == (24,) and np.isfinite(score).all() and score.std() > 0
    second = parzc("ask", "--config", str(path), "-k", "2")
    assert "round 2: 2 proposal(s)" in second
    round2 = pl.read_parquet(
        tmp_path / "results/loop/space=digits/dataset=digits/round2/proposals.parquet"
    )["arch"].to_list()
    assert not set(round2) & set(proposed)  # round 1's are pending, not proposed twice
    assert "4 pending proposal(s)" in parzc("ask", "--config", str(path), "--pending")
    tell = ["tell", "--config", str(path), "--space", "digits", "--dataset", "digits"]
    parzc(*tell, "--arch", proposed[0], "--val-acc", "91.5", "--seed", "0")
    parzc(*tell, "--arch", proposed[1], "--failed", "--note", "out of memory", "--seed", "0")
    parzc(*tell, "--arch", round2[0], "--val-acc", "88", "--seed", "0")
    assert "1 pending proposal(s)" in parzc("ask", "--config", str(path), "--pending")
    # budget 5: 3 told + 1 pending leave one proposal
    third = parzc("ask", "--config", str(path), "--format", "csv", "-k", "3")
    assert "round 3: 1 proposal(s)" in third and "gbdt" in third
    assert proposed[1] not in third  # the failure is never proposed again
    labels = pl.read_csv(tmp_path / "labels.csv")
    assert labels["status"].to_list() == ["ok", "failed", "ok"]
    frozen = pl.read_csv(tmp_path / "results/loop/space=digits/dataset=digits/round3/labels.csv")
    assert frozen.equals(labels)  # the labels round 3 used, frozen
    loop = Loop(path)  # the same from Python
    assert loop.tell(round2[1], val_acc=90.0, seed=0)["status"] == "ok"
    assert len(loop.labels()) == 4 and len(loop.pending()) == 1  # round 3 is pending
    assert "round 4: 0 proposal(s)" in parzc("ask", "--config", str(path))
    with pytest.raises(ValueError, match="give a val_acc or failed=True"):
        loop.tell(round2[1], val_acc=90.0, failed=True)


# -- the loop as a DAG -----------------------------------------------------------------------


def completed(tmp_path: Path) -> list[str]:
    log = tmp_path / "trainings.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.split(" ", 1)[1] for line in lines if line.startswith("done ")]


def test_loop_dag_survives_a_kill_mid_round(tmp_path):
    """One snakemake invocation runs every round; killed in the middle of round 2, it resumes
    after --unlock without losing a label or training a labelled candidate again."""
    path = write(loop_config(tmp_path, sleep=2.0), tmp_path)
    command = ["snakemake", "--cores", "2", "--configfile", str(path)]
    proc = subprocess.Popen(
        command, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    round2 = tmp_path / "results/loop/space=digits/dataset=digits/round2/proposals.parquet"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        started = (
            (tmp_path / "trainings.log").read_text().count("start ")
            if (tmp_path / "trainings.log").exists()
            else 0
        )
        if round2.exists() and started >= 3:  # round 2 is training
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the loop finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = completed(tmp_path)
    labelled_before = (
        pl.read_csv(tmp_path / "labels.csv") if (tmp_path / "labels.csv").exists() else None
    )
    assert len(done_before) < 6
    subprocess.run(
        ["snakemake", "--unlock", "--configfile", str(path)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    subprocess.run([*command, "--rerun-incomplete"], cwd=REPO, check=True, capture_output=True)
    labels = pl.read_csv(tmp_path / "labels.csv")
    assert len(labels) == 6 and labels["arch"].n_unique() == 6  # budget 6, no duplicates
    if labelled_before is not None:  # every label told before the kill is still there
        assert set(labelled_before["arch"]) <= set(labels["arch"])
    ok = labels.filter(pl.col("status") == "ok")
    assert all(abs(v - fake_val_acc(a)) < 1e-9 for a, v in ok.select("arch", "val_acc").iter_rows())
    done = completed(tmp_path)
    assert len(done) == len(set(done))  # no candidate was trained to the end twice
    assert set(done) == set(ok["arch"])
    summary = (tmp_path / "results/loop/space=digits/dataset=digits/summary.md").read_text()
    assert "6 candidates told" in summary
    assert sum(line.startswith("| 3 | depth=") for line in summary.splitlines()) == 2
    assert "## The pick after each round" in summary
    # a budget set afterwards redoes the summary alone: no round is asked or trained again
    config = yaml.safe_load(path.read_text())
    config["spaces"]["digits"]["constraints"] = {"params": {"max": 1e9}}
    path.write_text(yaml.safe_dump(config))
    planned = set(planned_jobs(path))
    assert "loop_summary" in planned and not planned & {"loop_round", "loop_train"}
