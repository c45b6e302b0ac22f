"""Shared passes over a model: each runs at most once and feeds every requested proxy needing it.

A proxy declares *needs* (strings); a pass *serves* some needs and runs only if a requested proxy
needs one of them. The passes:

- ``data``: one forward on the real batch (train-mode BN, dropout off) with hooks on Conv2d/Linear
  layers (MACs, fisher activations) and ReLU-like activations (NASWOT codes, SWAP's activation
  patterns), then, only if asked,
  ``autograd.grad`` of ``sum(logits)`` w.r.t. the input (``jacobian``) and of the mean
  cross-entropy w.r.t. layer weights (``grad``) and layer outputs (``fisher``); with ``hessian`` the
  weight gradient is taken with ``create_graph`` and ``H g`` follows from a second
  ``autograd.grad`` on the same graph (no extra forward); if that second step fails, only
  ``hessian``'s proxies become NaN. Attention runs on SDPA's math backend here, the one whose
  backward is itself differentiable, whatever the requested needs.
- ``synflow``: one float64 forward+backward of the linearised network (|params|, BN in eval mode
  with fresh statistics) on an all-ones input of batch 1.
- ``zen``: two no-grad forwards (train-mode BN) on seeded Gaussian inputs.
- ``meco``: one no-grad forward of the batch's first example alone (train-mode BN, batch 1)
  with a hook on every module, keeping the smallest eigenvalue of each call's feature
  correlation, and its sum over each Conv2d/Linear layer's calls.
- ``blocks``: one forward of the real batch (train-mode BN) keeping every feature block's output
  (`find_blocks`), then, from the last pair of consecutive blocks to the first, the gradient of
  the later output with respect to the earlier one for a Rademacher vector (AZ-NAS).
- ``split_grads``: the batch cut into ``GRADIENT_SPLITS`` equal parts, each forward and backward
  on its own (train-mode BN, the parts' own statistics), keeping each part's weight gradients.
- ``sample_grads``: every example of the batch forward and backward alone (batch 1, train-mode
  BN), keeping per weight the sum of the signs of the examples' loss gradients (GradSign) and
  the Gram matrix of their output sums' weight gradients, the empirical NTK.

Static proxies (l2_norm, params) need no pass. Parameters and buffers are swapped for the duration
of a pass and the original tensor objects put back afterwards, together with every module's
training flag and every parameter's ``requires_grad``, so the caller's model is left untouched
without any deep copy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd

from parzc.proxies.double_backward import ClosedFormDoubleBackward
from parzc.proxies.network import ZEN_EPS

LAYER_TYPES = (nn.Conv2d, nn.Linear)
# Activations whose output is > 0 exactly where their input is > 0: their codes are NASWOT's.
CODE_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU)
ZEN_ALPHA = 0.01  # Zen-NAS perturbation scale
GRADIENT_SPLITS = 2  # parts of the batch whose gradients ZiCo compares, as its NB201 code splits
GRAM_CHUNK = 1 << 20  # columns of a Gram matrix's rows cast to float64 at a time
RESOURCE_ERRORS = (torch.OutOfMemoryError, MemoryError)  # re-raised, never turned into NaN


@dataclass
class PassData:
    """Inputs of the passes and everything they produced (None where the pass did not run)."""

    model: nn.Module
    layers: list[tuple[str, nn.Module]]
    images: Tensor
    labels: Tensor
    num_classes: int
    seed: int
    # (outputs, targets) -> scalar loss of the gradient passes; None = cross-entropy on logits
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None
    grads: list[Tensor] | None = None  # dL/dW per layer
    hess_grads: list[Tensor] | None = None  # (H g) per layer, g = dL/dW
    fisher: list[Tensor] | None = None  # per-layer scalar (float64)
    jacobian: Tensor | None = None  # (N, D): d sum(logits) / d input
    code_kernel: Tensor | None = None  # (N, N) float64 NASWOT kernel
    distinct_patterns: int | None = None  # SWAP: distinct activation patterns over the batch
    flops: list[int] | None = None  # MACs per example per layer
    synflow_output: float | None = None
    synflow_weights: list[Tensor] | None = None  # |W| (float64)
    synflow_grads: list[Tensor] | None = None
    zen_diff: float | None = None
    zen_bn_log_std: float | None = None
    meco_eigenvalues: np.ndarray | None = None  # per module call: lambda_min of its correlation
    meco_layer_eigenvalues: np.ndarray | None = None  # per layer: the same, summed over its calls
    block_entropies: np.ndarray | None = None  # per feature block: its covariance spectrum entropy
    block_gains: np.ndarray | None = None  # per consecutive pair: the backward map's gain
    split_grads: list[Tensor] | None = None  # per layer (GRADIENT_SPLITS, *W.shape): dL_k/dW
    sample_sign_sums: list[Tensor] | None = None  # per layer: sum_n sign(dL_n/dW), example n alone
    sample_kernel: Tensor | None = None  # (N, N) float64: <df_n/dW, df_m/dW>, f_n its output sum
    failed: dict[str, str] = field(default_factory=dict)  # need -> reason

    @property
    def weights(self) -> list[Tensor]:
        return [m.weight.detach() for _, m in self.layers]

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """The gradient passes' loss: `loss_fn`, or the cross-entropy of logits."""
        return (self.loss_fn or F.cross_entropy)(outputs, targets)


