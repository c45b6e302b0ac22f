"""The training matrix that the store assembles and predictors consume, and its file format."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from parzc.io import write_atomic

MATRIX_FORMAT = 1
_TEXT = ("space", "dataset", "target", "proxies", "aggregate_names")


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

    def subset(self, mask_or_index: np.ndarray) -> FeatureMatrix:
        """Rows selected by a boolean mask or an index array, in that order."""
        sel = np.asarray(mask_or_index)
        return FeatureMatrix(
            space=self.space,
            dataset=self.dataset,
            target=self.target,
            arch_ids=self.arch_ids[sel],
            network_ids=self.network_ids[sel],
            proxies=list(self.proxies),
            layerwise=self.layerwise[sel],
            layerwise_raw=self.layerwise_raw[sel],
            aggregate_names=list(self.aggregate_names),
            aggregates=self.aggregates[sel],
            onehot=None if self.onehot is None else self.onehot[sel],
            val_acc=self.val_acc[sel],
            test_acc=self.test_acc[sel],
        )
