"""Zero-cost proxies of an untrained network: the registries of per-layer (`layerwise`) and
network-level (`network`) proxies, and their names. `compute.compute_proxies` evaluates them in a
few shared passes (`passes`); only it needs torch, so names can be checked without it.
"""

from __future__ import annotations

from collections.abc import Sequence

from parzc.proxies.layerwise import LAYER_PROXIES
from parzc.proxies.network import NETWORK_PROXIES

__all__ = ["LAYER_PROXIES", "NETWORK_PROXIES", "unique_names", "validate_proxy_names"]


def unique_names(names: Sequence[str], what: str) -> list[str]:
    if isinstance(names, str):
        raise TypeError(f"{what} must be a sequence of names, not the string {names!r}")
    return list(dict.fromkeys(names))


def validate_proxy_names(layer_proxies: Sequence[str], network_proxies: Sequence[str]) -> None:
    """Raise UnknownNameError (naming the value and the known names) for any unknown proxy."""
    for name in unique_names(layer_proxies, "layer_proxies"):
        LAYER_PROXIES.get(name)
    for name in unique_names(network_proxies, "network_proxies"):
        NETWORK_PROXIES.get(name)
