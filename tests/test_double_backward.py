"""The closed-form double backwards of conv2d and train-mode batch norm (grasp's H g)."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import grasp_by_full_hessian
from torch import nn
from torch.func import functional_call

import parzc.proxies.passes as passes
from parzc.proxies import LAYER_PROXIES, NETWORK_PROXIES
from parzc.proxies.batch import load_batch
from parzc.proxies.compute import compute_proxies
from parzc.proxies.double_backward import ClosedFormDoubleBackward
from parzc.spaces import get_space


def conv_bn_net() -> nn.Sequential:
    """The conv geometries the spaces use (stride, groups, dilation, bias), BN with and without
    affine."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=4, bias=True),
        nn.BatchNorm2d(4, affine=False),
        nn.Tanh(),
        nn.Conv2d(4, 3, 1),
        nn.Flatten(),
        nn.Linear(48, 3),
    )


def data(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(5, 3, 8, 8, generator=gen, dtype=dtype), torch.tensor([0, 1, 2, 0, 1])


def test_second_derivatives_match_finite_differences():
    net = conv_bn_net().double()
    x, y = data(torch.float64)
    params = dict(net.named_parameters())
    names = list(params)

    def loss(x: torch.Tensor, *values: torch.Tensor) -> torch.Tensor:
        with ClosedFormDoubleBackward():
            out = functional_call(net, dict(zip(names, values, strict=True)), (x,))
        return F.cross_entropy(out, y)

    inputs = (x.requires_grad_(), *(p.detach().clone().requires_grad_() for p in params.values()))
    assert torch.autograd.gradgradcheck(loss, inputs)


def test_values_and_first_order_gradients_are_bitwise_pytorchs():
    net, (x, y) = conv_bn_net(), data(torch.float32)
    weights = [m.weight for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    results = []
    for mode in (contextlib.nullcontext(), ClosedFormDoubleBackward()):
        with mode:
            logits = net(x)
            grads = torch.autograd.grad(F.cross_entropy(logits, y), weights, create_graph=True)
            z = sum((g.detach() * g).sum() for g in grads)
            hg = torch.autograd.grad(z, weights)
        results.append((logits, grads, hg))
    (logits, grads, hg), (logits_cf, grads_cf, hg_cf) = results
    assert torch.equal(logits, logits_cf)
    assert all(torch.equal(a, b) for a, b in zip(grads, grads_cf, strict=True))
    for a, b in zip(hg, hg_cf, strict=True):  # the same sums in another order
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6 * float(a.abs().max()))


def test_input_gradients_only_skips_parameter_gradients():
    net, (x, _) = conv_bn_net(), data(torch.float32)
    x.requires_grad_()
    conv = net[0]
    with ClosedFormDoubleBackward() as mode:
        out = net(x).sum()
        full = torch.autograd.grad(out, [x, conv.weight], retain_graph=True)
        with mode.input_gradients_only():
            only = torch.autograd.grad(out, [x, conv.weight], allow_unused=True)
    assert torch.equal(full[0], only[0])
    assert full[1] is not None and only[1] is None


def test_grasp_on_a_conv_bn_net_matches_the_full_hessian_vector_product():
    net = conv_bn_net().double()
    x, y = data(torch.float64)
    expected = grasp_by_full_hessian(net, x, y)
    r = compute_proxies(net, x, y, ["grasp"], [], 3)
    np.testing.assert_allclose(r.per_layer["grasp"], expected, rtol=1e-8)


@pytest.mark.parametrize("space_name", ["nb201", "nb101", "nb301"])
def test_real_networks_keep_every_proxy_but_grasp_bitwise(space_name, monkeypatch):
    space, batch = get_space(space_name), load_batch(16, 0)
    arch = space.archs()["arch"][1]
    results = []
    for closed_form in (False, True):
        if not closed_form:
            monkeypatch.setattr(passes, "ClosedFormDoubleBackward", lambda: None)
        torch.manual_seed(0)
        model = space.build(arch, "cifar10")
        names = (LAYER_PROXIES.names(), NETWORK_PROXIES.names())
        results.append(compute_proxies(model, batch.images, batch.labels, *names, 10))
        monkeypatch.undo()
    native, closed = results
    assert native.network == closed.network
    for name, values in native.per_layer.items():
        if name != "grasp":
            np.testing.assert_array_equal(closed.per_layer[name], values, err_msg=name)
    scale = np.abs(native.per_layer["grasp"]).max()
    np.testing.assert_allclose(
        closed.per_layer["grasp"], native.per_layer["grasp"], atol=1e-4 * scale
    )
