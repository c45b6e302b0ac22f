"""The fusion predictor's cell-graph encoder: a graph transformer over a cell's operation nodes.

Which nodes attend to which is a registry option (`CELL_ATTENTION`), each after a published
encoder:
- `links`: a node, its predecessors and successors (PINAT);
- `hops`: every node, with a learned per-head bias per directed hop distance (Graphormer);
- `flow`: the nodes on a common path, i.e. ancestors and descendants (FlowerFormer's
  flow-aware global attention);
- `siblings`: per head one relation, predecessors / successors / nodes sharing a predecessor /
  nodes sharing a successor (NN-Former's adjacency-sibling attention).

With `flow_passes` every transformer layer is preceded by FlowerFormer's flow encode: nodes
updated one topological level after another, from their predecessors' current states (the
forward pass of the network), then in reverse from their successors' (the backward pass).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from parzc.registry import Registry

MAX_HOPS = 8  # `hops` attention: relations further than this share the "unrelated" bias
# which pairs of cell nodes may attend to each other: (B, N, N) adjacency -> (B, N, N) bool, or
# (B, R, N, N) for R relations, head h attending along relation h mod R
CELL_ATTENTION: Registry[Callable[[Tensor], Tensor]] = Registry("cell attention")


def _eye(adjacency: Tensor) -> Tensor:
    return torch.eye(adjacency.shape[-1], dtype=torch.bool, device=adjacency.device)


def reachability(adjacency: Tensor) -> Tensor:
    """(B, N, N) bool: node i reaches node j along one or more links."""
    links = (adjacency > 0).float()
    reach = links
    for _ in range(adjacency.shape[-1]):
        grown = ((reach + reach @ links) > 0).float()
        if torch.equal(grown, reach):
            break
        reach = grown
    return reach > 0


@CELL_ATTENTION.register("links")
def linked_nodes(adjacency: Tensor) -> Tensor:
    """A node, its predecessors and its successors."""
    links = adjacency > 0
    return links | links.transpose(1, 2) | _eye(adjacency)


CELL_ATTENTION.register("hops")(lambda adjacency: torch.ones_like(adjacency, dtype=torch.bool))


@CELL_ATTENTION.register("flow")
def common_path(adjacency: Tensor) -> Tensor:
    """A node and every node on a path through it: its ancestors and descendants."""
    reach = reachability(adjacency)
    return reach | reach.transpose(1, 2) | _eye(adjacency)


@CELL_ATTENTION.register("siblings")
def sibling_relations(adjacency: Tensor) -> Tensor:
    """(B, 4, N, N): predecessors, successors, co-children (a shared predecessor) and co-parents
    (a shared successor), each with the node itself."""
    links = (adjacency > 0).float()
    eye = _eye(adjacency)
    relations = (
        links.transpose(1, 2) > 0,
        links > 0,
        (links.transpose(1, 2) @ links) > 0,
        (links @ links.transpose(1, 2)) > 0,
    )
    return torch.stack([r | eye for r in relations], dim=1)


def hop_buckets(adjacency: Tensor, max_hops: int) -> Tensor:
    """(B, N, N) relation of node j to node i as a bucket: 0 itself, k in 1..max_hops when i
    reaches j in k links, max_hops + k when j reaches i in k links, 2 * max_hops + 1 otherwise
    (unrelated, or further than max_hops)."""
    links = (adjacency > 0).float()
    eye = _eye(adjacency)
    forward = torch.full(links.shape, 2 * max_hops + 1, dtype=torch.long, device=links.device)
    forward[:, eye] = 0
    backward = forward.clone()
    reach = eye.float().expand_as(links)
    for hops in range(1, max_hops + 1):
        reach = ((reach @ links) > 0).float()  # reachable in exactly `hops` links
        hit = reach > 0
        forward = torch.where(hit & (forward > max_hops), hops, forward)
        backward = torch.where(
            hit.transpose(1, 2) & (backward > max_hops), max_hops + hops, backward
        )
    return torch.where(forward <= max_hops, forward, backward)


def topological_levels(adjacency: Tensor) -> Tensor:
    """(B, N) long: each node's longest path from a node without predecessors (0 for those)."""
    links = adjacency > 0
    levels = torch.zeros(adjacency.shape[:2], dtype=torch.long, device=adjacency.device)
    for _ in range(adjacency.shape[-1]):
        from_preds = torch.where(links, levels.unsqueeze(2) + 1, 0).amax(dim=1)
        if torch.equal(from_preds, levels):
            break
        levels = from_preds
    return levels


