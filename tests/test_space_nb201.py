"""NAS-Bench-201: decoding, network construction against published parameter counts."""

import numpy as np
import polars as pl
import pytest
import torch
from conftest import mini_settings, shard_part

from parzc.extract import extract_shard
from parzc.resources import resource
from parzc.sharding import arch_order
from parzc.spaces import InvalidArchError, get_space
from parzc.spaces.nb201 import canonical_arch, parse_arch
from parzc.store import Store

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


DANGLING = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"


def test_canonical_cells_are_the_suite_zero_networks():
    archs = SPACE.archs()
    assert archs["network_id"].n_unique() == len(SPACE.networks()) == 9445
    # a canonical cell is its own network; every network is a canonical cell
    canon = {canonical_arch(a) for a in RAW["arch_str"]}
    assert len(canon) == 9445
    assert set(archs.filter(pl.col("arch_id") == pl.col("network_id"))["arch"]) == canon
    # a conv edge into node 1 that never reaches the output is dropped
    assert canonical_arch(DANGLING) == "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    empty = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    assert canonical_arch(empty) == empty


def test_a_dangling_conv_and_its_canonical_form_get_identical_features(tmp_path):
    """Only canonical networks are extracted; a cell reads its network's features and one-hot
    code, and keeps its own accuracies."""
    archs = SPACE.archs()
    order = arch_order("nb201", None).tolist()
    twins = archs.filter(pl.col("arch_id") != pl.col("network_id")).sort("network_id")
    twin, arch, net = twins.row(0)
    assert SPACE.canonical(arch) != arch
    position = order.index(net)
    settings = mini_settings(layer_proxies=("snip", "params"), network_proxies=(), arch_seed=None)
    part = shard_part(position, position)
    extract_shard(settings, [net], tmp_path / "features" / part, tmp_path / "arch_stats" / part)
    data = Store(tmp_path).assemble("nb201", "cifar10", ["snip"], [twin, net], onehot=True)
    assert data.network_ids.tolist() == [net, net]
    for name in ("layerwise", "layerwise_raw", "aggregates", "onehot"):
        values = getattr(data, name)
        np.testing.assert_array_equal(values[0], values[1])
    assert data.onehot[0].tolist() == SPACE.onehot(SPACE.canonical(arch)).tolist()
    truth = SPACE.accuracy_table().filter(pl.col("dataset") == "cifar10")
    acc = dict(truth.select("arch_id", "test_acc").iter_rows())
    assert data.test_acc.tolist() == [acc[twin], acc[net]]


def test_extraction_builds_exactly_the_canonical_networks():
    order = arch_order("nb201", 0)
    assert len(order) == len(np.unique(order)) == 9445
    assert set(order.tolist()) == set(SPACE.networks().tolist())


def test_the_one_hot_code_describes_the_canonical_cell():
    row = SPACE.archs().filter(pl.col("arch") == DANGLING).row(0, named=True)
    canon = SPACE.archs().filter(pl.col("arch_id") == row["network_id"])["arch"][0]
    assert canon == canonical_arch(DANGLING)
    assert SPACE.onehot(canon)[0 * 5 + 0] == 1.0  # edge 0 is `none` in the canonical cell


def test_accuracy_table_covers_every_arch_and_dataset():
    table = SPACE.accuracy_table()
    assert table.shape[0] == 3 * 15625
    best = table.group_by("dataset").agg(pl.col("test_acc").max()).sort("dataset")
    assert best["test_acc"].round(2).to_list() == [94.37, 73.51, 47.31]


@pytest.mark.parametrize("shape", [(2, 4, 8, 8), (3, 2, 5, 7), (1, 1, 1, 1)])
def test_box_filter_pool_matches_avg_pool_without_padding_counts(shape):
    from parzc.spaces.nets.nb201 import AvgPool3x3

    x = torch.randn(*shape, dtype=torch.float64)
    reference = torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    torch.testing.assert_close(AvgPool3x3()(x), reference(x))
