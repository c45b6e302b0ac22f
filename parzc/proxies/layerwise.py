"""Per-layer proxies: one raw value per Conv2d/Linear layer, weight tensors reduced by their mean.

Each entry declares the needs (see passes.py) it reads and maps the pass data to a float64
vector of length len(layers). W is the layer weight (bias excluded), L the mean cross-entropy of
the real batch with BN in train mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from parzc.proxies.counting import layer_params
from parzc.proxies.faults import ProxyFault
from parzc.registry import Registry

if TYPE_CHECKING:
    from torch import Tensor

    from parzc.proxies.passes import PassData


@dataclass(frozen=True)
class LayerProxy:
    fn: Callable[[PassData], np.ndarray]
    needs: frozenset[str]
    weight_mean: bool = False  # a per-weight quantity reduced by its mean over the weight tensor


LAYER_PROXIES: Registry[LayerProxy] = Registry("layer proxy")


def layer_proxy(name: str, *needs: str, weight_mean: bool = False) -> Callable:
    def decorator(fn: Callable[[PassData], np.ndarray]) -> Callable[[PassData], np.ndarray]:
        LAYER_PROXIES.register(name)(LayerProxy(fn, frozenset(needs), weight_mean))
        return fn

    return decorator


def per_layer(fn: Callable[..., Tensor], *tensor_lists: list[Tensor]) -> np.ndarray:
    """Apply fn to the float64 tensors of each layer; one host transfer for all layers."""
    import torch

    values = [fn(*(t.double() for t in ts)) for ts in zip(*tensor_lists, strict=True)]
    return torch.stack(values).cpu().numpy() if values else np.zeros(0)


@layer_proxy("grad_norm", "grad")
def grad_norm(d: PassData) -> np.ndarray:
    """||dL/dW||_2 (Frobenius norm of the weight gradient; already a scalar, no mean).

    Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021.
    """
    return per_layer(lambda g: g.norm(), d.grads)


@layer_proxy("snip", "grad", weight_mean=True)
def snip(d: PassData) -> np.ndarray:
    """mean |W * dL/dW|. Lee et al., "SNIP: Single-shot Network Pruning", ICLR 2019."""
    return per_layer(lambda w, g: (w * g).abs().mean(), d.weights, d.grads)


@layer_proxy("plain", "grad", weight_mean=True)
def plain(d: PassData) -> np.ndarray:
    """mean (W * dL/dW). Mozer & Smolensky 1989, as in Abdelfattah et al., ICLR 2021."""
    return per_layer(lambda w, g: (w * g).mean(), d.weights, d.grads)


@layer_proxy("grasp", "hessian", weight_mean=True)
def grasp(d: PassData) -> np.ndarray:
    """mean (-W * H g), g = dL/dW, H the Hessian of L w.r.t. all layer weights (not biases/BN).

    Hg = d(g_detached . g)/dW. Wang et al., "Picking Winning Tickets Before Training by
    Preserving Gradient Flow" (GraSP), ICLR 2020.
    """
    return per_layer(lambda w, hg: (-w * hg).mean(), d.weights, d.hess_grads)


@layer_proxy("fisher", "fisher")
def fisher(d: PassData) -> np.ndarray:
    """sum_c 0.5 * mean_n (sum_p a[n,c,p] * g[n,c,p])^2, a = layer output, g = dL/da.

    c: output channels (dim 1 of Conv2d outputs, last dim of Linear outputs), p: the remaining
    positions (spatial / tokens); summed over channels (and over calls of a reused layer).
    Turner et al., "BlockSwap", ICLR 2020; Theis et al. 2018.
    """
    return per_layer(lambda f: f, d.fisher)


@layer_proxy("synflow", "synflow", weight_mean=True)
def synflow(d: PassData) -> np.ndarray:
    """mean (|W| * dR/d|W|), R = sum f(1) of the linearised net (|params|, float64, batch 1).

    BN runs in eval mode with fresh statistics (mean 0, var 1). If R overflows, every layer is
    NaN. Tanaka et al., "Pruning neural networks without any data by iteratively conserving
    synaptic flow", NeurIPS 2020.
    """
    if not np.isfinite(d.synflow_output):
        raise ProxyFault(f"overflow: synflow output R = {d.synflow_output} in float64")
    return per_layer(lambda w, g: (w * g).mean(), d.synflow_weights, d.synflow_grads)


@layer_proxy("zico", "split_grads")
def zico(d: PassData) -> np.ndarray:
    """log sum_w mean_k |g_kw| / std_k g_kw over the weights w whose gradient varies, g_k =
    dL_k/dW on part k of the batch (GRADIENT_SPLITS parts, each its own train-mode forward),
    std over the parts (ddof 0); a layer none of whose gradients varies gives 0, as ZiCo adds
    nothing for it, so the layers sum to ZiCo's score. Li et al., "ZiCo: Zero-shot NAS via
    Inverse Coefficient of Variation on Gradients", ICLR 2023.
    """

    def layer(g: Tensor) -> Tensor:
        std = g.std(0, correction=0)
        varies = std > 0
        total = (g.abs().mean(0)[varies] / std[varies]).sum()
        return total.log() if total > 0 else total

    return per_layer(layer, d.split_grads)


@layer_proxy("gradsign", "sample_signs")
def gradsign(d: PassData) -> np.ndarray:
    """sum_w |sum_n sign(dL_n/dw)| over the layer's weights w, L_n the loss of example n of the
    batch alone (batch 1, train-mode BN; a zero gradient has sign 0), so the layers sum to
    GradSign's score: how far the examples' gradients agree in sign. Zhang & Jia, "GradSign:
    Model Performance Inference with Theoretical Insights", ICLR 2022.
    """
    return per_layer(lambda s: s.abs().sum(), d.sample_sign_sums)


@layer_proxy("meco", "meco")
def meco(d: PassData) -> np.ndarray:
    """lambda_min(corr(F)) of the layer's output F for the batch's first example alone (rows =
    its channels or tokens; batch 1, train-mode BN, no gradients), summed over the layer's
    calls: the Conv2d/Linear terms of the network-level meco, which adds every other module's
    (BN, activations, blocks). A Linear output of one value per row gives 0, as in MeCo. Jiang
    et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum Eigenvalue of
    Correlation", NeurIPS 2023.
    """
    return d.meco_layer_eigenvalues


@layer_proxy("l2_norm")
def l2_norm(d: PassData) -> np.ndarray:
    """||W||_2 (Frobenius norm of the weight). Abdelfattah et al., ICLR 2021 (NASLib)."""
    return per_layer(lambda w: w.norm(), d.weights)


@layer_proxy("params")
def params(d: PassData) -> np.ndarray:
    """weight.numel() + bias.numel()."""
    return np.array([layer_params(m) for _, m in d.layers], dtype=np.float64)


@layer_proxy("flops", "shapes")
def flops(d: PassData) -> np.ndarray:
    """Multiply-accumulates per example (bias ignored), summed over calls of the layer.

    Conv2d: out_h*out_w*out_c*(in_c/groups)*kh*kw; Linear: positions*in*out (tokens count).
    """
    return np.array(d.flops, dtype=np.float64)
