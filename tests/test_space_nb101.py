"""NAS-Bench-101 space: parameter counts vs. the benchmark, validation, encodings, forward pass."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from torch import nn

from parzc.spaces.base import ACCURACY_COLUMNS, InvalidArchError
from parzc.spaces.nb101 import NB101, parse_arch, vertex_channels
from parzc.spaces.nets.nb101 import Cell, NB101Network

IN, OUT = "input", "output"
C1, C3, MP = "conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3"


def arch(matrix: list[list[int]], ops: list[str]) -> str:
    return json.dumps({"matrix": matrix, "ops": ops})


def num_params(spec_arch: str) -> int:
    with torch.device("meta"):
        model = NB101Network(parse_arch(spec_arch))
    return sum(p.numel() for p in model.parameters())


def num_layers(model: nn.Module) -> int:
    return sum(isinstance(m, nn.Conv2d | nn.Linear) for m in model.modules())


# The Inception-like cell of the nasbench README / NASBench.ipynb, whose query prints
# trainable_parameters: 2694282 (google-research/nasbench NASBench.ipynb, "Basic usage").
INCEPTION = arch(
    [
        [0, 1, 1, 1, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    [IN, C1, C3, C3, C3, MP, OUT],
)
# The first record of nasbench_only108.tfrecord, fixed_metrics 'trainable_parameters': 8555530
# (as quoted in many nasbench users' docs, e.g. the `nasbench` Rust crate's query example).
FIRST_RECORD = arch(
    [
        [0, 1, 0, 0, 1, 1, 0],
        [0, 0, 1, 0, 0, 0, 0],
        [0, 0, 0, 1, 0, 0, 1],
        [0, 0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    [IN, C3, MP, C3, C3, C1, OUT],
)


@pytest.mark.parametrize(("cell", "expected"), [(INCEPTION, 2_694_282), (FIRST_RECORD, 8_555_530)])
def test_parameter_counts_match_nasbench(cell: str, expected: int) -> None:
    # TF counts conv kernels (no bias), BN gamma+beta and dense kernel+bias: same as torch here.
    assert num_params(cell) == expected


def test_accuracy_table_contract() -> None:
    space = NB101()
    table = space.accuracy_table()
    assert dict(table.schema) == ACCURACY_COLUMNS
    assert table.height == 500 and table["arch_id"].n_unique() == 500
    assert (table["val_acc"] == table["test_acc"]).all()
    assert table["train_time_s"].is_null().all()
    assert set(table["dataset"]) == {"cifar10"}
    for a in table["arch"].head(50):
        assert parse_arch(a).to_arch() == a  # canonical, already pruned


def test_pruning_drops_dead_vertices() -> None:
    # vertex 1 has no path to the output and vertex 2 none from the input
    raw = arch([[0, 1, 0, 1], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]], [IN, C3, C1, OUT])
    spec = parse_arch(raw)
    assert spec.matrix == ((0, 1), (0, 0)) and spec.ops == (IN, OUT)
    assert spec.to_arch() == '{"matrix":[[0,1],[0,0]],"ops":["input","output"]}'


@pytest.mark.parametrize(
    ("matrix", "ops", "message"),
    [
        ([[0, 1, 0], [0, 0, 1], [0, 1, 0]], [IN, C3, OUT], "not upper triangular at (2,1)"),
        ([[0, 1, 0], [0, 1, 1], [0, 0, 0]], [IN, C3, OUT], "not upper triangular at (1,1)"),
        ([[0, 1, 0], [0, 0, 0], [0, 0, 0]], [IN, C3, OUT], "disconnected"),
        ([[0, 1, 2], [0, 0, 1], [0, 0, 0]], [IN, C3, OUT], "entry (0,2) is 2"),
        ([[0, 1, 1], [0, 0, 1]], [IN, C3, OUT], "row 0 has 3 entries"),
        ([[0, 1], [0, 0]], [IN, C3, OUT], "ops"),
        ([[0, 1, 1], [0, 0, 1], [0, 0, 0]], [IN, "conv5x5", OUT], "ops[1] is 'conv5x5'"),
        ([[0, 1, 1], [0, 0, 1], [0, 0, 0]], [C3, C3, OUT], "ops[0]"),
        ([[0] * 8 for _ in range(8)], [IN] + [C3] * 6 + [OUT], "8 vertices"),
        (
            [
                [0, 1, 1, 1, 1, 1, 1],
                [0, 0, 1, 0, 0, 0, 1],
                [0, 0, 0, 0, 0, 0, 1],
                [0, 0, 0, 0, 0, 0, 1],
                [0, 0, 0, 0, 0, 0, 1],
                [0, 0, 0, 0, 0, 0, 1],
                [0, 0, 0, 0, 0, 0, 0],
            ],
            [IN, C3, C3, C3, C3, C3, OUT],
            "12 edges > 9",
        ),
    ],
)
def test_invalid_cells_are_rejected(matrix: list, ops: list, message: str) -> None:
    with pytest.raises(InvalidArchError, match=re.escape(message)):
        NB101().decode(arch(matrix, ops))


def test_not_json_is_rejected() -> None:
    with pytest.raises(InvalidArchError, match="keys 'matrix' and 'ops'"):
        NB101().decode('{"matrix": [[0, 1], [0, 0]]}')


def test_uneven_channel_split_truncates() -> None:
    # three vertices feed the output: 11 = 4 + 4 + 3 channels; edge 1->3 truncates 4 -> 3;
    # the direct input->output edge adds a projection of the input to the concatenation
    spec = parse_arch(
        arch(
            [[0, 1, 1, 1, 1], [0, 0, 0, 1, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
            [IN, C3, MP, C1, OUT],
        )
    )
    assert vertex_channels(spec, 5, 11) == [5, 4, 4, 3, 11]
    cell = Cell(spec, 5, 11)
    assert cell.out_proj is not None and sorted(cell.proj) == ["1", "2", "3"]
    assert cell(torch.randn(2, 5, 8, 8)).shape == (2, 11, 8, 8)


def test_max_layers_bound_is_reached() -> None:
    # 4 input-fed conv vertices + 1 chained conv: 9 Conv2d per cell with 9 edges
    dense = arch(
        [
            [0, 1, 1, 1, 1, 0, 0],
            [0, 0, 0, 0, 0, 1, 0],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 0],
        ],
        [IN, C3, C1, C3, C1, C3, OUT],
    )
    with torch.device("meta"):
        model = NB101Network(parse_arch(dense))
    assert num_layers(model) == NB101.max_layers == 83


def test_onehot_is_fixed_length() -> None:
    space = NB101()
    codes = np.stack([space.onehot(a) for a in space.archs()["arch"]])
    assert codes.shape == (500, 36) and codes.dtype == np.float32
    tiny = space.onehot(arch([[0, 1, 1], [0, 0, 1], [0, 0, 0]], [IN, MP, OUT]))
    # edges 0->1, 0->6 (output padded to slot 6), 1->6; vertex 1 is a max-pool
    upper = np.zeros((7, 7), dtype=np.float32)
    upper[0, 1] = upper[0, 6] = upper[1, 6] = 1
    assert np.array_equal(tiny[:21], upper[np.triu_indices(7, k=1)])
    assert np.array_equal(tiny[21:24], [0, 0, 1]) and not tiny[24:].any()


def test_build_forward_backward_on_shipped_archs() -> None:
    space = NB101()
    table = space.archs()
    only_io = table["arch"].str.contains('"ops":["input","output"]', literal=True)
    for a in [table["arch"][1], table.filter(only_io)["arch"][0]]:  # 5-vertex and 2-vertex cells
        torch.manual_seed(0)
        model = space.build(a, "cifar10")
        assert num_layers(model) <= space.max_layers
        logits = model(torch.randn(2, 3, 32, 32))
        assert logits.shape == (2, 10)
        logits.sum().backward()


def test_every_nb101_cell_is_its_own_network():
    """NB101 encodings are pruned cells already: canonicalisation changes nothing."""
    space = NB101()
    archs = space.archs()
    assert (archs["arch_id"] == archs["network_id"]).all()
    assert len(space.networks()) == archs.height == 500