def layer_macs(module: nn.Module, output: Tensor, batch: int) -> int:
    """Multiply-accumulates of one call per example (bias ignored), from the output shape."""
    per_output = output.numel() // batch
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return per_output * (module.in_channels // module.groups) * kh * kw
    return per_output * module.in_features


def find_blocks(model: nn.Module) -> list[nn.Module]:
    """The feature blocks AZ-NAS compares: `model.feature_blocks()` where the model defines it
    (parzc's benchmark networks: the stem and every cell, or every transformer block), else the
    model's direct children (those whose outputs are not 3-D or 4-D tensors are left out when
    the pass runs)."""
    blocks = getattr(model, "feature_blocks", None)
    return list(blocks()) if callable(blocks) else list(model.children())


def find_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every Conv2d / Linear module with its qualified name, in named_modules() order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LAYER_TYPES)]


def grad_or_zeros(out: Tensor, inputs: Sequence[Tensor], **kwargs) -> list[Tensor]:
    """autograd.grad with zeros for inputs that `out` does not depend on."""
    if not inputs or not out.requires_grad:
        return [torch.zeros_like(t) for t in inputs]
    grads = torch.autograd.grad(out, list(inputs), allow_unused=True, **kwargs)
    return [torch.zeros_like(t) if g is None else g for t, g in zip(inputs, grads, strict=True)]


@contextmanager
def pass_state(
    model: nn.Module,
    train: bool,
    param_fn: Callable[[nn.Parameter], Tensor] | None = None,
    buffer_fn: Callable[[nn.Module, str, Tensor], Tensor] | None = None,
) -> Iterator[None]:
    """Swap in new parameter data (param_fn(param)) and buffers (buffer_fn, default: clones).

    train=True: train mode with dropout off; train=False: eval mode. All parameters require grad.
    On exit the original tensors, modes and requires_grad flags are put back.
    """
    params = [(p, p.data, p.requires_grad) for p in model.parameters()]
    buffers = [(m, k, b) for m in model.modules() for k, b in m._buffers.items() if b is not None]
    modes = [(m, m.training) for m in model.modules()]
    try:
        with torch.no_grad():
            for p, _, _ in params:
                if param_fn is not None:
                    p.data = param_fn(p)
                p.requires_grad_(True)
            for m, k, b in buffers:
                m._buffers[k] = buffer_fn(m, k, b) if buffer_fn else b.clone()
        model.train(train)
        for m in model.modules():
            if isinstance(m, _DropoutNd):
                m.eval()
        yield
    finally:
        for p, data, req in params:
            p.data = data
            p.requires_grad_(req)
        for m, k, b in buffers:
            m._buffers[k] = b
        for m, training in modes:
            m.training = training


@contextmanager
def failures_recorded(d: PassData, needs: Iterable[str], step: str) -> Iterator[None]:
    """A failure of the block (out of memory excepted) marks `needs` failed in `d.failed`."""
    try:
        yield
    except RESOURCE_ERRORS:
        raise
    except Exception as e:  # a numerical/model fault makes the dependent proxies NaN
        for need in needs:
            d.failed.setdefault(need, f"{step} failed: {type(e).__name__}: {e}")


