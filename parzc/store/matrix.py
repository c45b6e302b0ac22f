"""The training matrix that the store assembles and predictors consume, and its file format."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from parzc.io import write_atomic

MATRIX_FORMAT = 2  # 2: aligned layer slots and cell graphs
_TEXT = (
    "space",
    "dataset",
    "target",
    "proxies",
    "aggregate_names",
    "slot_proxies",
    "slot_names",
    "graph_vocabulary",
)


@dataclass
class FeatureMatrix:
    """Features and targets of `n` architectures of one space: proxies extracted on `dataset`,
    accuracies of `target`. Each arch carries the features of its canonical network.

    layerwise: float32 (n, n_proxies, max_layers); each proxy's per-layer vector min-max scaled
        within the architecture (a constant vector scales to zeros), zero-padded to max_layers.
    aggregates: float64 (n, len(aggregate_names)); raw per-layer sums ("<proxy>") and raw
        network-level proxies ("net:<proxy>"); NaN where a proxy failed.
    layerwise_raw: float64, same shape, the unscaled per-layer values (NaN and padding as 0).
    onehot: float32 (n, d) operation encoding, or None when not requested.
    network_ids: int32 (n,), the arch_id of each arch's canonical network (NB201: one of the
        9,445 Suite-Zero networks; other spaces: the arch itself).
    slots: float64 (n, len(slot_proxies), len(slot_names)) raw per-layer values of every
        stored layer proxy, aligned by role: slot s is the layer named slot_names[s] in every
        arch (NaN where the arch has no such layer or the value failed); None if not assembled.
    graph_ops, graph_adjacency: each arch's cell graph (`parzc.spaces.graph`): int16 (n, nodes)
        indices into graph_vocabulary and uint8 (n, nodes, nodes) links; None for spaces
        without cells.
    """

    space: str
    dataset: str
    target: str
    arch_ids: np.ndarray
    network_ids: np.ndarray
    proxies: list[str]
    layerwise: np.ndarray
    layerwise_raw: np.ndarray
    aggregate_names: list[str]
    aggregates: np.ndarray
    onehot: np.ndarray | None
    val_acc: np.ndarray
    test_acc: np.ndarray
    slot_proxies: list[str] = field(default_factory=list)
    slot_names: list[str] = field(default_factory=list)
    slots: np.ndarray | None = None
    graph_vocabulary: list[str] = field(default_factory=list)
    graph_ops: np.ndarray | None = None
    graph_adjacency: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.arch_ids)

    def save(self, path: str | Path) -> None:
        """Write the matrix as one .npz (arrays + a JSON header), atomically."""
        arrays = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in _TEXT and getattr(self, f.name) is not None
        }
        header = {name: getattr(self, name) for name in _TEXT} | {"format": MATRIX_FORMAT}

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, header=np.array(json.dumps(header)), **arrays)

        write_atomic(path, write)

    @classmethod
    def load(cls, path: str | Path) -> FeatureMatrix:
        """Read a matrix written by `save`; a file of another format is a clear error."""
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            if header.get("format") != MATRIX_FORMAT:
                raise ValueError(
                    f"{path}: feature-matrix format {header.get('format')} is not "
                    f"{MATRIX_FORMAT}; rerun the pipeline to reassemble it"
                )
            arrays = {name: z[name] for name in z.files if name != "header"}
        header.pop("format")
        return cls(**header, **{"onehot": None, **arrays})

    def digest(self) -> str:
        """A SHA-256 of every field: equal digests, equal matrices."""
        digest = hashlib.sha256(json.dumps({name: getattr(self, name) for name in _TEXT}).encode())
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in _TEXT and value is not None:
                digest.update(f"{f.name}:{value.dtype}:{value.shape}".encode())
                digest.update(np.ascontiguousarray(value).tobytes())
        return digest.hexdigest()

    def subset(self, mask_or_index: np.ndarray) -> FeatureMatrix:
        """Rows selected by a boolean mask or an index array, in that order."""
        sel = np.asarray(mask_or_index)
        return replace(
            self,
            **{
                f.name: getattr(self, f.name)[sel]
                for f in fields(self)
                if f.name not in _TEXT and getattr(self, f.name) is not None
            },
        )

    def unlabelled(self) -> FeatureMatrix:
        """The same architectures with NaN accuracies: features a predictor may pretrain on."""
        return replace(
            self, val_acc=np.full(len(self), np.nan), test_acc=np.full(len(self), np.nan)
        )
