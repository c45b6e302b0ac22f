"""A user's search space, named in the config by import path, with its candidates, proxy inputs
and labels files:

    spaces:
      digits:
        source: "digits_space:DigitsCNN"     # a ChoiceSpace or a SearchSpace subclass
        python_path: [examples/digits]       # prepended to sys.path in every job
        candidates: {count: null, seed: 0}   # null: enumerate every encoding; N: a seeded sample
        datasets: [digits]
        data:
          digits: {source: {callable: "digits_data:proxy_batch"}, num_classes: 10}
        labels:
          digits: examples/digits/labels.csv

`register_config_spaces` registers each such entry in the space registry under its config name.
It also records the entries in the environment (`PARZC_SPACES`), so that every process started
from this one, Snakemake's script jobs and Slurm jobs included, registers the same spaces when it
first looks one up (`get_space`, `space_names`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from parzc.spaces.base import ACCURACY_COLUMNS, DatasetInfo, InvalidArchError, SearchSpace
from parzc.spaces.choice import Choices, ChoiceSpace

if TYPE_CHECKING:
    from torch import nn

    from parzc.proxies.inputs import ProxyInputs
    from parzc.spaces.graph import CellGraph

ENV_VAR = "PARZC_SPACES"


class SpaceSourceError(ValueError):
    """A `source` that does not import, or imports something that is not a space."""


class ConfiguredSpace(SearchSpace):
    """A user's space as the pipeline sees it: candidates numbered by position, labels from
    files, datasets (and their proxy inputs) from the config.

    `arch_id` i is the i-th candidate: the i-th encoding in enumeration order, or the i-th
    distinct draw of the seeded sample, so a larger sample keeps every earlier arch_id.
    """

    ground_truth = False

    def __init__(self, name: str, entry: Mapping[str, Any], user: Any) -> None:
        from parzc.proxies.inputs import ProxyInputs

        self.name = name
        self.entry = entry
        self.user = user
        self.choices = Choices(user.choices) if isinstance(user, ChoiceSpace) else None
        self.inputs: dict[str, ProxyInputs] = {}
        self.datasets = {}
        for dataset in entry["datasets"]:
            data = entry.get("data", {}).get(dataset)
            if data is None:
                raise SpaceSourceError(
                    f"spaces/{name}/data/{dataset}: a user's space needs the proxy inputs of "
                    "each dataset (source, num_classes)"
                )
            self.inputs[dataset] = ProxyInputs.from_config(data)
            self.datasets[dataset] = DatasetInfo(
                dataset,
                int(data["num_classes"]),
                int(data.get("input_size") or 0),
                f"proxy inputs from {data['source']}",
            )
        if not self.choices:  # a SearchSpace subclass reads its datasets from the config
            user.datasets = self.datasets
        self.max_layers = int(getattr(user, "max_layers", 0) or 0)
        self.graph_vocabulary = tuple(getattr(user, "graph_vocabulary", ()))
        self.graph_nodes = int(getattr(user, "graph_nodes", 0))
        self.labels_files = {d: Path(p) for d, p in entry.get("labels", {}).items()}
        self.label_range = tuple(entry.get("label_range", (0.0, 100.0)))

    # -- encodings and networks ----------------------------------------------------------------

    def decode(self, arch: str) -> Any:
        return self.choices.decode(arch) if self.choices else self.user.decode(arch)

    def normalise(self, arch: str) -> str:
        return self.choices.normalise(arch) if self.choices else self.user.normalise(arch)

    def build(self, arch: str, dataset: str) -> nn.Module:
        num_classes = self.dataset(dataset).num_classes
        if self.choices:
            return self.user.build(self.choices.decode(arch), num_classes)
        return self.user.build(arch, dataset)

    def onehot(self, arch: str) -> np.ndarray:
        return self.choices.onehot(arch) if self.choices else self.user.onehot(arch)

    def neighbours(self, arch: str) -> list[str]:
        return self.choices.neighbours(arch) if self.choices else self.user.neighbours(arch)

    def canonical(self, arch: str) -> str:
        if self.choices:
            return self.choices.encode(self.user.canonical(self.choices.decode(arch)))
        return self.user.canonical(arch)

    def cell_graph(self, arch: str) -> CellGraph:
        return self.user.cell_graph(arch)

    # -- candidates and labels -----------------------------------------------------------------

    def candidates(self) -> list[str]:
        """The candidate encodings, in arch_id order."""
        spec = self.entry.get("candidates", {})
        count, seed = spec.get("count"), spec.get("seed", 0)
        source = self.choices or self.user
        if count is None:
            return [self.normalise(a) for a in source.enumerate()]
        return source.sample(count, seed)

    @cached_property
    def _archs(self) -> pl.DataFrame:
        encodings = self.candidates()
        first: dict[str, int] = {}
        for i, arch in enumerate(encodings):
            if first.setdefault(arch, i) != i:
                raise InvalidArchError(f"{self.name}: candidate {arch!r} is listed twice")
        network_of: dict[str, int] = {}
        network_ids = [network_of.setdefault(self.canonical(a), i) for i, a in enumerate(encodings)]
        return pl.DataFrame(
            {"arch_id": range(len(encodings)), "arch": encodings, "network_id": network_ids},
            schema={"arch_id": pl.Int32, "arch": pl.String, "network_id": pl.Int32},
        )

    def archs(self) -> pl.DataFrame:
        return self._archs

    def label_rows(self, dataset: str) -> pl.DataFrame:
        """The validated rows of the dataset's labels file (none without a file)."""
        from parzc.labels import no_label_rows, read_labels

        path = self.labels_files.get(dataset)
        return no_label_rows() if path is None else read_labels(path, self, self.label_range)

    def accuracy_table(self) -> pl.DataFrame:
        from parzc.labels import aggregate_labels

        frames = [aggregate_labels(self.label_rows(d), d) for d in self.datasets]
        table = pl.concat(frames) if frames else pl.DataFrame(schema=ACCURACY_COLUMNS)
        return table.select(*ACCURACY_COLUMNS, "n_labels", "n_failed").cast(ACCURACY_COLUMNS)