@contextmanager
def hooks(pairs: Sequence[tuple[nn.Module, Callable]]) -> Iterator[None]:
    """Register forward hooks for the duration of the block."""
    handles = [m.register_forward_hook(h) for m, h in pairs]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _fisher_term(module: nn.Module, act: Tensor, grad: Tensor) -> Tensor:
    """0.5 * sum_c mean_n (sum_{positions} a*g)^2 for one call; channels: dim 1 (conv), last."""
    prod = (act.detach() * grad.detach()).double()
    if isinstance(module, nn.Conv2d):
        prod = prod.movedim(1, -1)
    per_channel = prod.reshape(prod.shape[0], -1, prod.shape[-1]).sum(1)  # (N, C)
    return 0.5 * per_channel.pow(2).mean(0).sum()


PATTERN_WORD_BITS = 62  # examples per int64 word of a unit's activation pattern


def pattern_keys(codes: Tensor) -> Tensor:
    """(units, words) int64: each unit's column of the (N, units) boolean codes packed into
    ceil(N / 62) words, so equal patterns have equal rows."""
    words = []
    for start in range(0, codes.shape[0], PATTERN_WORD_BITS):
        chunk = codes[start : start + PATTERN_WORD_BITS].long()
        bits = torch.arange(chunk.shape[0], device=codes.device)
        words.append((chunk << bits[:, None]).sum(0))
    return torch.stack(words, 1)


def distinct_rows(keys: Tensor) -> Tensor:
    """The distinct rows of a 2-D integer tensor, in lexicographic order: a stable sort per
    column from the last (torch.unique(dim=0) is some 30x slower on a million rows)."""
    order = torch.arange(keys.shape[0], device=keys.device)
    for column in reversed(range(keys.shape[1])):
        order = order[torch.sort(keys[order, column], stable=True).indices]
    rows = keys[order]
    new = torch.ones(rows.shape[0], dtype=torch.bool, device=keys.device)
    new[1:] = (rows[1:] != rows[:-1]).any(1)
    return rows[new]


