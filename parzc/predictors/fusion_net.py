"""The `fusion` predictor's network: its branches (a registry), the slot layouts, the late-fusion
network that scores their embeddings, and the losses its pretraining combines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from parzc.predictors.cell_encoder import GraphEncoder
from parzc.predictors.mabn import MABN, BayesianLinear
from parzc.registry import Registry

BRANCHES: Registry[Callable[..., nn.Module]] = Registry("branch")
SLOT_LAYOUTS: Registry[Callable[[np.ndarray], np.ndarray]] = Registry("slot layout")

SLOT_LAYOUTS.register("aligned")(lambda slots: slots)


@SLOT_LAYOUTS.register("packed")
def packed_slots(slots: np.ndarray) -> np.ndarray:
    """(n, proxies, slots) with each arch's present slots moved to the front, in slot order."""
    present = np.isfinite(slots).any(axis=1)
    order = np.argsort(~present, axis=1, kind="stable")
    packed = np.take_along_axis(slots, order[:, None, :], axis=2)
    keep = np.take_along_axis(present, order, axis=1)
    return np.where(keep[:, None, :], packed, np.nan)


class SlotMABN(nn.Module):
    """ParZC's MABN without its head over the flattened slot vector (values and present-mask):
    8 tokens of width 16, `depth` mixer blocks of width `dim`; the pooled tokens are the
    embedding."""

    def __init__(self, input_dim: int, dim: int, depth: int) -> None:
        super().__init__()
        self.mabn = MABN(
            input_dim,
            embed_dim=128,
            patch_size=16,
            hidden_dim=dim,
            depth=depth,
            token_mlp_dim=32,
            channel_mlp_dim=2 * dim,
        )

    def forward(self, values: Tensor) -> Tensor:
        return self.mabn.embed(values)


class AggregateMLP(nn.Module):
    """Linear -> GELU -> Linear over the z-scored signed-log aggregates and their NaN flags."""

    def __init__(self, input_dim: int, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(input_dim, dim), nn.GELU(), nn.Linear(dim, dim))

    def forward(self, values: Tensor) -> Tensor:
        return self.net(values)


BRANCHES.register("cell")(
    lambda shapes, dim, depth, cell_attention="links", cell_flow_passes=False, **_: GraphEncoder(
        shapes["vocabulary"],
        shapes["nodes"],
        dim,
        depth,
        attention=cell_attention,
        flow_passes=cell_flow_passes,
    )
)
BRANCHES.register("slots")(lambda shapes, dim, depth, **_: SlotMABN(shapes["slots"], dim, depth))
BRANCHES.register("aggregates")(
    lambda shapes, dim, depth, **_: AggregateMLP(shapes["aggregates"], dim)
)


class FusionNet(nn.Module):
    """Branch embeddings concatenated -> Bayesian MLP head -> score.

    With `branch_outputs` > 0 each branch also has a linear head of that many outputs on its own
    embedding, and with `surrogate_outputs` > 0 the cell branch a linear head of that many
    (`pretraining_outputs`): the targets it reconstructs (the flow surrogate first, hence the
    name, then the slot statistics), used by pretraining only. `branch_options` go to every branch's
    factory."""

    def __init__(
        self,
        branches: list[str],
        shapes: dict[str, int],
        dim: int,
        depth: int,
        branch_outputs: int = 0,
        surrogate_outputs: int = 0,
        **branch_options: Any,
    ) -> None:
        super().__init__()
        self.names = list(branches)
        self.branches = nn.ModuleList(
            BRANCHES.get(b)(shapes, dim, depth, **branch_options) for b in branches
        )
        self.hidden = BayesianLinear(dim * len(branches), dim)
        self.act = nn.GELU()
        self.out = BayesianLinear(dim, 1)
        self.branch_heads = nn.ModuleList(
            nn.Linear(dim, branch_outputs) for _ in branches if branch_outputs > 0
        )
        self.surrogate_head = nn.Linear(dim, surrogate_outputs) if surrogate_outputs else None

    def _embeddings(self, inputs: dict[str, tuple[Tensor, ...]]) -> list[Tensor]:
        return [
            branch(*inputs[name]) for name, branch in zip(self.names, self.branches, strict=True)
        ]

    def embedding(self, inputs: dict[str, tuple[Tensor, ...]]) -> Tensor:
        """(n, dim x branches): the branch embeddings, concatenated (what the head scores)."""
        return torch.cat(self._embeddings(inputs), dim=1)

    def _score(self, parts: list[Tensor]) -> Tensor:
        return self.out(self.act(self.hidden(torch.cat(parts, dim=1)))).squeeze(-1)

    def forward(self, inputs: dict[str, tuple[Tensor, ...]]) -> Tensor:
        return self._score(self._embeddings(inputs))

    def pretraining_outputs(self, inputs: dict[str, tuple[Tensor, ...]]) -> Tensor:
        """(n, 1 + branches * branch_outputs + surrogate_outputs): the score, each branch
        head's outputs, then the cell branch's reconstructions."""
        parts = self._embeddings(inputs)
        heads = [head(part) for head, part in zip(self.branch_heads, parts, strict=False)]
        if self.surrogate_head is not None:
            heads.append(self.surrogate_head(parts[self.names.index("cell")]))
        return torch.cat([self._score(parts).unsqueeze(1), *heads], dim=1)


def score_and_columns_loss(
    loss_fn: Callable[[Tensor, Tensor], Tensor],
) -> Callable[[Tensor, Tensor], Tensor]:
    """For (n, 1 + k) outputs and targets: loss of column 0 plus the mean loss of the others."""

    def loss(pred: Tensor, target: Tensor) -> Tensor:
        total = loss_fn(pred[:, 0], target[:, 0])
        if pred.shape[1] > 1:
            columns = [loss_fn(pred[:, j], target[:, j]) for j in range(1, pred.shape[1])]
            total = total + torch.stack(columns).mean()
        return total

    return loss


def with_reconstruction(
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    ranked: int,
    blocks: list[tuple[int, float]],
) -> Callable[[Tensor, Tensor], Tensor]:
    """`loss_fn` on the first `ranked` columns plus, for each (width, weight) of `blocks` in
    the columns after them, weight x the mean squared error over its finite targets (a
    reconstruction target such as the flow surrogate; NaN: nothing to reconstruct)."""

    def loss(pred: Tensor, target: Tensor) -> Tensor:
        total = loss_fn(pred[:, :ranked], target[:, :ranked])
        start = ranked
        for width, weight in blocks:
            block_pred, block = pred[:, start : start + width], target[:, start : start + width]
            present = torch.isfinite(block)
            if present.any():
                error = nn.functional.mse_loss(block_pred[present], block[present])
                total = total + weight * error
            start += width
        return total

    return loss