@contextmanager
def mha_fastpath(enabled: bool) -> Iterator[None]:
    """Allow (or forbid) torch's fused multi-head-attention inference path within the block."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(enabled and before)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


class FlowPass(nn.Module):
    """One direction of FlowerFormer's flow encode: level by level in topological order, each
    node's state is updated by a GRU cell from the sum of its predecessors' current states."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.cell = nn.GRUCell(dim, dim)

    def forward(self, tokens: Tensor, adjacency: Tensor, levels: Tensor) -> Tensor:
        incoming = adjacency.float().transpose(1, 2)  # [b, j, i]: i feeds j
        node_levels = levels.flatten()
        for level in range(1, int(levels.max()) + 1):
            rows = torch.nonzero(node_levels == level).squeeze(1)  # the GRU runs on these only
            flat = tokens.flatten(0, 1)
            message = (incoming @ tokens).flatten(0, 1)[rows]
            tokens = flat.index_copy(0, rows, self.cell(message, flat[rows])).view_as(tokens)
        return tokens


class GraphEncoder(nn.Module):
    """Operation + node-index embeddings, `depth` pre-norm transformer layers whose attention
    follows `attention` (a CELL_ATTENTION name; `hops` adds a learned per-head bias for each
    directed hop distance, Graphormer's spatial encoding), then the mean over real nodes.
    With `flow_passes`, a forward and a backward `FlowPass` precede every layer."""

    def __init__(
        self,
        vocabulary: int,
        nodes: int,
        dim: int,
        depth: int,
        heads: int = 4,
        attention: str = "links",
        flow_passes: bool = False,
    ) -> None:
        super().__init__()
        self.op_embed = nn.Embedding(vocabulary, dim, padding_idx=0)
        self.pos_embed = nn.Parameter(torch.zeros(nodes, dim))
        nn.init.normal_(self.pos_embed, std=0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 2 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.heads = heads
        self.attention = CELL_ATTENTION.get(attention)
        self.hop_bias = nn.Embedding(2 * MAX_HOPS + 2, heads) if attention == "hops" else None
        self.flow = (
            nn.ModuleList(nn.ModuleList([FlowPass(dim), FlowPass(dim)]) for _ in range(depth))
            if flow_passes
            else None
        )

    def _attention_mask(self, ops: Tensor, adjacency: Tensor, buckets: Tensor | None) -> Tensor:
        """(B * heads, N, N) float mask: 0 (or the hop bias) where attention is allowed."""
        real = ops > 0
        allowed = self.attention(adjacency)
        if allowed.dim() == 3:
            allowed = allowed.unsqueeze(1)
        heads = torch.arange(self.heads, device=ops.device) % allowed.shape[1]
        # real nodes never attend to padding; padding attends to itself only (a query with
        # every key masked would give NaN)
        allowed = allowed[:, heads] & (real.unsqueeze(1) | _eye(adjacency)).unsqueeze(1)
        mask = torch.zeros(allowed.shape, device=ops.device).masked_fill(~allowed, float("-inf"))
        if self.hop_bias is not None:
            if buckets is None:
                buckets = hop_buckets(adjacency, MAX_HOPS)
            mask = mask + self.hop_bias(buckets).permute(0, 3, 1, 2)
        return mask.reshape(-1, *allowed.shape[2:])

    def forward(self, ops: Tensor, adjacency: Tensor, buckets: Tensor | None = None) -> Tensor:
        """`buckets`: `hop_buckets(adjacency, MAX_HOPS)`, which `hops` attention reads; pass it
        when the same cells are encoded again and again (computed here otherwise)."""
        real = ops > 0
        mask = self._attention_mask(ops, adjacency, buckets)
        tokens = self.op_embed(ops) + self.pos_embed
        # the inference fast path of nn.TransformerEncoder turns per-head float biases into NaN
        # (torch 2.13); the bias needs the regular path
        with mha_fastpath(self.hop_bias is None):
            if self.flow is None:
                tokens = self.layers(tokens, mask=mask)
            else:
                forward_levels = topological_levels(adjacency)
                backward_levels = topological_levels(adjacency.transpose(1, 2))
                for (ahead, back), layer in zip(self.flow, self.layers.layers, strict=True):
                    tokens = ahead(tokens, adjacency, forward_levels)
                    tokens = back(tokens, adjacency.transpose(1, 2), backward_levels)
                    tokens = layer(tokens, src_mask=mask)
        tokens = torch.where(real.unsqueeze(-1), self.norm(tokens), 0.0)
        return tokens.sum(dim=1) / real.sum(dim=1, keepdim=True).clamp(min=1)
