"""Integrity checks of the feature store's shards, and quarantine of bad ones."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from parzc.extract import ARCH_STATS_SCHEMA, FEATURE_SCHEMA, arch_order

_PART = re.compile(
    r"space=(?P<space>[^/]+)/dataset=(?P<dataset>[^/]+)/set=(?P<set>[^/]+)/"
    r"part-(?P<start>\d+)-(?P<end>\d+)\.parquet$"
)
SCHEMAS = {"features": FEATURE_SCHEMA, "arch_stats": ARCH_STATS_SCHEMA}
KEYS = {"features": ["arch_id", "proxy", "layer"], "arch_stats": ["arch_id", "proxy"]}


@dataclass(frozen=True)
class Problem:
    path: Path
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def check_shard(path: Path, table_name: str, arch_seed: int | None = None) -> list[Problem]:
    """Problems of one shard file: unreadable, wrong schema, foreign rows, duplicates, wrong archs.

    With `arch_seed` (the config's permutation seed) the shard's arch_ids must be exactly the
    architectures its file name's range selects.
    """
    match = _PART.search(path.as_posix())
    if match is None:
        return [Problem(path, "file name does not follow space=/dataset=/set=/part-A-B.parquet")]
    try:
        table = pq.read_table(path)
    except Exception as exc:  # truncated or corrupt bytes surface as various arrow errors
        return [Problem(path, f"unreadable Parquet ({type(exc).__name__}: {exc})")]
    problems = []
    expected = SCHEMAS[table_name]
    got = {f.name: f.type for f in table.schema}
    for f in expected:
        if f.name not in got:
            problems.append(Problem(path, f"missing column {f.name!r}"))
        elif _value_type(got[f.name]) != _value_type(f.type):
            problems.append(
                Problem(path, f"column {f.name!r} has type {got[f.name]}, expected {f.type}")
            )
    if problems:
        return problems
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    for key in ("space", "dataset"):
        if meta.get(key) != match[key]:
            problems.append(
                Problem(
                    path, f"rows of {key}={meta.get(key)!r} in a {key}={match[key]!r} partition"
                )
            )
    if meta.get("feature_set") != match["set"]:
        problems.append(
            Problem(
                path, f"rows of set={meta.get('feature_set')!r} in a set={match['set']!r} partition"
            )
        )
    keys = table.select(KEYS[table_name]).cast(
        pa.schema(
            [pa.field(k, pa.string() if k == "proxy" else pa.int64()) for k in KEYS[table_name]]
        )
    )
    counts = keys.group_by(KEYS[table_name]).aggregate([([], "count_all")])
    dup = counts.filter(pc.greater(counts["count_all"], 1))
    if dup.num_rows:
        problems.append(
            Problem(
                path,
                f"{dup.num_rows} duplicated {'/'.join(KEYS[table_name])} "
                f"rows, e.g. {dup.slice(0, 1).to_pylist()[0]}",
            )
        )
    ids = np.unique(table["arch_id"].to_numpy())
    start, end = int(match["start"]), int(match["end"])
    if str(end - start + 1) != meta.get("n_archs") or len(ids) != end - start + 1:
        problems.append(
            Problem(
                path, f"holds {len(ids)} archs, its range {start}-{end} needs {end - start + 1}"
            )
        )
    elif arch_seed is not None or "arch_seed" in meta:
        seed = arch_seed if arch_seed is not None else _seed(meta["arch_seed"])
        want = np.sort(arch_order(match["space"], seed)[start : end + 1])
        if not np.array_equal(ids, want):
            problems.append(
                Problem(
                    path,
                    f"arch_ids differ from positions {start}-{end} of the "
                    f"seed-{seed} order of {match['space']}",
                )
            )
    return problems


def _value_type(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def _seed(text: str) -> int | None:
    return None if text == "None" else int(text)


def check_store(root: str | Path) -> list[Problem]:
    """Check every shard under `root` and that each features shard has its arch_stats twin."""
    root = Path(root)
    problems = []
    for table_name in SCHEMAS:
        other = "arch_stats" if table_name == "features" else "features"
        for path in sorted((root / table_name).rglob("*.parquet")):
            problems += check_shard(path, table_name)
            twin = root / other / path.relative_to(root / table_name)
            if not twin.exists():
                problems.append(Problem(path, f"no matching {other} shard {twin}"))
        for path in sorted((root / table_name).rglob("*.tmp")):
            problems.append(Problem(path, "leftover temporary file of an interrupted write"))
    return problems


def quarantine(problems: list[Problem], root: str | Path) -> list[Path]:
    """Move every problematic file (and its twin) to <root>/quarantine/, keeping the layout.

    Nothing is deleted; a rerun of the pipeline regenerates the moved shards.
    """
    root = Path(root)
    moved = []
    for path in sorted({p.path for p in problems}):
        rel = path.relative_to(root)
        parts = rel.parts
        twins = [path]
        if parts[0] in SCHEMAS:
            other = "arch_stats" if parts[0] == "features" else "features"
            twins.append(root / other / Path(*parts[1:]))
        for file in twins:
            if file.exists():
                target = root / "quarantine" / file.relative_to(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(file, target)
                moved.append(target)
    return moved
