"""grasp's Hessian-gradient product on NB201 networks: three ways, side by side in one run.

    python benchmarks/hessian_product.py --networks 12

Per network (one thread, batch 16, train-mode BN), milliseconds of forward + dL/dW + H g:
- `reverse-over-reverse`: what parzc's data pass does (dL/dW with create_graph, then the
  gradient of sum(stop_grad(g) * g));
- `forward-over-reverse`: torch.func.jvp of torch.func.grad (Pearlmutter's R-operator);
- `reverse-over-reverse, channels_last`: the first way with NHWC tensors;
- `reverse-over-reverse, closed forms`: the first way with batch norm's and conv2d's double
  backwards in closed form (`parzc.proxies.double_backward`, what the data pass uses now).
Also the largest relative difference of each H g from the first way's, and the share of the
first way's time spent in batch norm's double backward (torch.profiler).
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, jvp

from parzc.proxies.batch import load_batch
from parzc.proxies.double_backward import ClosedFormDoubleBackward
from parzc.proxies.passes import find_layers
from parzc.spaces import get_space


def reverse_over_reverse(model: nn.Module, x: Tensor, y: Tensor) -> list[Tensor]:
    weights = [m.weight for _, m in find_layers(model)]
    g = torch.autograd.grad(F.cross_entropy(model(x), y), weights, create_graph=True)
    z = torch.stack([(gi.detach() * gi).sum() for gi in g]).sum()
    return list(torch.autograd.grad(z, weights))


def channels_last(model: nn.Module, x: Tensor, y: Tensor) -> list[Tensor]:
    model = model.to(memory_format=torch.channels_last)
    return reverse_over_reverse(model, x.contiguous(memory_format=torch.channels_last), y)


def closed_form(model: nn.Module, x: Tensor, y: Tensor) -> list[Tensor]:
    with ClosedFormDoubleBackward():
        return reverse_over_reverse(model, x, y)


def forward_over_reverse(model: nn.Module, x: Tensor, y: Tensor) -> list[Tensor]:
    torch.func.replace_all_batch_norm_modules_(model)  # batch statistics, no buffer updates
    params = {k: v.detach() for k, v in model.named_parameters()}
    names = [f"{n}.weight" for n, _ in find_layers(model)]

    def loss(weights: dict[str, Tensor]) -> Tensor:
        return F.cross_entropy(functional_call(model, params | weights, (x,)), y)

    weights = {n: params[n] for n in names}
    g = grad(loss)(weights)
    _, hg = jvp(grad(loss), (weights,), (g,))
    return [hg[n] for n in names]


WAYS: dict[str, Callable[[nn.Module, Tensor, Tensor], list[Tensor]]] = {
    "reverse-over-reverse": reverse_over_reverse,
    "forward-over-reverse": forward_over_reverse,
    "reverse-over-reverse, channels_last": channels_last,
    "reverse-over-reverse, closed forms": closed_form,
}


def batch_norm_share(models: list[nn.Module], x: Tensor, y: Tensor) -> float:
    """Share of reverse-over-reverse's CPU time in NativeBatchNormBackwardBackward."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for model in models:
            reverse_over_reverse(model, x, y)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    bn = sum(e.cpu_time_total for e in events if e.key == "NativeBatchNormBackwardBackward0")
    return bn / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--networks", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = get_space("nb201")
    arch = dict(space.archs().select("arch_id", "arch").iter_rows())
    nets = np.random.default_rng(0).permutation(space.networks())[: args.networks]
    batch = load_batch(16, 0)
    models = []
    for arch_id in nets:
        torch.manual_seed(int(arch_id))
        models.append(space.build(arch[int(arch_id)], "cifar10").train())
    seconds = dict.fromkeys(WAYS, 0.0)
    error = dict.fromkeys(WAYS, 0.0)
    for model in models:
        reference = None
        for name, way in WAYS.items():  # interleaved: machine noise hits every way alike
            copy_ = copy.deepcopy(model)
            started = time.perf_counter()
            hg = way(copy_, batch.images, batch.labels)
            seconds[name] += time.perf_counter() - started
            reference = hg if reference is None else reference
            pairs = zip(hg, reference, strict=True)
            worst = max(float((a - b).abs().max() / b.abs().max()) for a, b in pairs)
            error[name] = max(error[name], worst)
    base = seconds["reverse-over-reverse"]
    print(f"{len(models)} canonical NB201 networks, batch 16, one thread")
    print(f"{'way':38} {'ms':>7} {'x first':>8} {'max rel diff':>13}")
    for name in WAYS:
        ms = 1e3 * seconds[name] / len(models)
        print(f"{name:38} {ms:7.1f} {seconds[name] / base:8.2f} {error[name]:13.1e}")
    share = batch_norm_share(models, batch.images, batch.labels)
    print(f"batch norm double backward: {100 * share:.0f} % of reverse-over-reverse's CPU time")


if __name__ == "__main__":
    main()
