"""Search-space registry: `get_space(name)` returns an instance of a registered SearchSpace."""

from __future__ import annotations

from parzc.registry import Registry
from parzc.spaces.base import DatasetInfo, InvalidArchError, SearchSpace

SPACES: Registry[type[SearchSpace]] = Registry("search space")


def get_space(name: str) -> SearchSpace:
    return SPACES.get(name)()


def _load_builtin_spaces() -> None:
    from parzc.spaces import autoformer, darts, nb101, nb201  # noqa: F401


_load_builtin_spaces()

__all__ = ["SPACES", "DatasetInfo", "InvalidArchError", "SearchSpace", "get_space"]