def data_pass(d: PassData, wanted: frozenset[str]) -> None:
    """Forward on the real batch; gradients only for the needs in `wanted`."""
    model, layers, n = d.model, d.layers, d.images.shape[0]
    acts: list[list[Tensor]] = [[] for _ in layers]
    flops = [0] * len(layers)
    kernel = torch.zeros(n, n, dtype=torch.float64, device=d.images.device)
    patterns: list[Tensor] = []

    def layer_hook(i: int) -> Callable:
        def hook(module: nn.Module, inputs: tuple, output: Tensor) -> Tensor | None:
            flops[i] += layer_macs(module, output, n)
            if "fisher" in wanted:
                acts[i].append(output)
                return output.clone()  # later in-place ops must not touch the captured tensor
            return None

        return hook

    def code_hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        codes = (output.detach() > 0).reshape(n, -1)
        if "patterns" in wanted:
            patterns.append(distinct_rows(pattern_keys(codes)))
        if "codes" in wanted:
            # float32 counts are exact up to 2**24 units per example; the kernel sums in float64
            c = codes.float() if codes.shape[1] < 2**24 else codes.double()
            s = c.sum(1).double()
            # c c^T + (1-c)(1-c)^T = 2 c c^T - s_i - s_j + M
            kernel.add_(2 * (c @ c.T).double() - s[:, None] - s[None, :] + c.shape[1])

    pairs = [(m, layer_hook(i)) for i, (_, m) in enumerate(layers)]
    activation_needs = wanted & {"codes", "patterns"}
    if activation_needs:
        pairs += [(m, code_hook) for m in model.modules() if isinstance(m, CODE_ACTIVATIONS)]
        if len(pairs) == len(layers):
            for need in activation_needs:
                d.failed[need] = "no ReLU-like activation module (nn.ReLU/ReLU6/LeakyReLU/GELU)"
    need_grad = bool(wanted & {"grad", "hessian", "fisher", "jacobian"})
    hessian = "hessian" in wanted
    closed_form = ClosedFormDoubleBackward() if hessian else None  # cheap H g, same first order
    with (
        pass_state(model, train=True),
        hooks(pairs),
        torch.set_grad_enabled(need_grad),
        sdpa_kernel(SDPBackend.MATH),  # the attention backend whose backward is differentiable
        closed_form or nullcontext(),
    ):
        x = d.images.detach().clone().requires_grad_("jacobian" in wanted)
        logits = model(x)
        d.flops = flops
        if "codes" in wanted and "codes" not in d.failed:
            d.code_kernel = kernel
        if "patterns" in wanted and "patterns" not in d.failed:
            d.distinct_patterns = int(distinct_rows(torch.cat(patterns)).shape[0])
        if "jacobian" in wanted:
            with closed_form.input_gradients_only() if closed_form else nullcontext():
                (jac,) = grad_or_zeros(logits.sum(), [x], retain_graph=True)
            d.jacobian = jac.detach().reshape(n, -1)
        if not wanted & {"grad", "hessian", "fisher"}:
            return
        loss = d.loss(logits, d.labels)
        weights = [m.weight for _, m in layers]
        flat_acts = [a for per_layer in acts for a in per_layer]
        grads = grad_or_zeros(loss, weights + flat_acts, create_graph=hessian, retain_graph=True)
        wgrads, agrads = grads[: len(weights)], iter(grads[len(weights) :])
        d.grads = [g.detach() for g in wgrads]
        if "fisher" in wanted:
            zero = torch.zeros((), dtype=torch.float64, device=x.device)
            d.fisher = [
                sum((_fisher_term(m, a, next(agrads)) for a in acts[i]), zero)
                for i, (_, m) in enumerate(layers)
            ]
        if hessian:
            with failures_recorded(d, ["hessian"], "Hessian-gradient product"):
                terms = [(g.detach() * g).sum() for g in wgrads if g.requires_grad]
                z = torch.stack(terms).sum() if terms else loss.new_zeros(())
                d.hess_grads = [g.detach() for g in grad_or_zeros(z, weights)]


def _fresh_double(module: nn.Module, name: str, buf: Tensor) -> Tensor:
    """Buffers for synflow: BN running stats reset (mean 0, var 1), floating buffers in float64."""
    if isinstance(module, _BatchNorm) and name == "running_mean":
        return torch.zeros_like(buf, dtype=torch.float64)
    if isinstance(module, _BatchNorm) and name == "running_var":
        return torch.ones_like(buf, dtype=torch.float64)
    return buf.to(torch.float64) if buf.is_floating_point() else buf.clone()


def synflow_pass(d: PassData, wanted: frozenset[str]) -> None:
    """R = sum(f(1)) of the network with |params| in float64 and eval-mode fresh-stat BN."""
    with pass_state(d.model, False, lambda p: p.double().abs(), _fresh_double), torch.enable_grad():
        x = torch.ones((1, *d.images.shape[1:]), dtype=torch.float64, device=d.images.device)
        r = d.model(x).sum()
        weights = [m.weight for _, m in d.layers]
        d.synflow_grads = [g.detach() for g in grad_or_zeros(r, weights)]
        d.synflow_weights = [w.detach() for w in weights]  # keeps the |W| data after restore
        d.synflow_output = float(r.detach())


def _gaussian_init(model: nn.Module, gen: torch.Generator) -> dict[nn.Parameter, Tensor]:
    """Zen-NAS initialisation: Conv/Linear weights ~ N(0, 1), biases 0, norm layers (1, 0)."""
    new: dict[nn.Parameter, Tensor] = {}
    for m in model.modules():
        if isinstance(m, LAYER_TYPES):
            new[m.weight] = torch.randn(
                m.weight.shape, generator=gen, device=m.weight.device, dtype=m.weight.dtype
            )
        if isinstance(m, (*LAYER_TYPES, _BatchNorm, nn.LayerNorm)) and m.bias is not None:
            new[m.bias] = torch.zeros_like(m.bias)
        if isinstance(m, (_BatchNorm, nn.LayerNorm)) and m.weight is not None:
            new[m.weight] = torch.ones_like(m.weight)
    return new


