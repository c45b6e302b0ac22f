"""Network-level proxies: one scalar per network."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from parzc.proxies.counting import model_params
from parzc.proxies.faults import ProxyFault
from parzc.registry import Registry

if TYPE_CHECKING:
    from parzc.proxies.passes import PassData

CORR_K = 1e-5  # the offset k of jacov and epe_nas
ZEN_EPS = 1e-6  # added inside Zen-NAS logarithms


@dataclass(frozen=True)
class NetworkProxy:
    fn: Callable[[PassData], float]
    needs: frozenset[str]


NETWORK_PROXIES: Registry[NetworkProxy] = Registry("network proxy")


def network_proxy(name: str, *needs: str) -> Callable:
    def decorator(fn: Callable[[PassData], float]) -> Callable[[PassData], float]:
        NETWORK_PROXIES.register(name)(NetworkProxy(fn, frozenset(needs)))
        return fn

    return decorator


def row_correlation(j: np.ndarray, degenerate: float) -> np.ndarray:
    """Pearson correlation of the rows of j; rows with zero variance get `degenerate` everywhere
    in their row and column (the diagonal included) instead of NaN."""
    centred = j - j.mean(1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1)
    ok = norms > 0
    unit = centred[ok] / norms[ok, None]
    corr = np.full((len(j), len(j)), degenerate)
    corr[np.ix_(ok, ok)] = unit @ unit.T
    return corr


@network_proxy("ntk_alignment", "sample_kernel")
def ntk_alignment(d: PassData) -> float:
    """<Kc, Yc> / (||Kc|| ||Yc||), Kc = K - mean(K), Yc = Y - mean(Y) (Frobenius): how far the
    empirical NTK K of the batch (K_nm = <df_n/dW, df_m/dW> over the Conv2d/Linear weights, f_n
    the sum of example n's outputs, each example forward alone, batch 1, train-mode BN) lines up
    with its labels (Y_nm = 1 for two examples of one class, else 0). Kernel-target alignment,
    Cristianini et al., NeurIPS 2001; as a zero-cost proxy, the label-gradient alignment of Mok et
    al., "Demystifying the Neural Tangent Kernel from a Practical Perspective", CVPR 2022.
    """
    labels = d.labels.cpu().numpy()
    target = (labels[:, None] == labels[None, :]).astype(np.float64)
    kernel = d.sample_kernel.cpu().numpy()
    kc, tc = kernel - kernel.mean(), target - target.mean()
    if not np.any(tc):
        raise ProxyFault("every example of the batch has one class: no label kernel to align")
    if not np.any(kc):
        raise ProxyFault("the NTK is constant over the batch (e.g. no weight gradient)")
    return float((kc * tc).sum() / (np.linalg.norm(kc) * np.linalg.norm(tc)))


@network_proxy("jacov", "jacobian")
def jacov(d: PassData) -> float:
    """-sum_i [log(v_i + k) + 1/(v_i + k)], v = eig(corr(J)), k = 1e-5, J_n = d sum f(x)/d x_n.

    An example whose Jacobian is constant (e.g. the output ignores the input) gets correlation 0
    with everything, itself included: a zero eigenvalue, the worst (most negative) finite score.
    Mellor et al., "Neural Architecture Search without Training", arXiv v1 2020 / ICML 2021.
    """
    v = np.linalg.eigvalsh(row_correlation(d.jacobian.double().cpu().numpy(), 0.0))
    return float(-np.sum(np.log(v + CORR_K) + 1.0 / (v + CORR_K)))


@network_proxy("epe_nas", "jacobian")
def epe_nas(d: PassData) -> float:
    """Per-class Jacobian correlation score, as in NASLib / zero-cost-nas.

    For each class c present: s_c = sum_ij log(|corr(J_c)|_ij + k), k = 1e-5 (rows of J_c: the
    Jacobians of the class's examples; a lone example gives log(1 + k)). With <= 100 classes
    score = sum_c |s_c|; otherwise s_c /= n_c and score = sum_{c,c'} |s_c - s_c'| / #classes.
    Constant Jacobian rows count as perfectly correlated (the worst score), not NaN.
    Lopes et al., "EPE-NAS: Efficient Performance Estimation Without Training", ICANN 2021.
    """
    j, labels = d.jacobian.double().cpu().numpy(), d.labels.cpu().numpy()
    s = []
    for c in np.unique(labels):
        corr = row_correlation(j[labels == c], 1.0)
        s.append(np.log(np.abs(corr) + CORR_K).sum() / (len(corr) if d.num_classes > 100 else 1))
    s_arr = np.array(s)
    if d.num_classes <= 100:
        return float(np.abs(s_arr).sum())
    return float(np.abs(s_arr[:, None] - s_arr[None, :]).sum() / len(s_arr))


@network_proxy("nwot", "codes")
def nwot(d: PassData) -> float:
    """log|det K|, K = c c^T + (1-c)(1-c)^T, c the binary codes (output > 0) of all ReLU-like
    activation modules (ReLU, ReLU6, LeakyReLU, GELU) concatenated, one row per example.

    A singular K (e.g. identical codes) is NaN. Mellor et al., "Neural Architecture Search
    without Training", ICML 2021 (NASWOT).
    """
    sign, logdet = np.linalg.slogdet(d.code_kernel.cpu().numpy())
    if sign <= 0:
        raise ProxyFault("singular NASWOT kernel: activation codes are linearly dependent")
    return float(logdet)


@network_proxy("swap", "patterns")
def swap(d: PassData) -> float:
    """Distinct sample-wise activation patterns: the number of different binary vectors
    (output > 0 for each example of the batch) among all units of all ReLU-like activation
    modules (ReLU, ReLU6, LeakyReLU, GELU), in the data pass (the network as initialised,
    train-mode BN). At most 2^N for a batch of N. SWAP's code re-draws Gaussian weights and
    hooks only the ReLUs of convolutional feature maps; its regularised variant, which weighs the
    count by a Gaussian of the parameter count with per-space constants, is left to the learned
    predictors (params is a proxy of its own). Peng et al., "SWAP-NAS: Sample-Wise Activation
    Patterns for Ultra-fast NAS", ICLR 2024.
    """
    return float(d.distinct_patterns)


@network_proxy("zen", "zen")
def zen(d: PassData) -> float:
    """log(E_n ||f(x_n) - f(x_n + 0.01 eps_n)||_1 + 1e-6) + sum_BN log(sigma_BN + 1e-6).

    As Zen-NAS: Conv/Linear weights re-drawn from N(0, 1) (biases 0, norm layers 1/0) for the
    pass only; x, eps ~ N(0, 1) shaped like the batch (seeded); f = the pre-global-pooling
    feature map (the input of the last AdaptiveAvgPool2d; else of the last Linear); BN in train
    mode; sigma_BN = sqrt(mean_c Var_batch(input_c)) of each BatchNorm call on x (the batch
    statistic that Zen-NAS reads back from running_var). Lin et al., "Zen-NAS", ICCV 2021.
    """
    return math.log(d.zen_diff + ZEN_EPS) + d.zen_bn_log_std


@network_proxy("meco", "meco")
def meco(d: PassData) -> float:
    """sum over module calls of lambda_min(corr(F)): F the call's output for the batch's first
    example, rows = its first dimension (channels of a conv map, tokens of a sequence), with the
    example alone in the network (batch 1, train-mode BN); every module counts, the model itself
    included, and every call of a reused one; non-finite correlations count as 0, so an output
    with one position per row adds 0. Jiang et al., "MeCo: Zero-Shot NAS with One Data and
    Single Forward Pass via Minimum Eigenvalue of Correlation", NeurIPS 2023 (its NAS-Bench-201
    correlation script: one real image, every module hooked).
    """
    return float(np.sum(d.meco_eigenvalues))


@network_proxy("az_expressivity", "blocks")
def az_expressivity(d: PassData) -> float:
    """sum over the feature blocks (`parzc.proxies.passes.find_blocks`) of the entropy of the
    normalised eigenvalues of the channel covariance of the block's output over the batch's
    examples and positions, in the blocks pass (the network as initialised, train-mode BN). Lee
    & Ham, "AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search", CVPR 2024
    (its NB201 code: the stem and every cell), without its Kaiming re-initialisation.
    """
    if not len(d.block_entropies):
        raise ProxyFault("no feature block gives a 3-D or 4-D output")
    return float(np.sum(d.block_entropies))


@network_proxy("az_progressivity", "blocks")
def az_progressivity(d: PassData) -> float:
    """min over consecutive feature blocks of the increase of az_expressivity's entropy. AZ-NAS."""
    if len(d.block_entropies) < 2:
        raise ProxyFault(f"{len(d.block_entropies)} feature block(s): progressivity needs 2")
    return float(np.min(np.diff(d.block_entropies)))


@network_proxy("az_trainability", "blocks")
def az_trainability(d: PassData) -> float:
    """mean over consecutive feature blocks of 2 - s - 1 / (s + 1e-6), s the largest singular
    value of the channel cross-covariance of the gradient at the earlier block's output and a
    Rademacher gradient at the later one (the backward map's gain; 0 at s = 1, lower otherwise);
    pairs whose later output does not depend on the earlier are left out. A block that passes
    the gradient through unchanged makes it NaN (ranked last, as AZ-NAS's -inf). AZ-NAS.
    """
    gains = d.block_gains
    if np.isinf(gains).any():
        raise ProxyFault("a feature block passes its gradient through unchanged")
    gains = gains[np.isfinite(gains)]
    if not len(gains):
        raise ProxyFault("no pair of consecutive feature blocks where one depends on the other")
    return float(np.mean(2 - gains - 1 / (gains + 1e-6)))


@network_proxy("params")
def params(d: PassData) -> float:
    """Number of parameters of the whole model (BN/LayerNorm included)."""
    return float(model_params(d.model))


@network_proxy("flops", "shapes")
def flops(d: PassData) -> float:
    """Sum of the per-layer multiply-accumulates per example."""
    return float(sum(d.flops))
