"""Choice spaces: a search space declared as named decisions with their options.

A user lists the decisions and writes `build(choices, num_classes)`; parzc derives the rest:

    class SmallCNN(ChoiceSpace):
        choices = {"depth": [1, 2, 3], "width": [16, 32], "activation": ["relu", "gelu"]}

        def build(self, choices, num_classes):
            ...  # an nn.Module whose forward returns (N, num_classes) logits

An architecture's encoding lists every decision in declared order,
`depth=2,width=32,activation=gelu`: stable, human-readable, and the key of labels files and
of the store's `accuracy` view.
`Choices` does the bookkeeping (encode, decode with errors naming the decision and the value,
enumerate, seeded samples, one-hot, one-decision neighbours) and needs no torch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from parzc.spaces.base import InvalidArchError

if TYPE_CHECKING:
    from torch import nn

Option = int | float | str | bool
# Spaces larger than this must be sampled (`candidates: {count: N}`), not enumerated.
MAX_ENUMERATED = 1_000_000
_DRAW_CHUNK = 4096  # draws per step of `Choices.sample`: fixed, so samples are prefix-stable


class ChoiceSpace:
    """Base class of a user's choice space: set `choices`, implement `build`.

    Optional: `canonical(choices)` maps choices that build the same network (e.g. a width
    that a depth of 0 never uses) to one representative; the store then extracts it once.
    """

    choices: ClassVar[Mapping[str, Sequence[Option]]] = {}

    def build(self, choices: dict[str, Any], num_classes: int) -> nn.Module:
        """The untrained network for `choices` (decision -> option); forward returns logits."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement build(choices, num_classes)"
        )

    def canonical(self, choices: dict[str, Any]) -> dict[str, Any]:
        """The representative of the networks equal to `choices`'s; the identity by default."""
        return choices


def _spell(option: Option) -> str:
    return str(option).lower() if isinstance(option, bool) else str(option)


