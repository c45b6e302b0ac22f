"""Training splits: a seeded draw of labelled architectures from the extracted pool.

How networks are drawn is a registry (`SPLIT_DRAWS`): `networks` draws them uniformly (every
canonical network once, as NAS-Bench-Suite-Zero counts them); `cells` with probability
proportional to the number of the space's cells that reduce to each, as a draw of cells would
(FlowerFormer and FGP draw NB201 cells), without drawing a network twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from parzc.io import write_parquet
from parzc.layout import Layout
from parzc.registry import Registry

# draw -> (space, pool) -> each pool network's weight, or None for a uniform draw
SPLIT_DRAWS: Registry = Registry("training draw")
SPLIT_DRAWS.register("networks")(lambda space, pool: None)


@SPLIT_DRAWS.register("cells")
def cells_per_network(space: str, pool: np.ndarray) -> np.ndarray:
    """How many of `space`'s cells reduce to each network of `pool`."""
    from parzc.spaces import get_space

    networks = get_space(space).archs()["network_id"].to_numpy()
    counts = dict(zip(*np.unique(networks, return_counts=True), strict=True))
    return np.array([counts.get(int(n), 1) for n in pool], dtype=np.float64)


def resolve_size(size: int | float, pool: int) -> int:
    """A split size as a count: integers stay, fractions in (0, 1) are taken of `pool`."""
    n = int(size) if isinstance(size, int) else round(size * pool)
    if n < 2:
        raise ValueError(f"training split {size} of a pool of {pool} gives {n} < 2 archs")
    if n >= pool:
        raise ValueError(
            f"training split of {n} archs leaves none of the pool of {pool} to "
            "evaluate on; use fewer training archs or extract more"
        )
    return n


def make_split(
    pool: Sequence[int], size: int | float, seed: int, weights: np.ndarray | None = None
) -> pl.DataFrame:
    """arch_id and split ('train'/'test'): `size` archs drawn from `pool` with `seed`, each with
    probability proportional to its weight (`weights`, aligned with the sorted pool; None:
    uniform)."""
    pool = np.asarray(sorted(int(a) for a in pool), dtype=np.int32)
    n = resolve_size(size, len(pool))
    if weights is None:
        train = np.random.default_rng([seed, n]).choice(len(pool), size=n, replace=False)
    else:
        p = np.asarray(weights, dtype=np.float64) / np.sum(weights)
        train = np.random.default_rng([seed, n, 1]).choice(len(pool), size=n, replace=False, p=p)
    split = np.full(len(pool), "test", dtype=object)
    split[train] = "train"
    return pl.DataFrame({"arch_id": pool, "split": split.astype(str)})


def split_path(
    layout: Layout, space: str, dataset: str, size: int, seed: int, draw: str = "networks"
) -> str:
    """Where the split of (space, dataset, size, seed) drawn as `draw` says is saved."""
    SPLIT_DRAWS.get(draw)
    fields = {"space": space, "dataset": dataset, "size": size, "seed": seed}
    if draw == "networks":
        return layout.path("split", **fields)
    return layout.path("split_drawn", **fields, draw=draw)


def save_split(split: pl.DataFrame, path: str | Path, **meta: Any) -> None:
    write_parquet(split.to_arrow(), path, {k: str(v) for k, v in meta.items()})


def load_split(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(train arch_ids, test arch_ids) of a saved split."""
    split = pl.read_parquet(path)
    return (
        split.filter(pl.col("split") == "train")["arch_id"].to_numpy(),
        split.filter(pl.col("split") == "test")["arch_id"].to_numpy(),
    )
