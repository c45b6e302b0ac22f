"""DARTS / NAS-Bench-301 space: DARTS-V2 size, validation, encodings, NDS reader, forward pass."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from parzc.spaces.base import ACCURACY_COLUMNS, InvalidArchError
from parzc.spaces.darts import NB301, parse_arch, parse_genotype, read_nds_json
from parzc.spaces.nets.darts import NetworkCIFAR

# DARTS (second order) cell from quark0/darts cnn/genotypes.py
DARTS_V2 = {
    "normal": [
        ["sep_conv_3x3", 0],
        ["sep_conv_3x3", 1],
        ["sep_conv_3x3", 0],
        ["sep_conv_3x3", 1],
        ["sep_conv_3x3", 1],
        ["skip_connect", 0],
        ["skip_connect", 0],
        ["dil_conv_3x3", 2],
    ],
    "normal_concat": [2, 3, 4, 5],
    "reduce": [
        ["max_pool_3x3", 0],
        ["max_pool_3x3", 1],
        ["skip_connect", 2],
        ["max_pool_3x3", 1],
        ["max_pool_3x3", 0],
        ["skip_connect", 2],
        ["skip_connect", 2],
        ["max_pool_3x3", 1],
    ],
    "reduce_concat": [2, 3, 4, 5],
}


def num_layers(model: nn.Module) -> int:
    return sum(isinstance(m, nn.Conv2d | nn.Linear) for m in model.modules())


def test_darts_v2_cifar_model_has_published_size() -> None:
    # DARTS paper: 3.3M params; DARTS' train.py logs "param size = 3.349342MB" (no aux head)
    with torch.device("meta"):
        model = NetworkCIFAR(parse_genotype(DARTS_V2), channels=36, layers=20, num_classes=10)
    assert sum(p.numel() for p in model.parameters()) == 3_349_342


def test_accuracy_table_contract() -> None:
    table = NB301().accuracy_table()
    assert dict(table.schema) == ACCURACY_COLUMNS
    assert table.height == 500 and table["arch_id"].n_unique() == 500
    assert (table["val_acc"] == table["test_acc"]).all()
    assert table["train_time_s"].is_null().all()
    a = table["arch"][0]
    assert parse_arch(a).to_arch() == a
    assert a == json.dumps(json.loads(a), sort_keys=True, separators=(",", ":"))


def test_build_forward_backward_on_shipped_archs() -> None:
    space = NB301()
    for a in space.archs()["arch"].head(3):
        torch.manual_seed(0)
        model = space.build(a, "cifar10")
        assert num_layers(model) <= space.max_layers
        logits = model(torch.randn(2, 3, 32, 32))
        assert logits.shape == (2, 10)
        logits.sum().backward()


def test_max_layers_is_reached_by_all_sep_conv() -> None:
    cell = [["sep_conv_5x5", i % 2] for i in range(8)]
    genotype = {
        "normal": cell,
        "normal_concat": [2, 3, 4, 5],
        "reduce": cell,
        "reduce_concat": [2, 3, 4, 5],
    }
    with torch.device("meta"):
        model = NB301().build(json.dumps(genotype), "cifar10")
    assert num_layers(model) == NB301.max_layers == 276


def _mutated(path: tuple, value: object) -> str:
    genotype = copy.deepcopy(DARTS_V2)
    target = genotype
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(genotype)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("normal",), DARTS_V2["normal"][:7], "'normal' must list 8 [op, input] edges, got 7"),
        (
            ("reduce", 3),
            ["max_pool_3x3", 3],
            "reduce[3] input 3 is invalid for intermediate node 1",
        ),
        (("normal", 0), ["none", 0], "normal[0] op 'none'"),
        (("normal", 6), ["conv_7x1_1x7", 0], "'conv_7x1_1x7'"),
        (("normal", 2), ["sep_conv_3x3"], "normal[2] is ['sep_conv_3x3']"),
        (("reduce_concat",), [2, 6], "'reduce_concat' is [2, 6]"),
        (("normal_concat",), None, "expected an object with keys"),
    ],
)
def test_invalid_genotypes_are_rejected(path: tuple, value: object, message: str) -> None:
    with pytest.raises(InvalidArchError, match=re.escape(message)):
        NB301().decode(_mutated(path, value))


def test_onehot_is_fixed_length() -> None:
    space = NB301()
    codes = np.stack([space.onehot(a) for a in space.archs()["arch"]])
    assert codes.shape == (500, 200) and codes.dtype == np.float32
    # every edge has exactly one op and one input; concat masks are all four nodes
    per_cell = codes.reshape(500, 2, 100)
    edges = per_cell[:, :, :96].reshape(500, 2, 8, 12)
    assert (edges[..., :7].sum(-1) == 1).all() and (edges[..., 7:].sum(-1) == 1).all()
    assert (per_cell[:, :, 96:] == 1).all()


def test_read_nds_json(tmp_path: Path) -> None:
    other = copy.deepcopy(DARTS_V2)
    other["normal_concat"] = [4, 5]
    records = [
        {"net": {"genotype": DARTS_V2, "width": 16, "depth": 12}, "test_ep_top1": [60.0, 5.5]},
        {"net": {"genotype": other, "width": 32, "depth": 20}, "test_ep_top1": [50.0, 8.25]},
    ]
    path = tmp_path / "DARTS.json"
    path.write_text(json.dumps(records))
    table = read_nds_json(path)
    assert list(table.columns) == [*ACCURACY_COLUMNS, "width", "depth"]
    assert table["arch_id"].to_list() == [0, 1]
    assert table["test_acc"].to_list() == [94.5, 91.75]  # 100 - final top-1 error
    assert table["val_acc"].to_list() == [94.5, 91.75]
    assert table["width"].to_list() == [16, 32] and table["depth"].to_list() == [12, 20]
    assert table["arch"][0] == parse_genotype(DARTS_V2).to_arch()
    assert json.loads(table["arch"][1])["normal_concat"] == [4, 5]

    path.write_text(json.dumps({"top": records[:1], "mid": records[1:]}))
    assert read_nds_json(path)["test_acc"].to_list() == [94.5, 91.75]

    records[1]["net"]["genotype"]["reduce"][0] = ["sep_conv_7x7", 0]
    path.write_text(json.dumps(records))
    with pytest.raises(InvalidArchError, match="record 1: .*'sep_conv_7x7'"):
        read_nds_json(path)


def test_every_darts_genotype_is_its_own_network():
    space = NB301()
    archs = space.archs()
    assert (archs["arch_id"] == archs["network_id"]).all()
    assert len(space.networks()) == archs.height == 500
