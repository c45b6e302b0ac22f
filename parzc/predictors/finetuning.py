"""What `fusion` uses around fine-tuning: the pretraining objective kept while fine-tuning, ridge
probes on a member's pretrained embedding, the interpolation of fine-tuned weights back towards
the pretrained ones, CPU copies of a member's weights, and the minibatches and row selection of
its training loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import Ridge
from torch import Tensor, nn

from parzc.predictors.fusion_net import FusionNet
from parzc.predictors.torch_base import seeded


def rows(inputs: dict[str, tuple[Tensor, ...]], idx: Tensor) -> dict[str, tuple[Tensor, ...]]:
    """The rows `idx` of every branch's input tensors."""
    return {name: tuple(t[idx] for t in parts) for name, parts in inputs.items()}


@dataclass
class AuxiliaryTask:
    """A second objective kept during fine-tuning: `weight` x `loss_fn(forward(x), y)` on a
    random minibatch of `batch_size` rows of (`inputs`, `target`) per step."""

    inputs: dict[str, tuple[Tensor, ...]]
    target: Tensor
    forward: Callable[[dict[str, tuple[Tensor, ...]]], Tensor]
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    weight: float
    batch_size: int

    def loss(self, gen: torch.Generator) -> Tensor:
        n = self.target.shape[0]
        idx = torch.randperm(n, generator=gen)[: self.batch_size].to(self.target.device)
        return self.weight * self.loss_fn(self.forward(rows(self.inputs, idx)), self.target[idx])


@dataclass
class RidgeProbe:
    """A ridge regression on the embedding of a member before fine-tuning (`encoder`): the
    embedding is standardised by the training rows' `mean` and `std`, and `weights` map it to
    the training labels' ranks. It keeps what pretraining learned, which fine-tuning on a few
    labels may overwrite (linear probing next to fine-tuning, as LP-FT argues)."""

    encoder: FusionNet
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray

    @classmethod
    def fit(
        cls,
        encoder: FusionNet,
        inputs: dict[str, tuple[Tensor, ...]],
        target: np.ndarray,
        alpha: float,
        seed: int,
    ) -> RidgeProbe:
        """Fit on the training rows' prepared `inputs` and their `target` with penalty `alpha`."""
        features = embedded(encoder, inputs, seed)
        mean, std = features.mean(axis=0), features.std(axis=0) + 1e-6
        # centred columns: no intercept needed, and the target's mean does not move the ranking
        ridge = Ridge(alpha=alpha, fit_intercept=False).fit((features - mean) / std, target)
        return cls(encoder, mean, std, ridge.coef_)

    def standardised(self, inputs: dict[str, tuple[Tensor, ...]], seed: int) -> np.ndarray:
        """The encoder's embedding of prepared `inputs`, standardised as the probe sees it."""
        return (embedded(self.encoder, inputs, seed) - self.mean) / self.std

    def scores(self, inputs: dict[str, tuple[Tensor, ...]], seed: int) -> np.ndarray:
        """The probe's scores of prepared `inputs` (higher is better)."""
        return self.standardised(inputs, seed) @ self.weights


def embedded(encoder: FusionNet, inputs: dict[str, tuple[Tensor, ...]], seed: int) -> np.ndarray:
    """`encoder.embedding` of prepared `inputs`, its Bayesian weights (if any) drawn with `seed`."""
    device = next(encoder.parameters()).device
    with torch.no_grad(), seeded(seed, device):
        return encoder.embedding(inputs).double().cpu().numpy()


def cpu_state(module: nn.Module) -> dict[str, Tensor]:
    """A copy of `module`'s state on the CPU (what a saved fit keeps)."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def interpolated(
    pretrained: dict[str, Tensor], finetuned: dict[str, Tensor], share: float
) -> dict[str, Tensor]:
    """A member's weights `share` x pretrained + (1 - share) x fine-tuned (WiSE-FT's weight-space
    ensemble); tensors that are not floating point (counters) are the fine-tuned ones."""
    return {
        name: share * pretrained[name].to(value) + (1 - share) * value
        if value.is_floating_point()
        else value
        for name, value in finetuned.items()
    }


def minibatches(n: int, batch_size: int, gen: torch.Generator) -> list[Tensor]:
    """One epoch's row indices: all `n` rows at once if they fit one batch, else a permutation
    drawn from `gen` split into batches of `batch_size`."""
    if n <= batch_size:
        return [torch.arange(n)]
    perm = torch.randperm(n, generator=gen)
    return list(perm.split(batch_size))
