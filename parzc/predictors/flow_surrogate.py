"""FGP's flow surrogate: a label-free vector that records how information flows through a cell.

Fixed random vectors are propagated through the cell graph, as a forward pass would carry
activations: a node with predecessors holds tanh(W_op @ sum of its predecessors' states), a node
without holds tanh(W_op @ x0), with one fixed random matrix W_op per operation and one random
start x0. The forward part of the surrogate is the sum of the states of the nodes without
successors (the cell's outputs); the backward part propagates the same way against the links
(fresh matrices), as gradients flow, and sums the nodes without predecessors. An encoder
pretrained to reconstruct it has to learn which operation feeds which along every path (Kim,
Hwang and Shin, "Learning to Flow from Generative Pretext Tasks for Neural Architecture
Encoding", NeurIPS 2025).
"""

from __future__ import annotations

import numpy as np

SURROGATE_DIM = 32  # per direction


def _propagate(
    ops: np.ndarray, links: np.ndarray, weights: np.ndarray, start: np.ndarray
) -> np.ndarray:
    """(n, N, d) node states after the flow has reached every node of each DAG."""
    n, nodes = ops.shape
    has_input = links.any(axis=1)  # [b, j]: some i feeds j
    state = np.zeros((n, nodes, start.shape[0]))
    for _ in range(nodes):
        incoming = np.einsum("bij,bid->bjd", links, state)
        source = np.where(has_input[..., None], incoming, start)
        updated = np.zeros_like(state)
        for op in np.unique(ops):
            at = ops == op
            updated[at] = np.tanh(source[at] @ weights[op].T)
        if np.array_equal(updated, state):
            break
        state = updated
    return state


def flow_surrogate(
    ops: np.ndarray, adjacency: np.ndarray, vocabulary: int, seed: int = 0
) -> np.ndarray:
    """(n, 2 * SURROGATE_DIM) forward then backward surrogate of each cell graph (padding nodes,
    op 0, carry nothing); deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    links = (adjacency > 0).astype(np.float64)
    real = ops > 0
    parts = []
    for flow_links in (links, links.transpose(0, 2, 1)):
        weights = rng.standard_normal((vocabulary, SURROGATE_DIM, SURROGATE_DIM))
        weights /= np.sqrt(SURROGATE_DIM)
        weights[0] = 0.0
        start = rng.standard_normal(SURROGATE_DIM)
        state = _propagate(ops, flow_links, weights, start)
        ends = real & ~flow_links.any(axis=2)  # no link out in this direction
        parts.append((state * ends[..., None]).sum(axis=1))
    return np.concatenate(parts, axis=1)
