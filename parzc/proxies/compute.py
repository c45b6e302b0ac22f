"""Zero-cost proxies of an untrained network, computed in a few shared passes.

`compute_proxies` validates the names, runs only the passes some requested proxy needs (see
passes.py), and evaluates every proxy from the pass data. A proxy that raises or yields NaN/inf
never crashes the call: a failed pass or a raising proxy gives NaN for every layer (or the
network value); non-finite values of single layers become NaN for those layers only; each such
proxy gets a reason in `nan_reasons`. Out-of-memory errors are re-raised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from parzc.proxies import LAYER_PROXIES, NETWORK_PROXIES, unique_names, validate_proxy_names
from parzc.proxies.faults import ProxyFault
from parzc.proxies.layerwise import LayerProxy
from parzc.proxies.network import NetworkProxy
from parzc.proxies.passes import RESOURCE_ERRORS, PassData, find_layers, run_passes


@dataclass
class LayerInfo:
    name: str  # qualified module name from model.named_modules()
    type: str  # "Conv2d" or "Linear"


@dataclass
class ProxyResult:
    layers: list[LayerInfo]  # every nn.Conv2d / nn.Linear, in named_modules() order
    per_layer: dict[str, np.ndarray]  # proxy -> float64 (len(layers),); NaN allowed
    network: dict[str, float]  # proxy -> float; NaN allowed
    nan_reasons: dict[str, str]  # "layer:<proxy>" / "net:<proxy>" -> reason, NaN proxies only


def _evaluate(proxy: LayerProxy | NetworkProxy, d: PassData) -> tuple[object, str | None]:
    """(value, None) or (None, reason) when a needed pass failed or the proxy raised."""
    failed = [d.failed[n] for n in sorted(proxy.needs) if n in d.failed]
    if failed:
        return None, failed[0]
    try:
        with np.errstate(all="ignore"):
            return proxy.fn(d), None
    except RESOURCE_ERRORS:
        raise
    except ProxyFault as e:
        return None, str(e)
    except Exception as e:  # numerical faults (e.g. LinAlgError) become NaN with the reason
        return None, f"{type(e).__name__}: {e}"


def _layer_values(proxy: LayerProxy, d: PassData, names: list[str]) -> tuple[np.ndarray, str]:
    value, reason = _evaluate(proxy, d)
    if value is None:
        return np.full(len(names), np.nan), reason
    values = np.asarray(value, dtype=np.float64).copy()
    bad = ~np.isfinite(values)
    if bad.any():
        values[bad] = np.nan
        shown = ", ".join(n for n, b in zip(names, bad, strict=True) if b)
        reason = f"non-finite value (overflow or invalid operation) in {bad.sum()}/{len(names)}"
        reason += f" layers: {shown[:200]}"
    return values, reason


def _network_value(proxy: NetworkProxy, d: PassData) -> tuple[float, str | None]:
    value, reason = _evaluate(proxy, d)
    if value is None:
        return float("nan"), reason
    if not np.isfinite(value):
        return float("nan"), f"non-finite value ({value})"
    return float(value), None


def compute_proxies(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    layer_proxies: Sequence[str],
    network_proxies: Sequence[str],
    num_classes: int,
    seed: int = 0,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> ProxyResult:
    """Compute the named proxies of `model` on one batch, on the model's device.

    The model's forward must return logits (N, num_classes), unless `loss_fn` (outputs,
    targets) -> scalar replaces the cross-entropy of the gradient passes. Its parameters,
    buffers, modes and requires_grad flags are restored afterwards; randomness (zen's inputs)
    comes from a local generator seeded with `seed`, so results are deterministic.
    """
    validate_proxy_names(layer_proxies, network_proxies)
    layer_names = unique_names(layer_proxies, "layer_proxies")
    net_names = unique_names(network_proxies, "network_proxies")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    if (
        loss_fn is None
        and labels.numel()
        and not 0 <= int(labels.min()) <= int(labels.max()) < num_classes
    ):
        raise ValueError(f"labels must lie in [0, {num_classes}) for num_classes={num_classes}")
    first = next(iter(model.parameters()), None)
    device = first.device if first is not None else images.device
    layers = find_layers(model)
    d = PassData(model, layers, images.to(device), labels.to(device), num_classes, seed, loss_fn)
    chosen: list[tuple[str, LayerProxy | NetworkProxy]] = [
        *((f"layer:{n}", LAYER_PROXIES.get(n)) for n in layer_names),
        *((f"net:{n}", NETWORK_PROXIES.get(n)) for n in net_names),
    ]
    run_passes(d, frozenset().union(*(p.needs for _, p in chosen)))

    infos = [LayerInfo(n, "Conv2d" if isinstance(m, nn.Conv2d) else "Linear") for n, m in layers]
    result = ProxyResult(infos, {}, {}, {})
    for key, proxy in chosen:
        kind, name = key.split(":", 1)
        if kind == "layer":
            result.per_layer[name], reason = _layer_values(proxy, d, [i.name for i in infos])
        else:
            result.network[name], reason = _network_value(proxy, d)
        if reason is not None:
            result.nan_reasons[key] = reason
    return result
