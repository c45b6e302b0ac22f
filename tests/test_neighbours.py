"""Nearest operation encodings and scores smoothed over them."""

import numpy as np
import polars as pl
import pytest

from parzc.neighbours import nearest_encodings, neighbour_means, smoothed
from parzc.spaces import get_space
from parzc.spaces.nb201 import OPS


def test_nearest_encodings_skip_copies_and_keep_ties():
    pool = np.array([[1, 0, 0, 1], [1, 0, 0, 1], [0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 1, 0]])
    found = nearest_encodings(pool[:1], pool)[0]
    np.testing.assert_array_equal(found, [2, 3])  # distance 2; row 1 is a copy, row 4 is 4 away
    assert len(nearest_encodings(pool[:1], pool[:2])[0]) == 0  # only copies: no neighbour


def test_a_full_nb201_cell_has_its_one_edit_cells_as_neighbours():
    space = get_space("nb201")
    archs = space.archs()["arch"].to_list()
    onehot = np.stack([space.onehot(a) for a in archs])
    edges = ["nor_conv_3x3~0", "nor_conv_3x3~0", "nor_conv_3x3~1"]
    edges += ["nor_conv_3x3~0", "nor_conv_3x3~1", "nor_conv_3x3~2"]
    full = "|{}|+|{}|{}|+|{}|{}|{}|".format(*edges)
    (found,) = nearest_encodings(onehot[[archs.index(full)]], onehot)
    parts = full.split("|")
    edits = [sum(x != y for x, y in zip(archs[i].split("|"), parts, strict=True)) for i in found]
    assert set(edits) == {1} and len(found) >= 18  # every other op but `none` keeps all paths


def test_smoothing_mixes_each_score_with_its_mean_and_keeps_scores_without_one():
    out = smoothed(np.array([2.0, 5.0]), np.array([10.0, np.nan]), 0.25)
    np.testing.assert_allclose(out, [0.75 * 2 + 0.25 * 10.0, 5.0])


def _one_edit_cells(arch: str) -> list[str]:
    """Every NB201 cell with exactly one operation of `arch` changed, by string edits."""
    parts = arch.split("|")
    edits = []
    for k, part in enumerate(parts):
        if "~" in part:
            op, node = part.split("~")
            others = [o for o in OPS if o != op]
            edits += ["|".join([*parts[:k], f"{o}~{node}", *parts[k + 1 :]]) for o in others]
    return edits


def test_a_network_averages_the_one_edit_neighbours_of_all_its_cells():
    """NB201: each cell of a network with dead-edge twins has its 24 one-edit cells as
    neighbours; the network's mean is the mean over its cells of their networks' mean score."""
    space = get_space("nb201")
    table = space.archs()
    network_of = dict(zip(table["arch"], table["network_id"], strict=True))
    networks = space.networks()
    rng = np.random.default_rng(0)
    pool_score = rng.normal(size=len(networks))
    score_of = dict(zip(networks.tolist(), pool_score, strict=True))
    twins = table.group_by("network_id").agg("arch").filter(pl.col("arch").list.len() > 1)
    network, archs = twins.sort("network_id").row(0)
    expected = np.mean(
        [np.mean([score_of[network_of[e]] for e in _one_edit_cells(a)]) for a in archs]
    )
    (got,) = neighbour_means("nb201", np.array([network]), networks, pool_score)
    assert got == pytest.approx(expected, rel=1e-12)
    # the canonical cell alone would average other neighbours
    canonical = space.archs().filter(pl.col("arch_id") == network)["arch"][0]
    alone = np.mean([score_of[network_of[e]] for e in _one_edit_cells(canonical)])
    assert abs(alone - expected) > 1e-6


def test_without_twin_cells_the_neighbours_are_the_nearest_pool_encodings():
    """NB101 encodes every network once: a network's neighbours are the nearest codes in the
    pool, whatever the pool (here every other network)."""
    space = get_space("nb101")
    networks = space.networks()
    pool, queries = networks[::2], networks[1::2]
    codes = np.stack([space.onehot(a) for a in space.archs()["arch"]])
    pool_score = np.arange(len(pool), dtype=np.float64)
    expected = [pool_score[rows].mean() for rows in nearest_encodings(codes[queries], codes[pool])]
    np.testing.assert_allclose(neighbour_means("nb101", queries, pool, pool_score), expected)


def test_an_id_that_is_no_network_of_the_space_is_named():
    with pytest.raises(ValueError, match=r"nb101: networks \[100000\]"):
        neighbour_means("nb101", np.array([100000]), np.array([0, 1]), np.zeros(2))