def zen_pass(d: PassData, wanted: frozenset[str]) -> None:
    """Zen-NAS: pre-pooling features of Gaussian x and x + alpha*eps, and BN batch stds on x.

    The network runs with Zen-NAS's Gaussian weights (swapped in, then restored) and train-mode
    BN. x, eps and the weights come from a torch.Generator seeded with `seed`. The features are
    the input of the last global pooling module (else of the last Linear, else the output).
    """
    gen = torch.Generator(device=d.images.device).manual_seed(d.seed)
    shape, opts = d.images.shape, {"device": d.images.device, "dtype": d.images.dtype}
    x = torch.randn(shape, generator=gen, **opts)
    eps = torch.randn(shape, generator=gen, **opts)
    gaussian = _gaussian_init(d.model, gen)
    pools = [m for m in d.model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    heads = [m for _, m in d.layers if isinstance(m, nn.Linear)]
    tap = pools[-1] if pools else (heads[-1] if heads else None)
    feats: list[Tensor] = []
    logs: list[Tensor] = []
    recording = [True]

    def tap_hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        feats.append(inputs[0].detach())

    def bn_hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
        if recording[0]:
            x = inputs[0].detach()
            dims = [i for i in range(x.dim()) if i != 1]
            # per-channel batch variance from the first two moments (two plain reductions are
            # ~5x faster than a multi-dimension var); the difference is taken in float64
            mean, square = x.mean(dims).double(), x.square().mean(dims).double()
            var = (square - mean.square()).clamp_min(0.0)
            logs.append(torch.log(var.mean().sqrt() + ZEN_EPS))

    pairs = [(m, bn_hook) for m in d.model.modules() if isinstance(m, _BatchNorm)]
    pairs += [(tap, tap_hook)] if tap is not None else []
    param_fn = lambda p: gaussian.get(p, p.data)  # noqa: E731
    with pass_state(d.model, True, param_fn), hooks(pairs), torch.no_grad():
        out = d.model(x)
        f1 = feats[-1] if feats else out
        recording[0] = False
        out = d.model(x + ZEN_ALPHA * eps)
        f2 = feats[-1] if feats else out
    diff = (f1.double() - f2.double()).abs().reshape(shape[0], -1).sum(1).mean()
    d.zen_diff = float(diff)
    d.zen_bn_log_std = float(torch.stack(logs).sum()) if logs else 0.0


def smallest_correlation_eigenvalue(features: Tensor) -> Tensor:
    """Smallest eigenvalue (float64 scalar tensor) of the Pearson correlation of the rows of
    `features`: one example's output as (first dim, everything else), a conv map's channels or a
    token sequence's tokens.

    As MeCo's code: correlations that are not finite (rows without variance, overflow) count as
    0, the diagonal included; rows of a single value therefore give 0.
    """
    rows = features.reshape(features.shape[0], -1).double()
    if rows.shape[1] < 2:
        return rows.new_zeros(())
    corr = torch.nan_to_num(torch.corrcoef(rows), nan=0.0, posinf=0.0, neginf=0.0)
    return torch.linalg.eigvalsh(corr)[0]


def meco_pass(d: PassData, wanted: frozenset[str]) -> None:
    """MeCo: the first example alone through the network, train-mode BN, no gradients.

    Every module's call whose output is a tensor of at least two dimensions (batch included)
    gives the smallest correlation eigenvalue of its output for that example; the calls of each
    Conv2d/Linear layer are also summed per layer.
    """
    layer_of = {id(m): i for i, (_, m) in enumerate(d.layers)}
    eigenvalues: list[Tensor] = []
    owners: list[int] = []  # index of the call's layer, -1 for other modules

    def hook(module: nn.Module, inputs: tuple, output: object) -> None:
        if isinstance(output, Tensor) and output.dim() >= 2:
            eigenvalues.append(smallest_correlation_eigenvalue(output[0].detach()))
            owners.append(layer_of.get(id(module), -1))

    with pass_state(d.model, True), hooks([(m, hook) for m in d.model.modules()]):
        with torch.no_grad():
            d.model(d.images[:1])
    values = torch.stack(eigenvalues).cpu().numpy() if eigenvalues else np.zeros(0)
    owner = np.asarray(owners, dtype=np.int64)
    d.meco_eigenvalues = values
    d.meco_layer_eigenvalues = np.bincount(
        owner[owner >= 0], weights=values[owner >= 0], minlength=len(d.layers)
    ).astype(np.float64)


def channel_rows(features: Tensor) -> Tensor:
    """A block's output as float64 samples of its channels: (N, C, H, W) maps as N*H*W rows of
    C, (N, T, C) tokens as N*T rows of C."""
    rows = features.movedim(1, -1) if features.dim() == 4 else features
    return rows.reshape(-1, rows.shape[-1]).double()


def spectrum_entropy(features: Tensor) -> Tensor:
    """Entropy of the normalised eigenvalues of the channel covariance of a block's output; 0
    for an output that does not vary (a spectrum of zeros)."""
    rows = channel_rows(features)
    rows = rows - rows.mean(0, keepdim=True)
    eigenvalues = torch.linalg.eigvalsh(rows.T @ rows / rows.shape[0]).clamp_min(0)
    if eigenvalues.sum() == 0:
        return eigenvalues.sum()
    p = eigenvalues / eigenvalues.sum()
    return -(p * torch.log(p + 1e-8)).sum()


def block_gain(g_in: Tensor, g_out: Tensor) -> float:
    """Largest singular value of the channel cross-covariance of a block's input and output
    gradients, g_in folded to g_out's resolution (pixel unshuffle) where the block downsamples;
    NaN where the two cannot be matched position by position."""
    if g_in.dim() == 4 and g_out.dim() == 4 and g_in.shape[2] != g_out.shape[2]:
        stride = g_in.shape[2] // g_out.shape[2]
        if stride < 1 or g_in.shape[2:] != (stride * g_out.shape[2], stride * g_out.shape[3]):
            return math.nan
        g_in = F.pixel_unshuffle(g_in, stride)
    rows_in, rows_out = channel_rows(g_in), channel_rows(g_out)
    if g_in.dim() != g_out.dim() or rows_in.shape[0] != rows_out.shape[0]:
        return math.nan
    cross = rows_in.T @ rows_out / rows_in.shape[0]
    return float(torch.linalg.svdvals(cross).max())


def block_pass(d: PassData, wanted: frozenset[str]) -> None:
    """AZ-NAS: the real batch through the network (train-mode BN) with every feature block's
    output kept; each output's spectrum entropy, and for each pair of consecutive outputs the
    gain of the backward map from the later to the earlier for a Rademacher vector (seeded by
    `d.seed`, drawn from the last pair to the first). A pair whose later output does not depend
    on the earlier gets NaN; one that passes the vector through unchanged gets +inf.
    """
    outputs: list[Tensor] = []

    def hook(module: nn.Module, inputs: tuple, output: object) -> None:
        # a module returning the tensor it was given (identity, in-place activation, dropout
        # off) adds no block: the tensor already stands for the output
        if isinstance(output, Tensor) and output.dim() in (3, 4):
            if not outputs or output is not outputs[-1]:
                outputs.append(output)

    gen = torch.Generator(device=d.images.device).manual_seed(d.seed)
    with pass_state(d.model, True), hooks([(m, hook) for m in find_blocks(d.model)]):
        with torch.enable_grad():
            d.model(d.images)
            entropies = [spectrum_entropy(o.detach()) for o in outputs]
            gains = []
            for later, earlier in reversed(list(zip(outputs[1:], outputs[:-1], strict=True))):
                signs = torch.randint(0, 2, later.shape, generator=gen, device=later.device)
                g_out = signs.to(later.dtype) * 2 - 1
                (g_in,) = torch.autograd.grad(
                    later, earlier, g_out, retain_graph=True, allow_unused=True
                )
                if g_in is None:
                    gains.append(math.nan)
                elif g_in.shape == g_out.shape and torch.equal(g_in, g_out):
                    gains.append(math.inf)
                else:
                    gains.append(block_gain(g_in, g_out))
    d.block_entropies = torch.stack(entropies).cpu().numpy() if entropies else np.zeros(0)
    d.block_gains = np.asarray(gains[::-1], dtype=np.float64)


def split_gradient_pass(d: PassData, wanted: frozenset[str]) -> None:
    """The batch in GRADIENT_SPLITS equal parts (any remainder dropped), each part forward and
    backward alone in train mode; per layer, the parts' weight gradients stacked."""
    size = d.images.shape[0] // GRADIENT_SPLITS
    if size < 2:
        raise ValueError(
            f"a batch of {d.images.shape[0]} cannot be cut into {GRADIENT_SPLITS} parts of at "
            "least 2 examples (train-mode BN needs 2)"
        )
    weights = [m.weight for _, m in d.layers]
    parts: list[list[Tensor]] = []
    with pass_state(d.model, train=True), torch.enable_grad():
        for k in range(GRADIENT_SPLITS):
            part = slice(k * size, (k + 1) * size)
            loss = d.loss(d.model(d.images[part]), d.labels[part])
            parts.append([g.detach() for g in grad_or_zeros(loss, weights)])
    d.split_grads = [torch.stack(per_layer) for per_layer in zip(*parts, strict=True)]


def gram(rows: Sequence[Tensor]) -> Tensor:
    """The float64 Gram matrix of equal-length 1-D rows, summed over column chunks: only
    GRAM_CHUNK columns of all rows at a time are stacked and held in float64, so a large model's
    weight gradients are never copied whole or held in float64."""
    total = torch.zeros(len(rows), len(rows), dtype=torch.float64, device=rows[0].device)
    for start in range(0, rows[0].numel(), GRAM_CHUNK):
        chunk = torch.stack([r[start : start + GRAM_CHUNK] for r in rows]).double()
        total += chunk @ chunk.T
    return total


def sample_gradient_pass(d: PassData, wanted: frozenset[str]) -> None:
    """Every example alone (batch 1, train mode): per layer, the sum over the examples of the
    signs of their loss's weight gradients (``sample_signs``); the Gram matrix of their output
    sums' weight gradients over all layers (``sample_kernel``)."""
    want_signs, want_kernel = "sample_signs" in wanted, "sample_kernel" in wanted
    weights = [m.weight for _, m in d.layers]
    signs = [torch.zeros_like(w, dtype=torch.float64) for w in weights] if want_signs else []
    rows: list[Tensor] = []  # per example, its flattened weight gradient in the model's dtype
    with pass_state(d.model, train=True), torch.enable_grad():
        for n in range(d.images.shape[0]):
            outputs = d.model(d.images[n : n + 1])
            if want_signs:
                loss = d.loss(outputs, d.labels[n : n + 1])
                grads = grad_or_zeros(loss, weights, retain_graph=want_kernel)
                for total, g in zip(signs, grads, strict=True):
                    total += g.sign()
            if want_kernel:
                grads = grad_or_zeros(outputs.sum(), weights)
                rows.append(torch.cat([g.detach().reshape(-1) for g in grads]))
    if want_signs:
        d.sample_sign_sums = signs
    if want_kernel:
        d.sample_kernel = gram(rows)


# pass name -> (needs it serves, function); run in this order.
PASSES: dict[str, tuple[frozenset[str], Callable[[PassData, frozenset[str]], None]]] = {
    "data": (
        frozenset({"grad", "hessian", "fisher", "jacobian", "codes", "patterns", "shapes"}),
        data_pass,
    ),
    "synflow": (frozenset({"synflow"}), synflow_pass),
    "zen": (frozenset({"zen"}), zen_pass),
    "meco": (frozenset({"meco"}), meco_pass),
    "blocks": (frozenset({"blocks"}), block_pass),
    "split_grads": (frozenset({"split_grads"}), split_gradient_pass),
    "sample_grads": (frozenset({"sample_signs", "sample_kernel"}), sample_gradient_pass),
}


def run_passes(d: PassData, needs: frozenset[str]) -> None:
    """Run each pass serving some need; a failing pass marks its needs in `d.failed`."""
    for name, (serves, fn) in PASSES.items():
        wanted = needs & serves
        if wanted:
            with failures_recorded(d, wanted, f"{name} pass"):
                fn(d, wanted)
