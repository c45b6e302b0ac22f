"""Nearest operation encodings and scores smoothed over them."""

import numpy as np

from parzc.neighbours import nearest_encodings, smoothed
from parzc.spaces import get_space


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


def test_smoothing_mixes_each_score_with_its_neighbours_mean():
    pool = np.array([[1, 0], [0, 1], [1, 1]])
    pool_score = np.array([1.0, 3.0, 10.0])
    queries = np.array([[1, 0], [0, 0]])
    out = smoothed(np.array([2.0, 5.0]), queries, pool, pool_score, 0.25)
    # [1, 0]: its copy is skipped, [1, 1] is 1 away, [0, 1] 2; [0, 0]: [1, 0] and [0, 1] tie at 1
    np.testing.assert_allclose(out, [0.75 * 2 + 0.25 * 10.0, 0.75 * 5 + 0.25 * (1.0 + 3.0) / 2])