def load_source(source: str, python_path: list[str] | tuple[str, ...] = ()) -> Any:
    """An instance of the class (or the object) at "pkg.module:Name", with `python_path`
    prepended to sys.path."""
    from parzc.proxies.inputs import InputsError, import_object

    for folder in reversed(python_path):
        resolved = str(Path(folder).resolve())
        if resolved not in sys.path:
            sys.path.insert(0, resolved)
    try:
        obj = import_object(source, "space source")
    except InputsError as exc:
        raise SpaceSourceError(str(exc)) from None
    if isinstance(obj, type):
        if not issubclass(obj, ChoiceSpace | SearchSpace):
            raise SpaceSourceError(
                f"space source {source!r} is {obj.__name__}, neither a parzc ChoiceSpace nor a "
                "SearchSpace subclass"
            )
        obj = obj()
    elif not isinstance(obj, ChoiceSpace | SearchSpace):
        raise SpaceSourceError(f"space source {source!r} is not a ChoiceSpace or SearchSpace")
    if isinstance(obj, ChoiceSpace):
        try:
            Choices(obj.choices)
        except ValueError as exc:
            raise SpaceSourceError(f"space source {source!r}: {exc}") from None
    return obj


def configure_space(name: str, entry: Mapping[str, Any]) -> ConfiguredSpace:
    """The configured space of one `spaces:` entry that has a `source`."""
    return ConfiguredSpace(name, entry, load_source(entry["source"], entry.get("python_path", [])))


def register_config_spaces(spaces: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Register every entry of a config's `spaces` that names a `source`; returns their names.

    A name that a built-in space has is an error; registering the same entry again is not.
    """
    from parzc.spaces import BUILTIN_SPACES, SPACES

    recorded = json.loads(os.environ.get(ENV_VAR, "{}"))
    names = []
    for name, entry in spaces.items():
        if "source" not in entry:
            continue
        if name in BUILTIN_SPACES:
            raise SpaceSourceError(
                f"spaces/{name}: {name!r} is a built-in space; give your space another name"
            )
        space = configure_space(name, entry)
        SPACES.replace(name, lambda space=space: space)
        recorded[name] = entry
        names.append(name)
    os.environ[ENV_VAR] = json.dumps(recorded, sort_keys=True, default=str)
    # candidate orders cached for an earlier registration of these names are stale (sharding
    # imports this package, so it is only looked up, never imported, here)
    sharding = sys.modules.get("parzc.sharding")
    if names and hasattr(sharding, "arch_order"):
        sharding.arch_order.cache_clear()
    return names


def register_recorded_spaces() -> None:
    """Register the spaces a parent process recorded in the environment (see module doc) that
    are not registered yet."""
    from parzc.spaces import SPACES

    recorded = json.loads(os.environ.get(ENV_VAR, "{}"))
    missing = {name: entry for name, entry in recorded.items() if name not in SPACES}
    if missing:
        register_config_spaces(missing)
