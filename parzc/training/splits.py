"""Training splits: a seeded draw of labelled architectures from the extracted pool."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from parzc.io import write_parquet


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


def make_split(pool: Sequence[int], size: int | float, seed: int) -> pl.DataFrame:
    """arch_id and split ('train'/'test'): `size` archs drawn from `pool` with `seed`."""
    pool = np.asarray(sorted(int(a) for a in pool), dtype=np.int32)
    n = resolve_size(size, len(pool))
    train = np.random.default_rng([seed, n]).choice(len(pool), size=n, replace=False)
    split = np.full(len(pool), "test", dtype=object)
    split[train] = "train"
    return pl.DataFrame({"arch_id": pool, "split": split.astype(str)})


def save_split(split: pl.DataFrame, path: str | Path, **meta: Any) -> None:
    write_parquet(split.to_arrow(), path, {k: str(v) for k, v in meta.items()})


def load_split(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(train arch_ids, test arch_ids) of a saved split."""
    split = pl.read_parquet(path)
    return (
        split.filter(pl.col("split") == "train")["arch_id"].to_numpy(),
        split.filter(pl.col("split") == "test")["arch_id"].to_numpy(),
    )
