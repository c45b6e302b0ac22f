"""A benchmark space's labelled architectures as a FeatureMatrix of their encodings alone: the
one-hot codes and cell graphs, no proxies and no store. For predictors that need no extraction
(trees on the one-hot code or the graphs' path features)."""

from __future__ import annotations

import numpy as np
import polars as pl

from parzc.spaces import get_space
from parzc.store.matrix import FeatureMatrix


def encoded_matrix(space_name: str, target: str) -> FeatureMatrix:
    """Every architecture of `space_name` labelled on `target`, in arch_id order, with its
    one-hot code, its cell graph (where the space has them) and its shipped accuracies."""
    space = get_space(space_name)
    table = space.accuracy_table().filter(pl.col("dataset") == target).sort("arch_id")
    if table.is_empty():
        raise ValueError(f"space {space_name!r} ships no labels for {target!r}")
    archs = table["arch"].to_list()
    graphs = [space.cell_graph(arch) for arch in archs] if space.graph_nodes else []
    n, ids = len(archs), table["arch_id"].to_numpy()
    return FeatureMatrix(
        space=space_name,
        dataset=target,
        target=target,
        arch_ids=ids,
        network_ids=ids,
        proxies=[],
        layerwise=np.zeros((n, 0, 0), dtype=np.float32),
        layerwise_raw=np.zeros((n, 0, 0)),
        aggregate_names=[],
        aggregates=np.zeros((n, 0)),
        onehot=np.stack([space.onehot(arch) for arch in archs]),
        val_acc=table["val_acc"].to_numpy(),
        test_acc=table["test_acc"].to_numpy(),
        graph_vocabulary=list(space.graph_vocabulary),
        graph_ops=np.stack([g.ops for g in graphs]) if graphs else None,
        graph_adjacency=np.stack([g.adjacency for g in graphs]) if graphs else None,
    )