class Choices:
    """Encodings of a set of named decisions: `name=option` pairs joined by commas."""

    def __init__(self, choices: Mapping[str, Sequence[Option]]) -> None:
        if not isinstance(choices, Mapping) or not choices:
            raise ValueError("a choice space needs a non-empty mapping `choices` of decisions")
        self.names: tuple[str, ...] = tuple(choices)
        self.options: tuple[tuple[Option, ...], ...] = ()
        spelled = []
        for name, options in choices.items():
            if not isinstance(name, str) or not name or any(c in name for c in ",= "):
                raise ValueError(f"decision name {name!r} must be a non-empty string without ',= '")
            if isinstance(options, str | bytes) or not isinstance(options, Sequence):
                raise ValueError(f"decision {name!r}: options must be a list, got {options!r}")
            if not options:
                raise ValueError(f"decision {name!r} has no options")
            for option in options:
                if not isinstance(option, Option):
                    raise ValueError(
                        f"decision {name!r}: option {option!r} is not an int, float, str or bool"
                    )
            texts = [_spell(o) for o in options]
            bad = [t for t in texts if not t or any(c in t for c in ",= ")]
            if bad:
                raise ValueError(f"decision {name!r}: option {bad[0]!r} is empty or has ',= '")
            if len(set(texts)) != len(texts):
                raise ValueError(f"decision {name!r}: options {texts} are not distinct")
            self.options += (tuple(options),)
            spelled.append({t: i for i, t in enumerate(texts)})
        self._index = dict(zip(self.names, spelled, strict=True))
        self.sizes = np.array([len(o) for o in self.options], dtype=np.int64)

    @property
    def total(self) -> int:
        """How many distinct encodings the decisions allow."""
        return math.prod(len(o) for o in self.options)

    # -- encodings ---------------------------------------------------------------------------

    def encode(self, choices: Mapping[str, Any]) -> str:
        """The encoding of a decision -> option mapping (validated)."""
        return self.format(self.indices(choices))

    def format(self, indices: Sequence[int]) -> str:
        return ",".join(
            f"{name}={_spell(opts[i])}"
            for name, opts, i in zip(self.names, self.options, indices, strict=True)
        )

    def indices(self, choices: Mapping[str, Any]) -> tuple[int, ...]:
        """Option index of every decision, naming a missing, unknown or bad one."""
        unknown = [k for k in choices if k not in self._index]
        if unknown:
            raise InvalidArchError(
                f"unknown decision {unknown[0]!r}; decisions: {', '.join(self.names)}"
            )
        out = []
        for name, opts in zip(self.names, self.options, strict=True):
            if name not in choices:
                raise InvalidArchError(f"decision {name!r} is missing")
            text = _spell(choices[name]) if not isinstance(choices[name], str) else choices[name]
            if text not in self._index[name]:
                raise InvalidArchError(
                    f"decision {name!r} has value {text!r}, expected one of "
                    + ", ".join(_spell(o) for o in opts)
                )
            out.append(self._index[name][text])
        return tuple(out)

    def decode(self, arch: str) -> dict[str, Option]:
        """Decision -> option of an encoding (decisions in any order, each exactly once)."""
        if not isinstance(arch, str) or not arch:
            raise InvalidArchError(f"encoding must be a non-empty string, got {arch!r}")
        pairs: dict[str, str] = {}
        for part in arch.split(","):
            name, sep, value = part.strip().partition("=")
            if not sep:
                raise InvalidArchError(f"encoding {arch!r}: {part!r} is not decision=option")
            if name in pairs:
                raise InvalidArchError(f"encoding {arch!r}: decision {name!r} appears twice")
            pairs[name] = value
        try:
            indices = self.indices(pairs)
        except InvalidArchError as exc:
            raise InvalidArchError(f"encoding {arch!r}: {exc}") from None
        return self.choices_of(indices)

    def choices_of(self, indices: Sequence[int]) -> dict[str, Option]:
        return {n: o[i] for n, o, i in zip(self.names, self.options, indices, strict=True)}

    def normalise(self, arch: str) -> str:
        """The encoding in declared decision order."""
        return self.encode(self.decode(arch))

    # -- the candidate list ------------------------------------------------------------------

    def enumerate(self) -> Iterator[str]:
        """Every encoding, in the order of the decisions' options (last decision fastest)."""
        if self.total > MAX_ENUMERATED:
            raise ValueError(
                f"the space has {self.total:,} encodings, more than {MAX_ENUMERATED:,} to "
                "enumerate; sample it (candidates: {count: N, seed: S})"
            )
        for indices in itertools.product(*(range(len(o)) for o in self.options)):
            yield self.format(indices)

    def sample(self, count: int, seed: int) -> list[str]:
        """`count` distinct encodings drawn uniformly with `seed`, in draw order.

        Draws come in fixed-size chunks from one generator, so a larger `count` with the same
        seed extends the list: the first candidates keep their positions (and arch_ids).
        """
        if count > self.total:
            raise ValueError(f"cannot sample {count} distinct encodings of a space of {self.total}")
        rng = np.random.default_rng(seed)
        seen: dict[tuple[int, ...], None] = {}
        while len(seen) < count:
            draws = rng.integers(0, self.sizes, size=(_DRAW_CHUNK, len(self.sizes)))
            for row in map(tuple, draws.tolist()):
                seen.setdefault(row)
                if len(seen) == count:
                    break
        return [self.format(indices) for indices in seen]

    # -- features for predictors and search ---------------------------------------------------

    def onehot(self, arch: str) -> np.ndarray:
        """float32 concatenation of one one-hot vector per decision."""
        indices = self.indices(self.decode(arch))
        out = np.zeros(int(self.sizes.sum()), dtype=np.float32)
        offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        out[offsets + np.asarray(indices)] = 1.0
        return out

    def neighbours(self, arch: str) -> list[str]:
        """Every encoding that differs from `arch` in exactly one decision."""
        indices = list(self.indices(self.decode(arch)))
        out = []
        for d, size in enumerate(self.sizes):
            for option in range(int(size)):
                if option != indices[d]:
                    out.append(self.format(indices[:d] + [option] + indices[d + 1 :]))
        return out
