"""Evaluation protocols: what a predictor trains on, what it is scored against, and over what.

Published predictors are scored in different ways, and a Kendall tau means little without its
protocol. A `Protocol` names the four choices that matter:

- `train_label`: the accuracy the predictor is fitted on (`LABELS`: `val`, single-run validation
  accuracy; `val_mean`, NAS-Bench-201's seed-mean validation accuracy, CIFAR-10 only);
- `score_label`: the accuracy its ranking is compared with (`test`, the shipped test accuracy,
  itself a mean over seeds on NAS-Bench-201; `val`; `val_mean`);
- `evaluation`: the architectures compared (`EVALUATION_SETS`: the held-out canonical networks;
  every cell whose network is held out; every cell whose own label was not trained on, the other
  cells of a training network included, as a draw of cells leaves them; or every cell);
- `selection_labels`: the extra labelled architectures the protocol grants for model selection.
  parzc declines them (`selection_used` is 0 in every metrics row): its predictors choose no
  checkpoint or setting on labels other than their training labels.

Each metrics row also carries the protocol's **ceiling**: the Kendall tau of the training label
itself with the scored label over the same architectures, what a predictor that reproduced every
training label exactly would reach (1 where the two labels are the same).

`PROTOCOLS` holds the built-in protocols (the anchors' published figures are in the config that
names them, `evaluation.protocols`); a config may define more from the same fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from parzc.registry import Registry

if TYPE_CHECKING:
    from parzc.store.matrix import FeatureMatrix

# label -> what it is; `val` and `test` are every space's, the others come from the space's
# `extra_labels` (NB201 CIFAR-10 only for `val_mean`)
LABELS = {
    "val": "validation accuracy of one training run (what parzc's searches and loops label)",
    "val_mean": "validation accuracy averaged over the benchmark's seeds",
    "test": "test accuracy (on NAS-Bench-201 the mean over its seeds)",
}
# evaluation set -> rows of a predictions file it keeps (`held_out`: the cell's network was not
# trained on; a training network's label is its canonical cell's, arch_id == network_id)
EVALUATION_SETS: dict[str, pl.Expr] = {
    "held_out_networks": pl.col("held_out") & (pl.col("arch_id") == pl.col("network_id")),
    "held_out_cells": pl.col("held_out"),
    "unlabelled_cells": pl.col("held_out") | (pl.col("arch_id") != pl.col("network_id")),
    "all_cells": pl.lit(True),
}
# evaluation sets that hold training networks' cells: files without them cannot be scored so
NEEDS_TRAINING_CELLS = ("unlabelled_cells", "all_cells")
# labels every assembled matrix carries -> its field
_MATRIX_LABELS = {"val": "val_acc", "test": "test_acc"}
# the predictions column holding each label: the training label has its own column
_SCORE_COLUMNS = {"test": "target", "val": "val_acc"}


@dataclass(frozen=True)
class Anchor:
    """A published predictor's Kendall tau under a protocol, by training size, on `dataset`
    (None: every target)."""

    name: str
    kendall: Mapping[int, float]
    dataset: str | None = None

    def at(self, dataset: str, size: int) -> float | None:
        """Its figure for `dataset` at `size` labels, None where it publishes none."""
        if self.dataset not in (None, dataset):
            return None
        return self.kendall.get(size)


@dataclass(frozen=True)
class Protocol:
    """One way of scoring a predictor (module doc). `anchors`: published figures of other
    predictors under this protocol, shown next to parzc's."""

    train_label: str = "val"
    score_label: str = "test"
    evaluation: str = "held_out_networks"
    selection_labels: int = 0
    anchors: tuple[Anchor, ...] = ()

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("train_label", self.train_label, LABELS),
            ("score_label", self.score_label, LABELS),
            ("evaluation", self.evaluation, EVALUATION_SETS),
        ):
            if value not in allowed:
                raise ValueError(f"protocol {name} {value!r} is not one of {sorted(allowed)}")

    def describe(self) -> dict[str, Any]:
        """The protocol's fields as metrics columns (anchors left out)."""
        fields = asdict(self)
        fields.pop("anchors")
        return fields


PROTOCOLS: Registry[Protocol] = Registry("protocol")
PROTOCOLS.register("strict")(Protocol())
PROTOCOLS.register("strict_cells")(Protocol(evaluation="held_out_cells"))
PROTOCOLS.register("same_label")(
    Protocol(score_label="val", evaluation="unlabelled_cells", selection_labels=40)
)
PROTOCOLS.register("seed_mean_all_cells")(
    Protocol(train_label="val_mean", evaluation="all_cells", selection_labels=1024)
)
DEFAULT_PROTOCOLS = ("strict", "strict_cells")


def resolve_protocols(entries: Mapping[str, Mapping[str, Any]]) -> dict[str, Protocol]:
    """The config's `evaluation.protocols` (name -> fields) as protocols: a built-in name takes
    its registered fields, which the entry's fields override; any other name needs its own."""
    out = {}
    for name, fields in entries.items():
        base = PROTOCOLS.get(name).describe() if name in PROTOCOLS else {}
        try:
            anchors = tuple(
                Anchor(
                    name=str(a["name"]),
                    kendall={int(size): float(tau) for size, tau in a["kendall"].items()},
                    dataset=a.get("dataset"),
                )
                for a in fields.get("anchors", ())
            )
            out[name] = Protocol(**{**base, **fields, "anchors": anchors})
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"evaluation/protocols/{name}: {err}") from None
    return out


def training_labels(matrix: FeatureMatrix, name: str) -> np.ndarray:
    """The `name` label (LABELS) of every arch of `matrix`, NaN where it has none."""
    if name not in LABELS:
        raise ValueError(f"unknown label {name!r}; known: {', '.join(LABELS)}")
    if name in _MATRIX_LABELS:
        return getattr(matrix, _MATRIX_LABELS[name])
    from parzc.spaces import get_space

    extra = get_space(matrix.space).extra_labels(matrix.target)
    if name not in extra.columns:
        raise ValueError(
            f"label {name!r} is not available for {matrix.space}/{matrix.target} "
            f"(available: {', '.join([*_MATRIX_LABELS, *extra.columns[1:]])})"
        )
    values = dict(zip(extra["arch_id"].to_list(), extra[name].to_list(), strict=True))
    return np.array([values.get(int(a), np.nan) for a in matrix.arch_ids], dtype=np.float64)


def label_available(space: str, dataset: str, name: str) -> bool:
    """Whether `space` ships the `name` label for `dataset`."""
    if name in _MATRIX_LABELS:
        return True
    from parzc.spaces import get_space

    return name in get_space(space).extra_labels(dataset).columns


def score_column(protocol: Protocol, train_label: str) -> str:
    """The predictions column holding `protocol`'s scored label for a file trained on
    `train_label`."""
    if protocol.score_label == train_label:
        return "train_target"
    if protocol.score_label not in _SCORE_COLUMNS:
        raise ValueError(
            f"predictions trained on {train_label!r} carry no {protocol.score_label!r} label"
        )
    return _SCORE_COLUMNS[protocol.score_label]


def ceiling(rows: pl.DataFrame, column: str) -> float:
    """Kendall tau of the training label with `column` over `rows` (finite pairs only)."""
    from scipy.stats import kendalltau

    label, scored = rows["train_target"].to_numpy(), rows[column].to_numpy()
    keep = np.isfinite(label) & np.isfinite(scored)
    if keep.sum() < 2:
        return float("nan")
    return float(kendalltau(label[keep], scored[keep]).statistic)
