"""NAS-Bench-201: decoding, network construction against published parameter counts."""

import polars as pl
import pytest
import torch

from parzc.data import resource
from parzc.spaces import InvalidArchError, get_space
from parzc.spaces.nb201 import is_valid_cell, parse_arch

SPACE = get_space("nb201")
RAW = pl.read_parquet(resource("nb201/nb201_accuracy.parquet"))


@pytest.mark.parametrize("index", [0, 1, 2, 1000, 5374, 15624])
def test_parameter_counts_match_published(index):
    arch, params_m = RAW["arch_str"][index], RAW["params_m"][index]
    model = SPACE.build(arch, "cifar10")
    assert sum(p.numel() for p in model.parameters()) == round(params_m * 1e6)


@pytest.mark.parametrize(
    ("dataset", "classes", "size"),
    [("cifar10", 10, 32), ("cifar100", 100, 32), ("imagenet16-120", 120, 16)],
)
def test_head_and_input_size_per_dataset(dataset, classes, size):
    model = SPACE.build(RAW["arch_str"][1], dataset)
    assert model(torch.zeros(2, 3, size, size)).shape == (2, classes)


def test_layer_count_of_the_all_conv_cell_is_max_layers():
    arch = (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|"
        "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    model = SPACE.build(arch, "cifar10")
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    assert len(layers) == SPACE.max_layers == 98


def test_decode_roundtrip_and_onehot():
    arch = RAW["arch_str"][0]
    genotype = parse_arch(arch)
    rebuilt = "+".join("|" + "|".join(f"{op}~{j}" for op, j in g) + "|" for g in genotype)
    assert rebuilt == arch
    code = SPACE.onehot(arch)
    assert code.shape == (30,) and code.sum() == 6


@pytest.mark.parametrize(
    "bad",
    [
        "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|none~0|+|none~0|none~1|",
        "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
        "none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|none~0|+|none~0|+|none~0|none~1|none~2|",
    ],
)
def test_malformed_arch_strings_are_rejected_naming_the_value(bad):
    with pytest.raises(InvalidArchError, match="NB201 arch"):
        parse_arch(bad)


def test_valid_cells_are_the_suite_zero_set():
    assert sum(is_valid_cell(a) for a in RAW["arch_str"]) == 9445
    assert is_valid_cell("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    # a conv edge into node 1 that never reaches the output
    assert not is_valid_cell("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")


def test_accuracy_table_covers_every_arch_and_dataset():
    table = SPACE.accuracy_table()
    assert table.shape[0] == 3 * 15625
    best = table.group_by("dataset").agg(pl.col("test_acc").max()).sort("dataset")
    assert best["test_acc"].round(2).to_list() == [94.37, 73.51, 47.31]
