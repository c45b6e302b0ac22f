"""The search-space contract every space module implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import polars as pl
from torch import nn


class InvalidArchError(ValueError):
    """An architecture encoding that does not decode to a valid member of its space."""


@dataclass(frozen=True)
class DatasetInfo:
    """A target dataset of a space: classifier size, proxy-batch input size, image provenance."""

    name: str
    num_classes: int
    input_size: int
    images: str  # what real images feed the proxy batch (states substitutions plainly)


# Columns of SearchSpace.accuracy_table(), in order.
ACCURACY_COLUMNS = {
    "arch_id": pl.Int32,
    "arch": pl.String,
    "dataset": pl.String,
    "val_acc": pl.Float64,
    "test_acc": pl.Float64,
    "train_time_s": pl.Float64,
}


def single_accuracy_table(
    arch_ids: Sequence[int], archs: Sequence[str], dataset: str, accuracy: Sequence[float]
) -> pl.DataFrame:
    """ACCURACY_COLUMNS for a space with one accuracy per arch: it serves as val and test."""
    return pl.DataFrame(
        {
            "arch_id": arch_ids,
            "arch": archs,
            "dataset": dataset,
            "val_acc": accuracy,
            "test_acc": accuracy,
            "train_time_s": None,
        }
    ).cast(ACCURACY_COLUMNS)


class SearchSpace(ABC):
    """A NAS search space: decode encodings, build torch networks, serve ground truth."""

    name: ClassVar[str]
    datasets: ClassVar[dict[str, DatasetInfo]]
    max_layers: ClassVar[int]  # most Conv2d/Linear layers any member network has

    def dataset(self, name: str) -> DatasetInfo:
        try:
            return self.datasets[name]
        except KeyError:
            known = ", ".join(self.datasets)
            raise ValueError(
                f"unknown dataset {name!r} for space {self.name!r}; known: {known}"
            ) from None

    @abstractmethod
    def accuracy_table(self) -> pl.DataFrame:
        """Ground truth, one row per (arch_id, dataset), columns ACCURACY_COLUMNS.

        `train_time_s` is the recorded cost of training the architecture (null where unknown).
        """

    @abstractmethod
    def decode(self, arch: str) -> Any:
        """Parse and validate an encoding; raise InvalidArchError naming the bad value."""

    @abstractmethod
    def build(self, arch: str, dataset: str) -> nn.Module:
        """The untrained network for `arch` whose forward returns logits."""

    @abstractmethod
    def onehot(self, arch: str) -> np.ndarray:
        """Fixed-length float32 encoding of the architecture's operations."""

    def is_valid(self, arch: str) -> bool:
        """Whether the arch belongs to the space's published "valid" subset (default: all do)."""
        return True

    def num_archs(self) -> int:
        return self.accuracy_table()["arch_id"].n_unique()

    def archs(self) -> pl.DataFrame:
        """arch_id and arch encoding of every architecture with ground truth, sorted by arch_id."""
        return self.accuracy_table().select("arch_id", "arch").unique("arch_id").sort("arch_id")
