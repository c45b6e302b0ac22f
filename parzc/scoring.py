"""Score any torch model: zero-cost proxies of one network on one batch, per layer and whole.

    import parzc
    scores = parzc.score(model, inputs, targets, proxies=["synflow", "snip", "net:nwot"])
    scores.layers          # long table: layer, layer_name, layer_type, proxy, value, nan_reason
    scores.wide()          # one row per Conv2d/Linear layer, one column per per-layer proxy
    scores.network         # network-level proxies, e.g. {"nwot": 1234.5}
    scores.totals()        # per-layer proxies summed over the layers (the store's aggregates)

The same shared passes as the feature store's extraction compute the same values: scoring the
network the store built for an arch (same initialisation seed, same batch) gives its rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch
from torch import nn

from parzc.proxies import LAYER_PROXIES, NETWORK_PROXIES
from parzc.proxies.compute import compute_proxies


@dataclass
class Scores:
    """Proxies of one network: per layer (long table) and network-level."""

    layers: pl.DataFrame
    network: dict[str, float]
    nan_reasons: dict[str, str]

    def wide(self) -> pl.DataFrame:
        """One row per layer, one column per per-layer proxy."""
        if self.layers.is_empty():
            return pl.DataFrame(schema={"layer": pl.Int32, "layer_name": pl.String})
        return self.layers.pivot(
            on="proxy", index=["layer", "layer_name", "layer_type"], values="value"
        ).sort("layer")

    def totals(self) -> dict[str, float]:
        """Each per-layer proxy summed over the layers (NaN if a layer failed)."""
        sums = self.layers.group_by("proxy", maintain_order=True).agg(
            pl.col("value").sum().alias("total"), pl.col("value").is_nan().any().alias("nan")
        )
        return {p: float("nan") if bad else float(t) for p, t, bad in sums.iter_rows()}


def split_proxy_names(proxies: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """(per-layer, network-level) names: `net:<name>` is network-level; a plain name goes to
    each registry that has it (params and flops are both); None = every registered proxy."""
    if proxies is None:
        return LAYER_PROXIES.names(), NETWORK_PROXIES.names()
    layer, network = [], []
    for name in proxies:
        if name.startswith("net:"):
            NETWORK_PROXIES.get(name[4:])  # an unknown name fails, listing the known ones
            network.append(name[4:])
            continue
        if name not in LAYER_PROXIES and name not in NETWORK_PROXIES:
            known = ", ".join(LAYER_PROXIES.names() + [f"net:{n}" for n in NETWORK_PROXIES])
            raise KeyError(f"unknown proxy {name!r}; known: {known}")
        if name in LAYER_PROXIES:
            layer.append(name)
        if name in NETWORK_PROXIES:
            network.append(name)
    return layer, network


def score(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    proxies: Sequence[str] | None = None,
    *,
    num_classes: int | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    seed: int = 0,
) -> Scores:
    """Zero-cost proxies of `model` on (inputs, targets), on the model's device.

    `num_classes` defaults to the width of the model's output; `loss_fn` (outputs, targets)
    replaces cross-entropy for models whose output is not class logits. The model's weights,
    buffers and modes are left as they were.
    """
    layer, network = split_proxy_names(proxies)
    if num_classes is None:
        num_classes = _output_width(model, inputs)
    result = compute_proxies(
        model, inputs, targets, layer, network, num_classes, seed=seed, loss_fn=loss_fn
    )
    n = len(result.layers)
    rows: dict[str, list] = {
        k: [] for k in ("layer", "layer_name", "layer_type", "proxy", "value", "nan_reason")
    }
    for proxy in layer:
        values = result.per_layer[proxy]
        reason = result.nan_reasons.get(f"layer:{proxy}")
        rows["layer"] += list(range(n))
        rows["layer_name"] += [i.name for i in result.layers]
        rows["layer_type"] += [i.type for i in result.layers]
        rows["proxy"] += [proxy] * n
        rows["value"] += values.tolist()
        rows["nan_reason"] += [reason if np.isnan(v) else None for v in values]
    schema = {
        "layer": pl.Int32,
        "layer_name": pl.String,
        "layer_type": pl.String,
        "proxy": pl.String,
        "value": pl.Float64,
        "nan_reason": pl.String,
    }
    return Scores(pl.DataFrame(rows, schema=schema), dict(result.network), result.nan_reasons)


def _output_width(model: nn.Module, inputs: torch.Tensor) -> int:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            first = next(model.parameters(), None)
            out = model(inputs[:1].to(first.device if first is not None else inputs.device))
    finally:
        model.train(was_training)
    return int(out.shape[-1])
