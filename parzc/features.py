"""The in-memory training matrix that the store assembles and predictors consume."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FeatureMatrix:
    """Features and targets of `n` architectures of one (space, dataset).

    layerwise: float32 (n, n_proxies, max_layers); each proxy's per-layer vector min-max scaled
        within the architecture (a constant vector scales to zeros), zero-padded to max_layers.
    aggregates: float64 (n, len(aggregate_names)); raw per-layer sums ("<proxy>") and raw
        network-level proxies ("net:<proxy>"); NaN where a proxy failed.
    layerwise_raw: float64, same shape, the unscaled per-layer values (NaN and padding as 0).
    onehot: float32 (n, d) operation encoding, or None when not requested.
    valid: bool (n,), the space's "valid architecture" flag (NB201: the 9,445 Suite-Zero cells).
    """

    space: str
    dataset: str
    arch_ids: np.ndarray
    proxies: list[str]
    layerwise: np.ndarray
    layerwise_raw: np.ndarray
    aggregate_names: list[str]
    aggregates: np.ndarray
    onehot: np.ndarray | None
    val_acc: np.ndarray
    test_acc: np.ndarray
    valid: np.ndarray

    def __len__(self) -> int:
        return len(self.arch_ids)

    def subset(self, mask_or_index: np.ndarray) -> FeatureMatrix:
        """Rows selected by a boolean mask or an index array, in that order."""
        sel = np.asarray(mask_or_index)
        return FeatureMatrix(
            space=self.space,
            dataset=self.dataset,
            arch_ids=self.arch_ids[sel],
            proxies=list(self.proxies),
            layerwise=self.layerwise[sel],
            layerwise_raw=self.layerwise_raw[sel],
            aggregate_names=list(self.aggregate_names),
            aggregates=self.aggregates[sel],
            onehot=None if self.onehot is None else self.onehot[sel],
            val_acc=self.val_acc[sel],
            test_acc=self.test_acc[sel],
            valid=self.valid[sel],
        )
