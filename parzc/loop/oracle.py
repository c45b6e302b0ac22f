"""The benchmark oracle: a `train_command` that answers from a benchmark space's ground truth.

    parzc oracle --space nb201 --dataset cifar10 --arch {arch} --result {result}

It reports the validation accuracy of the encoding as recorded (for NB201 the cell's own
training, not its network's) and the recorded training time where the space has one; never the
test accuracy, which only the loop's report reads to score the pick.
"""

from __future__ import annotations

from functools import cache

import polars as pl

from parzc.spaces import get_space


@cache
def _truth(space: str, dataset: str) -> dict[str, tuple[float, float | None]]:
    table = get_space(space).accuracy_table().filter(pl.col("dataset") == dataset)
    return {a: (v, t) for a, v, t in table.select("arch", "val_acc", "train_time_s").iter_rows()}


def oracle_result(space: str, dataset: str, arch: str) -> dict:
    """{"arch", "val_acc"[, "train_time_s"]} of a benchmark candidate."""
    search_space = get_space(space)
    if not search_space.ground_truth:
        raise ValueError(f"space {space!r} has no ground truth to answer from")
    search_space.dataset(dataset)
    arch = search_space.normalise(arch)
    truth = _truth(space, dataset)
    if arch not in truth:
        raise ValueError(f"arch {arch!r} has no recorded accuracy in {space}/{dataset}")
    val_acc, seconds = truth[arch]
    result = {"arch": arch, "val_acc": val_acc}
    return result if seconds is None else result | {"train_time_s": seconds}
