"""Extract one shard: build each arch, run the shared proxy passes, write Parquet atomically."""

from __future__ import annotations

import gc
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

import parzc
from parzc.device import resolve_device
from parzc.io import write_parquet
from parzc.proxies import validate_proxy_names
from parzc.proxies.batch import Batch, load_batch
from parzc.proxies.compute import compute_proxies
from parzc.sharding import ExtractSettings
from parzc.spaces import get_space
from parzc.store.schema import ARCH_STATS_SCHEMA, FEATURE_SCHEMA

log = logging.getLogger(__name__)


@dataclass
class ShardSummary:
    archs: int
    seconds: float
    nan_values: int
    nan_reasons: dict[str, int] = field(default_factory=dict)


def network_seed(init_seed: int, arch_id: int) -> int:
    """The torch seed an arch's network is initialised with (the config's init_seed and its
    arch_id)."""
    return (init_seed * 1_000_003 + int(arch_id)) % (2**63)


def proxy_batch(settings: ExtractSettings, input_size: int) -> Batch:
    """The shard's proxy batch: the user's inputs, or the shipped CIFAR-10 images resized to
    the dataset's `input_size`."""
    inputs = settings.proxy_inputs()
    if inputs is None:
        return load_batch(settings.batch_size, settings.batch_seed, input_size)
    return inputs.load(settings.batch_size, settings.batch_seed)


def extract_shard(
    settings: ExtractSettings,
    arch_ids: Sequence[int],
    features_path: str | Path,
    arch_stats_path: str | Path,
    device: str = "auto",
) -> ShardSummary:
    """Compute proxies for `arch_ids` on `device` and write the per-layer and network-level
    Parquet files. Values do not depend on the device (within float tolerance), so it is not
    part of the settings' digest.

    The network-level file always holds an `n_layers` row per arch (its Conv2d/Linear count), so
    every arch's extraction time is stored even when no network-level proxy is requested.
    """
    validate_proxy_names(settings.layer_proxies, settings.network_proxies)
    space = get_space(settings.space)
    info = space.dataset(settings.dataset)
    table = space.archs()
    known = dict(zip(table["arch_id"].to_list(), table["arch"].to_list(), strict=True))
    missing = [a for a in arch_ids if int(a) not in known]
    if missing:
        raise ValueError(f"arch_ids not in {settings.space}: {missing[:5]}")
    device = resolve_device(device)
    batch = proxy_batch(settings, info.input_size).to(device)
    inputs = settings.proxy_inputs()
    loss_fn = None if inputs is None else inputs.loss_fn()

    feats: dict[str, list] = {name: [] for name in FEATURE_SCHEMA.names}
    stats: dict[str, list] = {name: [] for name in ARCH_STATS_SCHEMA.names}
    reasons: dict[str, int] = {}
    started = time.perf_counter()
    # The per-arch gc.collect() below frees each model's reference cycles so memory stays flat
    # over a shard; freezing the objects that exist now (torch, polars, ...: ~200k) keeps that
    # collection from traversing them every arch (it took ~0.3 s per arch otherwise).
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    try:
        for done, arch_id in enumerate(arch_ids):
            arch_id = int(arch_id)
            t0 = time.perf_counter()
            torch.manual_seed(network_seed(settings.init_seed, arch_id))
            model = space.build(known[arch_id], settings.dataset)
            first = next(model.parameters(), None)
            if first is not None and first.device != device:  # .to() walks every module
                model = model.to(device)
            result = compute_proxies(
                model,
                batch.images,
                batch.labels,
                settings.layer_proxies,
                settings.network_proxies,
                info.num_classes,
                seed=settings.batch_seed,
                loss_fn=loss_fn,
            )
            elapsed_ms = (time.perf_counter() - t0) * 1e3
            log.info("arch %d (%d/%d): %.0f ms", arch_id, done + 1, len(arch_ids), elapsed_ms)
            del model
            for key, reason in result.nan_reasons.items():
                log.warning("arch %d: %s is NaN: %s", arch_id, key, reason)
                reasons[key] = reasons.get(key, 0) + 1
            n_layers = len(result.layers)
            for proxy in settings.layer_proxies:
                values = result.per_layer[proxy]
                reason = result.nan_reasons.get(f"layer:{proxy}")
                feats["arch_id"].extend([arch_id] * n_layers)
                feats["layer"].extend(range(n_layers))
                feats["layer_name"].extend(layer.name for layer in result.layers)
                feats["layer_type"].extend(layer.type for layer in result.layers)
                feats["proxy"].extend([proxy] * n_layers)
                feats["value"].extend(values.tolist())
                feats["nan_reason"].extend(reason if math.isnan(v) else None for v in values)
            network = {"n_layers": float(n_layers), **result.network}
            for proxy, value in network.items():
                stats["arch_id"].append(arch_id)
                stats["proxy"].append(proxy)
                stats["value"].append(value)
                stats["extract_ms"].append(elapsed_ms)
                stats["nan_reason"].append(result.nan_reasons.get(f"net:{proxy}"))
            gc.collect()
    finally:
        if freeze:
            gc.unfreeze()
    seconds = time.perf_counter() - started
    metadata = shard_metadata(settings, batch.indices, device, len(arch_ids))
    write_parquet(pa.table(feats, schema=FEATURE_SCHEMA), features_path, metadata)
    write_parquet(pa.table(stats, schema=ARCH_STATS_SCHEMA), arch_stats_path, metadata)
    nan_values = int(np.isnan(np.asarray(feats["value"], dtype=float)).sum())
    return ShardSummary(len(arch_ids), seconds, nan_values, reasons)


def shard_metadata(
    settings: ExtractSettings, batch_indices: Sequence[int], device: torch.device, n_archs: int
) -> dict[str, str]:
    return {
        "parzc_version": parzc.__version__,
        "torch_version": torch.__version__,
        "space": settings.space,
        "dataset": settings.dataset,
        "feature_set": settings.feature_set,
        "layer_proxies": ",".join(settings.layer_proxies),
        "network_proxies": ",".join(settings.network_proxies),
        "batch_seed": str(settings.batch_seed),
        "batch_size": str(settings.batch_size),
        "batch_indices": ",".join(map(str, batch_indices)),
        "init_seed": str(settings.init_seed),
        "arch_seed": str(settings.arch_seed),
        **({"inputs": settings.inputs} if settings.inputs is not None else {}),
        **({"space_source": settings.space_source} if settings.space_source else {}),
        "device": str(device),
        "n_archs": str(n_archs),
        "config_hash": settings.digest(),
    }
