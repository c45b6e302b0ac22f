"""Shipped resources (benchmark tables, the real CIFAR-10 image subset), checksum-verified."""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path


class ResourceError(RuntimeError):
    """A shipped resource is missing or does not match its recorded checksum."""


def resources_dir() -> Path:
    """The folder with the shipped data: $PARZC_RESOURCES, else `resources/` of the source tree."""
    env = os.environ.get("PARZC_RESOURCES")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "resources"


@cache
def _checksums() -> dict[str, str]:
    sums = resources_dir() / "SHA256SUMS"
    if not sums.is_file():
        raise ResourceError(f"missing checksum list {sums}")
    out = {}
    for line in sums.read_text().splitlines():
        digest, name = line.split()
        out[name] = digest
    return out


@cache
def resource(name: str) -> Path:
    """Path of a shipped resource, verified against resources/SHA256SUMS."""
    path = resources_dir() / name
    if not path.is_file():
        raise ResourceError(
            f"missing resource {path} (shipped with the repository; see resources/README.md)"
        )
    expected = _checksums().get(name)
    if expected is None:
        raise ResourceError(f"resource {name} has no entry in {resources_dir() / 'SHA256SUMS'}")
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != expected:
        raise ResourceError(f"checksum mismatch for {path}: {actual} != {expected}")
    return path
