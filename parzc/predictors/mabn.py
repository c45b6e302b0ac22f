"""MABN: the Mixer Architecture with Bayesian Network of ParZC (Dong et al. 2024).

Flattened layer-wise proxies -> Linear(input_dim, embed_dim) [+ Linear(onehot)] -> split into
embed_dim / patch_size tokens of width patch_size -> BayesianLinear patch embedding ->
`depth` MixerBlocks -> LayerNorm -> mean over tokens -> BayesianLinear head -> score.
The predictive mean and std over `mc_samples` stochastic forwards are score and uncertainty.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from parzc.predictors.base import PREDICTORS
from parzc.predictors.torch_base import TorchPredictor, seeded
from parzc.store.matrix import FeatureMatrix


class BayesianLinear(nn.Module):
    """Linear layer with a factorised Gaussian posterior over weight and bias.

    Every forward samples weight = mu + softplus(rho) * eps with fresh eps ~ N(0, 1) from the
    global torch RNG (in train and eval mode alike).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        prior_sigma: float = 1.0,
        rho_init: float = -5.0,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.prior_sigma = prior_sigma
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_rho = nn.Parameter(torch.full((out_features, in_features), rho_init))
        self.bias_mu = nn.Parameter(torch.empty(out_features))
        self.bias_rho = nn.Parameter(torch.full((out_features,), rho_init))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """mu initialised like nn.Linear."""
        nn.init.kaiming_uniform_(self.weight_mu, a=math.sqrt(5))
        bound = 1 / math.sqrt(self.in_features)
        nn.init.uniform_(self.bias_mu, -bound, bound)

    @property
    def weight_sigma(self) -> Tensor:
        return F.softplus(self.weight_rho)

    @property
    def bias_sigma(self) -> Tensor:
        return F.softplus(self.bias_rho)

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight_mu + self.weight_sigma * torch.randn_like(self.weight_mu)
        bias = self.bias_mu + self.bias_sigma * torch.randn_like(self.bias_mu)
        return F.linear(x, weight, bias)

    def kl(self) -> Tensor:
        """KL(N(mu, sigma^2) || N(0, prior_sigma^2)) summed over all weights and biases."""
        total = self.weight_mu.new_zeros(())
        for mu, sigma in ((self.weight_mu, self.weight_sigma), (self.bias_mu, self.bias_sigma)):
            ratio = (sigma**2 + mu**2) / (2 * self.prior_sigma**2)
            total = total + (math.log(self.prior_sigma) - torch.log(sigma) + ratio - 0.5).sum()
        return total

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class Mlp(nn.Module):
    """Linear -> GELU -> Linear."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class MixerBlock(nn.Module):
    """Pre-LayerNorm MLP-Mixer block on (batch, tokens, dim).

    The token-mixing MLP acts across tokens; with token_mixing=False the block has only the
    channel MLP (the published ParZC variant).
    """

    def __init__(
        self,
        num_tokens: int,
        dim: int,
        token_mlp_dim: int,
        channel_mlp_dim: int,
        token_mixing: bool = True,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim) if token_mixing else None
        self.token_mlp = Mlp(num_tokens, token_mlp_dim) if token_mixing else None
        self.norm2 = nn.LayerNorm(dim)
        self.channel_mlp = Mlp(dim, channel_mlp_dim)

    def forward(self, x: Tensor) -> Tensor:
        if self.token_mlp is not None:
            x = x + self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(self.norm2(x))


class MABN(nn.Module):
    """The MABN network; forward(layerwise_flat[, onehot]) -> scores of shape (batch,)."""

    def __init__(
        self,
        input_dim: int,
        onehot_dim: int = 0,
        embed_dim: int = 256,
        patch_size: int = 16,
        hidden_dim: int = 128,
        depth: int = 4,
        token_mlp_dim: int = 64,
        channel_mlp_dim: int = 512,
        token_mixing: bool = True,
        prior_sigma: float = 1.0,
    ) -> None:
        super().__init__()
        if embed_dim % patch_size:
            raise ValueError(f"embed_dim {embed_dim} is not a multiple of patch_size {patch_size}")
        self.num_tokens, self.patch_size = embed_dim // patch_size, patch_size
        self.input_proj = nn.Linear(input_dim, embed_dim)
        self.onehot_proj = nn.Linear(onehot_dim, embed_dim) if onehot_dim else None
        self.patch_embed = BayesianLinear(patch_size, hidden_dim, prior_sigma)
        block_args = (self.num_tokens, hidden_dim, token_mlp_dim, channel_mlp_dim, token_mixing)
        self.blocks = nn.Sequential(*(MixerBlock(*block_args) for _ in range(depth)))
        self.norm = nn.LayerNorm(hidden_dim)
        self.head = BayesianLinear(hidden_dim, 1, prior_sigma)

    def embed(self, x: Tensor, onehot: Tensor | None = None) -> Tensor:
        """The pooled token features (batch, hidden_dim) the head scores."""
        emb = self.input_proj(x)
        if self.onehot_proj is not None:
            emb = emb + self.onehot_proj(onehot)
        tokens = self.patch_embed(emb.view(-1, self.num_tokens, self.patch_size))
        return self.norm(self.blocks(tokens)).mean(dim=1)

    def forward(self, x: Tensor, onehot: Tensor | None = None) -> Tensor:
        return self.head(self.embed(x, onehot)).squeeze(-1)

    def kl(self) -> Tensor:
        """KL term of all Bayesian layers."""
        return sum((m.kl() for m in self.modules() if isinstance(m, BayesianLinear)), start=0.0)


@PREDICTORS.register("mabn")
@dataclass(kw_only=True, eq=False)
class MABNPredictor(TorchPredictor):
    """ParZC's MABN predictor with MC-sampled uncertainty (see the module doc).

    kl_weight > 0 adds kl_weight * KL / n_train to every batch loss. Predictions draw their
    `mc_samples` forwards from a torch RNG seeded with `eval_seed`, so they are reproducible;
    the uncertainty is None when mc_samples == 1.
    """

    name: ClassVar[str] = "mabn"

    embed_dim: int = 256
    patch_size: int = 16
    hidden_dim: int = 128
    depth: int = 4
    token_mlp_dim: int = 64
    channel_mlp_dim: int = 512
    token_mixing: bool = True
    prior_sigma: float = 1.0
    kl_weight: float = 0.0
    mc_samples: int = 8
    eval_seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mc_samples < 1:
            raise ValueError(f"mc_samples must be >= 1, got {self.mc_samples}")
        if self.embed_dim % self.patch_size:
            raise ValueError(
                f"embed_dim {self.embed_dim} is not a multiple of patch_size {self.patch_size}"
            )

    def build_model(self, input_dim: int, onehot_dim: int) -> nn.Module:
        return MABN(
            input_dim,
            onehot_dim,
            embed_dim=self.embed_dim,
            patch_size=self.patch_size,
            hidden_dim=self.hidden_dim,
            depth=self.depth,
            token_mlp_dim=self.token_mlp_dim,
            channel_mlp_dim=self.channel_mlp_dim,
            token_mixing=self.token_mixing,
            prior_sigma=self.prior_sigma,
        )

    def _regulariser(self, model: nn.Module, n_train: int) -> Callable[[], Tensor] | None:
        if self.kl_weight == 0:
            return None
        scale = self.kl_weight / n_train
        return lambda: scale * model.kl()

    def _forward_eval(self, model: nn.Module, inputs: list[Tensor]) -> tuple[Tensor, Tensor | None]:
        samples = torch.stack([model(*inputs) for _ in range(self.mc_samples)])
        std = samples.std(dim=0, correction=0) if self.mc_samples > 1 else None
        return samples.mean(dim=0), std

    def predict(self, data: FeatureMatrix) -> tuple[np.ndarray, np.ndarray | None]:
        model = self._model
        device = torch.device("cpu") if model is None else next(model.parameters()).device
        with seeded(self.eval_seed, device):
            return super().predict(data)
