"""Search-space registry: `get_space(name)` returns an instance of a registered SearchSpace.

The built-in spaces are the benchmarks; a user's spaces join the registry under their config
names (`parzc.spaces.configured.register_config_spaces`).
"""

from __future__ import annotations

from parzc.registry import Registry
from parzc.spaces.base import DatasetInfo, InvalidArchError, SearchSpace
from parzc.spaces.choice import ChoiceSpace

SPACES: Registry[type[SearchSpace]] = Registry("search space")


def get_space(name: str) -> SearchSpace:
    if name not in SPACES:
        _load_recorded_spaces()
    return SPACES.get(name)()


def space_names() -> list[str]:
    """Every registered space: the built-in ones and the users' (recorded ones included)."""
    _load_recorded_spaces()
    return SPACES.names()


def _load_builtin_spaces() -> None:
    from parzc.spaces import autoformer, darts, nb101, nb201  # noqa: F401


_load_builtin_spaces()
BUILTIN_SPACES = frozenset(SPACES)


def _load_recorded_spaces() -> None:
    """Register the users' spaces a parent process recorded (on first need, not at import:
    a user's space module may itself import parzc.spaces)."""
    from parzc.spaces.configured import register_recorded_spaces

    register_recorded_spaces()


__all__ = [
    "BUILTIN_SPACES",
    "SPACES",
    "ChoiceSpace",
    "DatasetInfo",
    "InvalidArchError",
    "SearchSpace",
    "get_space",
    "space_names",
]
