"""What a shard holds: the settings its values depend on, and which networks (a seeded order of
a space's canonical networks, cut in ranges)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache

import numpy as np

from parzc.config import config_hash
from parzc.spaces import get_space


@dataclass(frozen=True)
class ExtractSettings:
    """Everything that determines a shard's values (hashed into its metadata)."""

    space: str
    dataset: str
    feature_set: str
    layer_proxies: tuple[str, ...]
    network_proxies: tuple[str, ...]
    batch_size: int = 16
    batch_seed: int = 0
    init_seed: int = 0
    arch_seed: int | None = 0  # the permutation that chose the shards' networks
    # a user's space: its proxy inputs (`ProxyInputs.to_json`) and its source and candidates
    # (canonical JSON); None for the benchmark spaces, whose digests leave them out
    inputs: str | None = None
    space_source: str | None = None

    def digest(self) -> str:
        fields = asdict(self)
        for optional in ("inputs", "space_source"):
            if fields[optional] is None:
                del fields[optional]
        return config_hash(fields)

    def proxy_inputs(self):
        """The batch's source (`ProxyInputs`), or None for the shipped CIFAR-10 images."""
        from parzc.proxies.inputs import ProxyInputs

        return None if self.inputs is None else ProxyInputs.from_json(self.inputs)


@cache
def arch_order(space: str, seed: int | None) -> np.ndarray:
    """The arch_ids of `space`'s canonical networks, permuted with `seed` (None keeps arch_id
    order); read-only. Only canonical networks are extracted: equivalent encodings read theirs.

    Cached: the DAG, the shard jobs and the store checks ask for the same orders many times.
    """
    ids = get_space(space).networks()
    order = ids.copy() if seed is None else np.random.default_rng(seed).permutation(ids)
    order.flags.writeable = False
    return order


def shard_ranges(total: int, shard_size: int) -> list[tuple[int, int]]:
    """Inclusive (start, end) positions covering `total` archs in shards of `shard_size`."""
    return [(s, min(s + shard_size, total) - 1) for s in range(0, total, shard_size)]


def shard_arch_ids(space: str, seed: int | None, start: int, end: int) -> np.ndarray:
    order = arch_order(space, seed)
    if not 0 <= start <= end < len(order):
        raise ValueError(
            f"arch range {start}-{end} is out of bounds for {space} "
            f"({len(order)} architectures: 0-{len(order) - 1})"
        )
    return order[start : end + 1]
