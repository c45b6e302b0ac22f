"""The digits worked example: its choice space, data, training script and determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from parzc.spaces.base import InvalidArchError
from parzc.spaces.choice import Choices

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits"
sys.path.insert(0, str(EXAMPLE))

import digits_data  # noqa: E402
import train  # noqa: E402
from digits_space import DigitsCNN  # noqa: E402

SPACE = Choices(DigitsCNN.choices)
ARCH = "depth=2,width=8,kernel=3,activation=relu,pool=max,batchnorm=true"


def test_encodings_round_trip_over_every_candidate():
    archs = list(SPACE.enumerate())
    assert len(archs) == SPACE.total == 216
    assert len(set(archs)) == len(archs)
    for arch in archs:
        assert SPACE.encode(SPACE.decode(arch)) == arch


def test_every_candidate_has_conv_and_linear_layers():
    for arch in SPACE.enumerate():
        net = DigitsCNN().build(SPACE.decode(arch), 10)
        kinds = {type(m) for m in net.modules()}
        assert nn.Conv2d in kinds and nn.Linear in kinds, arch


@pytest.mark.parametrize(
    "arch",
    [
        "depth=1,width=8,kernel=3,activation=relu,pool=max,batchnorm=true",
        "depth=2,width=16,kernel=5,activation=gelu,pool=avg,batchnorm=false",
        "depth=3,width=32,kernel=5,activation=tanh,pool=max,batchnorm=true",
    ],
)
def test_build_gives_logits_on_the_proxy_batch(arch):
    x, y = digits_data.proxy_batch()
    torch.manual_seed(0)
    logits = DigitsCNN().build(SPACE.decode(arch), 10)(x[:32])
    assert logits.shape == (32, 10)
    assert torch.isfinite(logits).all()
    assert y.dtype == torch.int64 and x.dtype == torch.float32


def test_split_sizes_and_proxy_batch_is_the_training_split():
    split = digits_data.load_split()
    assert [len(t) for t in split] == [1000, 1000, 397, 397, 400, 400]
    assert split.x_train.shape[1:] == (1, 8, 8)
    assert abs(split.x_train.mean().item()) < 1e-4
    assert abs(split.x_train.std().item() - 1.0) < 1e-2
    x, y = digits_data.proxy_batch()
    assert torch.equal(x, split.x_train) and torch.equal(y, split.y_train)


def test_training_is_deterministic():
    first = train.train(ARCH, seed=3, epochs=1)
    second = train.train(ARCH, seed=3, epochs=1)
    assert first["val_acc"] == second["val_acc"]
    assert first["test_acc"] == second["test_acc"]


def test_bad_encoding_names_the_decision():
    with pytest.raises(InvalidArchError, match="width"):
        train.train(ARCH.replace("width=8", "width=7"))


def test_train_script_writes_json_from_another_directory(tmp_path):
    out = tmp_path / "sub" / "result.json"
    args = [sys.executable, str(EXAMPLE / "train.py"), "--arch", ARCH, "--seed", "1"]
    proc = subprocess.run(
        [*args, "--out", str(out), "--epochs", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(out.read_text())
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == result
    assert set(result) == {"arch", "val_acc", "test_acc", "train_time_s", "seed"}
    assert result["arch"] == ARCH and result["seed"] == 1
    assert 0.0 <= result["val_acc"] <= 100.0 and 0.0 <= result["test_acc"] <= 100.0
    assert result["train_time_s"] > 0
    assert [p.name for p in out.parent.iterdir()] == ["result.json"]


def test_train_script_rejects_a_bad_encoding(tmp_path):
    bad = ARCH.replace("pool=max", "pool=min")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE / "train.py"), "--arch", bad, "--out", "r.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "'pool'" in proc.stderr
    assert not (tmp_path / "r.json").exists()
