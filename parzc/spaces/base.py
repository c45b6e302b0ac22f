"""The search-space contract every space module implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from torch import nn

    from parzc.spaces.graph import CellGraph


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


_ARCHS_CACHE: dict[str, pl.DataFrame] = {}


def _archs(space: SearchSpace) -> pl.DataFrame:
    if space.name not in _ARCHS_CACHE:
        table = space.accuracy_table().select("arch_id", "arch").unique("arch_id").sort("arch_id")
        first_id: dict[str, int] = {}
        for arch_id, arch in table.iter_rows():
            first_id.setdefault(arch, arch_id)
        network_ids = []
        for arch_id, arch in table.iter_rows():
            canonical = space.canonical(arch)
            if canonical == arch:  # its own network, even where the table lists it twice
                network_ids.append(arch_id)
            elif canonical in first_id:
                network_ids.append(first_id[canonical])
            else:
                raise InvalidArchError(
                    f"{space.name}: canonical form {canonical!r} of arch {arch_id} has no "
                    "arch_id of its own"
                )
        _ARCHS_CACHE[space.name] = table.with_columns(
            pl.Series("network_id", network_ids, dtype=pl.Int32)
        )
    return _ARCHS_CACHE[space.name]


class SearchSpace(ABC):
    """A NAS search space: decode encodings, build torch networks, list candidates, serve labels.

    The benchmark spaces list their candidates from their ground-truth tables. A user's space
    (`parzc.spaces.configured`) lists them from `enumerate` or seeded `sample`s and reads its
    labels from labels files; `ground_truth` tells the two apart.
    """

    name: ClassVar[str]
    datasets: ClassVar[dict[str, DatasetInfo]]
    # most Conv2d/Linear layers any member network has; 0 = the most any stored network has
    max_layers: ClassVar[int] = 0
    # every candidate has a known accuracy (a tabular benchmark); searches that score their
    # picks need it
    ground_truth: ClassVar[bool] = True
    # dataset whose proxies feed every target by default (None: each target's own)
    proxy_dataset: ClassVar[str | None] = None
    # cell graphs (`cell_graph`): operation vocabulary (index 0 = padding) and nodes per graph;
    # a space without cells (AutoFormer) keeps 0 nodes
    graph_vocabulary: ClassVar[tuple[str, ...]] = ()
    graph_nodes: ClassVar[int] = 0

    def dataset(self, name: str) -> DatasetInfo:
        try:
            return self.datasets[name]
        except KeyError:
            known = ", ".join(self.datasets)
            raise ValueError(
                f"unknown dataset {name!r} for space {self.name!r}; known: {known}"
            ) from None

    def accuracy_table(self) -> pl.DataFrame:
        """Accuracies, one row per labelled (arch_id, dataset), columns ACCURACY_COLUMNS.

        `train_time_s` is the recorded cost of training the architecture (null where unknown).
        A benchmark returns its ground truth; a user's space its labels files (none here).
        """
        return pl.DataFrame(schema=ACCURACY_COLUMNS)

    def extra_labels(self, dataset: str) -> pl.DataFrame:
        """Labels beyond `val_acc` and `test_acc` that predictors may train on or be scored
        against (`parzc.evaluation.protocols.LABELS`): `arch_id` and one Float64 column per
        label the space ships for `dataset`; none by default."""
        return pl.DataFrame(schema={"arch_id": pl.Int32})

    @abstractmethod
    def decode(self, arch: str) -> Any:
        """Parse and validate an encoding; raise InvalidArchError naming the bad value."""

    @abstractmethod
    def build(self, arch: str, dataset: str) -> nn.Module:
        """The untrained network for `arch` whose forward returns logits."""

    @abstractmethod
    def onehot(self, arch: str) -> np.ndarray:
        """Fixed-length float32 encoding of the architecture's operations."""

    def normalise(self, arch: str) -> str:
        """The encoding as the space spells it (validated); the identity by default."""
        self.decode(arch)
        return arch

    def neighbours(self, arch: str) -> list[str]:
        """Encodings one edit away from `arch` (for mutation and local search)."""
        raise NotImplementedError(f"space {self.name!r} does not list neighbours")

    def enumerate(self) -> Iterable[str]:
        """Every encoding of the space (user spaces small enough to list)."""
        raise NotImplementedError(f"space {self.name!r} cannot enumerate its encodings")

    def random_sample(self, rng: np.random.Generator) -> str:
        """One encoding drawn with `rng` (user spaces too large to list)."""
        raise NotImplementedError(f"space {self.name!r} cannot sample encodings")

    def sample(self, count: int, seed: int) -> list[str]:
        """`count` distinct encodings in draw order: `random_sample` with one seeded generator,
        or, for a space that only enumerates, the first `count` of a seeded permutation."""
        if type(self).random_sample is SearchSpace.random_sample:
            encodings = [self.normalise(a) for a in self.enumerate()]
            if count > len(encodings):
                raise ValueError(
                    f"cannot sample {count} distinct encodings of a space of {len(encodings)}"
                )
            order = np.random.default_rng(seed).permutation(len(encodings))
            return [encodings[i] for i in order[:count]]
        rng = np.random.default_rng(seed)
        seen: dict[str, None] = {}
        for _ in range(100 * count):
            seen.setdefault(self.normalise(self.random_sample(rng)))
            if len(seen) == count:
                return list(seen)
        raise ValueError(
            f"space {self.name!r}: {100 * count} draws gave only {len(seen)} distinct encodings "
            f"of the {count} asked for"
        )

    def cell_graph(self, arch: str) -> CellGraph:
        """The architecture's cells as one node-labelled DAG (`parzc.spaces.graph`)."""
        raise NotImplementedError(f"space {self.name!r} has no cell graph")

    def canonical(self, arch: str) -> str:
        """The encoding of the network `arch` computes, shared by every equivalent encoding.

        Spaces whose encodings can describe the same network twice (NB201's dead operations)
        map them to one canonical encoding; the default is the identity.
        """
        return arch

    def archs(self) -> pl.DataFrame:
        """arch_id, arch encoding and network_id of every architecture with ground truth, sorted
        by arch_id. `network_id` is the arch_id of the canonical encoding of the same network:
        the store holds features of networks, and every arch reads its network's features.
        """
        return _archs(self)

    def networks(self) -> np.ndarray:
        """Sorted arch_ids of the canonical networks (the archs whose network_id is their own)."""
        table = self.archs()
        return table.filter(pl.col("arch_id") == pl.col("network_id"))["arch_id"].to_numpy()
