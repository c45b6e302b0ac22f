"""Train-mode batch norm and conv2d with cheap, closed-form double backwards.

grasp's Hessian-gradient product differentiates the weight gradient once more. PyTorch's own
double backward of train-mode batch norm (``batchnorm_double_backward``) is a long chain of
broadcast products, and that of a convolution takes one of its weight gradients through a slow
convolution path. ``ClosedFormDoubleBackward`` (a torch function mode) routes ``F.batch_norm`` in
training mode and ``F.conv2d`` (numeric padding) through pairs of autograd Functions:

- the forward and the first backward call PyTorch's own kernels (``native_batch_norm`` /
  ``convolution`` and their ``*_backward``), so outputs and first-order gradients are bitwise
  those of the plain calls on the CPU (on CUDA, batch norm takes the native kernel instead of
  cuDNN's, equal to float rounding);
- the backward of that backward is written out below, with PyTorch's fast kernels.

Batch norm, per channel over its M = N·H·W elements: m(·) the mean, s = 1/sqrt(var + eps),
x̂ = (x - mean)·s, γ the weight (1 without affine). The first backward is
``gx = γ s (gy - m(gy) - x̂ m(gy x̂))``, ``gγ = Σ gy x̂``, ``gβ = Σ gy``. Given cotangents u, u_γ,
u_β of (gx, gγ, gβ), with a = m(u x̂), b = m(gy x̂), c = m(u gy):

- d/d gy = γ s (u - m(u) - x̂ a) + u_γ x̂ + u_β
- d/d x  = γ s² (x̂ (3ab - c + m(u) m(gy)) - b (u - m(u)) - a (gy - m(gy)))
  + u_γ s (gy - m(gy) - x̂ b)
- d/d γ  = M s (c - m(u) m(gy) - a b)

Convolution y = conv(x, w) + b is bilinear: its first backward gives gx = conv_x^T(gy; w),
gw = conv_w^T(gy; x), gb = Σ gy. Given cotangents u_x, u_w, u_b of (gx, gw, gb):

- d/d gy = conv(u_x, w) + conv(x, u_w) + u_b
- d/d x  = conv_x^T(gy; u_w)   (the input gradient of conv(x, u_w))
- d/d w  = conv_w^T(gy; u_x)   (the weight gradient of conv(u_x, w))
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd import Function
from torch.autograd.function import once_differentiable
from torch.overrides import TorchFunctionMode


def _channel_view(t: Tensor, like: Tensor) -> Tensor:
    """A per-channel vector shaped to broadcast against `like` (channels on dim 1)."""
    return t.reshape(1, -1, *([1] * (like.dim() - 2)))


def _channel_mean(t: Tensor) -> Tensor:
    """Mean over every dim but the channel dim 1, kept for broadcasting."""
    return t.mean([d for d in range(t.dim()) if d != 1], keepdim=True)


class _BatchNormBackward(Function):
    """(gy, x, γ) -> (gx, gγ, gβ) with PyTorch's kernel; its own backward in closed form."""

    @staticmethod
    def forward(ctx, gy, x, weight, mean, invstd, eps, mask):  # noqa: ANN001, ANN205
        gx, gw, gb = torch.ops.aten.native_batch_norm_backward(
            gy, x, weight, None, None, mean, invstd, True, eps, list(mask)
        )
        ctx.save_for_backward(gy, x, weight, mean, invstd)
        ctx.set_materialize_grads(False)  # unused outputs get None, not zeros to multiply
        return gx, gw, gb

    @staticmethod
    @once_differentiable
    def backward(ctx, u, u_w, u_b):  # noqa: ANN001, ANN205
        gy, x, weight, mean, invstd = ctx.saved_tensors
        s = _channel_view(invstd, x)
        gamma_s = s * _channel_view(weight, x) if weight is not None else s
        xc = x - _channel_view(mean, x)  # x̂ = xc·s; the per-channel factors fold s in
        tmp = torch.mul(gy, xc)  # one scratch buffer for the products: fewer fresh pages
        m_gy, b = _channel_mean(gy), s * _channel_mean(tmp)
        d_gy = d_x = d_w = None
        if u is not None:
            m_u = _channel_mean(u)
            a = s * _channel_mean(torch.mul(u, xc, out=tmp))
            c = _channel_mean(torch.mul(u, gy, out=tmp))
            if ctx.needs_input_grad[0]:
                d_gy = torch.sub(u, m_u).mul_(gamma_s)
                d_gy.sub_(torch.mul(xc, gamma_s * s * a, out=tmp))
            if ctx.needs_input_grad[1]:
                f = gamma_s * s
                d_x = torch.mul(xc, f * s * (3 * a * b - c + m_u * m_gy))
                d_x.sub_(torch.mul(u, f * b, out=tmp)).sub_(torch.mul(gy, f * a, out=tmp))
                d_x.add_(f * (b * m_u + a * m_gy))
            if weight is not None and ctx.needs_input_grad[2]:
                d_w = (s * (c - m_u * m_gy - a * b)).reshape(-1) * (x.numel() // x.shape[1])
        if u_w is not None:
            u_w = _channel_view(u_w, x)
            d_gy = u_w * s * xc + (0 if d_gy is None else d_gy)
            d_x = u_w * s * (gy - m_gy - xc * (s * b)) + (0 if d_x is None else d_x)
        if u_b is not None:
            d_gy = (_channel_view(u_b, x) + (0 if d_gy is None else d_gy)).expand_as(x)
        return d_gy, d_x, d_w, None, None, None, None


class _BatchNorm(Function):
    """Train-mode batch norm with PyTorch's kernel; its backward is a `_BatchNormBackward`."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps, scope):  # noqa: ANN001, ANN205
        out, mean, invstd = torch.ops.aten.native_batch_norm(
            x, weight, bias, running_mean, running_var, True, momentum, eps
        )
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps, ctx.scope = eps, scope
        return out

    @staticmethod
    def backward(ctx, gy):  # noqa: ANN001, ANN205
        x, weight, mean, invstd = ctx.saved_tensors
        needs, params = ctx.needs_input_grad, ctx.scope.parameter_gradients
        mask = (needs[0], weight is not None and needs[1] and params, needs[2] and params)
        gx, gw, gb = _BatchNormBackward.apply(gy, x, weight, mean, invstd, ctx.eps, mask)
        return gx, gw, gb, None, None, None, None, None


def _pair(v: int | Sequence[int]) -> list[int]:
    """A conv argument (int or pair) as the two-element list aten.convolution takes."""
    return [int(i) for i in v] if isinstance(v, Sequence) else [int(v), int(v)]


class _Conv2dBackward(Function):
    """(gy, x, w) -> (gx, gw, gb) with PyTorch's kernel; its own backward in closed form."""

    @staticmethod
    def forward(ctx, gy, x, weight, bias_sizes, geometry, mask):  # noqa: ANN001, ANN205
        ctx.save_for_backward(gy, x, weight)
        ctx.geometry = geometry
        ctx.set_materialize_grads(False)
        return torch.ops.aten.convolution_backward(gy, x, weight, bias_sizes, *geometry, mask)

    @staticmethod
    @once_differentiable
    def backward(ctx, u_x, u_w, u_b):  # noqa: ANN001, ANN205
        gy, x, weight = ctx.saved_tensors
        geometry, needs = ctx.geometry, ctx.needs_input_grad
        d_gy = d_x = d_w = None
        if needs[0]:
            conv = torch.ops.aten.convolution
            terms = [] if u_x is None else [conv(u_x, weight, None, *geometry)]
            terms += [] if u_w is None else [conv(x, u_w, None, *geometry)]
            terms += [] if u_b is None else [u_b.reshape(1, -1, 1, 1).expand_as(gy)]
            d_gy = sum(terms[1:], terms[0]) if terms else None
        if needs[1] and u_w is not None:  # the input gradient of conv(x, u_w)
            d_x = torch.ops.aten.convolution_backward(
                gy, x, u_w, None, *geometry, [True, False, False]
            )[0]
        if needs[2] and u_x is not None:  # the weight gradient of conv(u_x, w)
            d_w = torch.ops.aten.convolution_backward(
                gy, u_x, weight, None, *geometry, [False, True, False]
            )[1]
        return d_gy, d_x, d_w, None, None, None


class _Conv2d(Function):
    """conv2d with PyTorch's kernel; its backward is a `_Conv2dBackward`."""

    @staticmethod
    def forward(ctx, x, weight, bias, geometry, scope):  # noqa: ANN001, ANN205
        ctx.save_for_backward(x, weight)
        ctx.geometry, ctx.scope = geometry, scope
        ctx.bias_sizes = None if bias is None else list(bias.shape)
        return torch.ops.aten.convolution(x, weight, bias, *geometry)

    @staticmethod
    def backward(ctx, gy):  # noqa: ANN001, ANN205
        x, weight = ctx.saved_tensors
        needs, params = ctx.needs_input_grad, ctx.scope.parameter_gradients
        mask = [needs[0], needs[1] and params, ctx.bias_sizes is not None and needs[2] and params]
        gx, gw, gb = _Conv2dBackward.apply(gy, x, weight, ctx.bias_sizes, ctx.geometry, mask)
        return gx, gw, gb, None, None


def _conv2d_arguments(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002, ANN001, ANN202
    return input, weight, bias, stride, padding, dilation, groups


_BATCH_NORM_SIGNATURE = inspect.signature(F.batch_norm)


class ClosedFormDoubleBackward(TorchFunctionMode):
    """While active, ``F.conv2d`` (numeric padding) runs through `_Conv2d` and train-mode
    ``F.batch_norm`` through `_BatchNorm`: the same values and first-order gradients, bitwise,
    and the closed-form double backwards.

    A custom Function cannot tell which of its inputs one backward call needs, only which
    require grad; `input_gradients_only()` says so for a backward that needs no parameter's
    gradient (an input Jacobian), which then skips every weight-gradient kernel.
    """

    def __init__(self) -> None:
        super().__init__()
        self.parameter_gradients = True

    @contextmanager
    def input_gradients_only(self) -> Iterator[None]:
        """Backwards inside the block compute no gradient of a conv or batch-norm parameter."""
        self.parameter_gradients = False
        try:
            yield
        finally:
            self.parameter_gradients = True

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        if func is F.conv2d:
            return self._conv2d(func, args, kwargs)
        if func is F.batch_norm:
            return self._batch_norm(func, args, kwargs)
        return func(*args, **kwargs)

    def _conv2d(self, func: Callable, args: tuple, kwargs: dict) -> Tensor:
        x, weight, bias, stride, padding, dilation, groups = _conv2d_arguments(*args, **kwargs)
        if isinstance(padding, str) or x.dim() != 4:  # 'same' / 'valid': PyTorch's own path
            return func(*args, **kwargs)
        # aten.convolution's stride, padding, dilation, transposed, output_padding, groups
        geometry = (_pair(stride), _pair(padding), _pair(dilation), False, [0, 0], int(groups))
        return _Conv2d.apply(x, weight, bias, geometry, self)

    def _batch_norm(self, func: Callable, args: tuple, kwargs: dict) -> Tensor:
        bound = _BATCH_NORM_SIGNATURE.bind(*args, **kwargs)
        bound.apply_defaults()
        call = bound.arguments
        if not call["training"]:
            return func(*args, **kwargs)
        x = call["input"]
        if x.numel() // x.shape[1] <= 1:  # F.batch_norm's own check, kept
            raise ValueError(f"Expected more than 1 value per channel when training, got {x.shape}")
        return _BatchNorm.apply(
            x,
            call["weight"],
            call["bias"],
            call["running_mean"],
            call["running_var"],
            call["momentum"],
            call["eps"],
            self,
        )
