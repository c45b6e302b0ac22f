"""Integrity checks of the feature store's shards, and quarantine of bad ones.

- `check_shard`: one file, fully read: readable (page checksums verified), schema, partition
  metadata, duplicated keys, NaN values without a reason, the archs its name's range selects.
- `check_store`: every shard under a results folder, plus missing twins (features without
  arch_stats or the reverse), archs stored twice across shards, leftover temporary files.
- `check_files`: the cheaper version that `Store.assemble` runs on the shards it reads (pages
  and checksums, schema, metadata, arch ranges, twins, overlaps; no row-level group-bys).
- `quarantine`: move problematic files to <root>/quarantine/ (nothing is deleted).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from parzc.layout import template_regex
from parzc.sharding import arch_order
from parzc.store.schema import KEYS, PARTITIONS, SCHEMAS

# the partition folders of a shard path, whatever the file is called
_PARTITION = re.compile(
    "".join(rf"{key}=(?P<{key}>[^/]+)/" for key in PARTITIONS) + r"(?P<file>[^/]+)$"
)


@dataclass(frozen=True)
class Problem:
    path: Path
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass
class _Shard:
    """What inspecting one file found: its problems and (when readable) its arch_ids."""

    path: Path
    table_name: str
    partition: tuple[str, ...] | None  # (space, dataset, feature_set)
    problems: list[Problem]
    ids: np.ndarray | None = None
    # full reads: features -> {(arch_id, proxy): rows}; arch_stats -> {arch_id: n_layers}
    layers: dict | None = None


def check_shard(path: Path, table_name: str, arch_seed: int | None = None) -> list[Problem]:
    """Problems of one shard file: unreadable, wrong schema, foreign rows, duplicates, wrong archs.

    With `arch_seed` (the config's permutation seed) the shard's arch_ids must be exactly the
    architectures its file name's range selects; without it, the seed in the file's metadata.
    """
    return _inspect(Path(path), table_name, arch_seed, full=True).problems


def _inspect(
    path: Path, table_name: str, arch_seed: int | None, full: bool, strict_name: bool = True
) -> _Shard:
    """Inspect one shard. Both modes read every page (checksums verified); `full=False` skips
    the row-level checks (duplicated keys, missing layers, NaNs without reason).
    `strict_name=False` accepts any file name inside a space=/dataset=/feature_set= partition
    (ranges are checked when the name is part-A-B.parquet)."""
    match = _PARTITION.search(path.as_posix())
    rng = template_regex(table_name).search(path.as_posix()) if match else None
    if match is None or (strict_name and rng is None):
        return _Shard(
            path,
            table_name,
            None,
            [
                Problem(
                    path,
                    "file name does not follow space=/dataset=/feature_set=/part-A-B.parquet",
                )
            ],
        )
    shard = _Shard(path, table_name, tuple(match[key] for key in PARTITIONS), [])

    def fail(message: str) -> _Shard:
        shard.problems.append(Problem(path, message))
        return shard

    try:
        pf = pq.ParquetFile(path, page_checksum_verification=True)
        schema = pf.schema_arrow
    except Exception as exc:  # truncated or corrupt bytes surface as various arrow errors
        return fail(f"unreadable Parquet ({type(exc).__name__}: {_one_line(exc)})")
    expected = SCHEMAS[table_name]
    got = {f.name: f.type for f in schema}
    for f in expected:
        if f.name not in got:
            fail(f"missing column {f.name!r}")
        elif _value_type(got[f.name]) != _value_type(f.type):
            fail(f"column {f.name!r} has type {got[f.name]}, expected {f.type}")
    for name in got:
        if name not in expected.names:
            fail(f"unexpected column {name!r}")
    if shard.problems:
        return shard
    meta = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
    for key, meta_key in PARTITIONS.items():
        want = match[key]
        if meta.get(meta_key) != want:
            fail(f"rows of {key}={meta.get(meta_key)!r} in a {key}={want!r} partition")
    foreign = bool(shard.problems)
    try:
        table = pf.read()  # every page, so that every page checksum is verified
    except Exception as exc:
        return fail(f"unreadable Parquet ({type(exc).__name__}: {_one_line(exc)})")
    ids = np.unique(table["arch_id"].to_numpy())
    shard.ids = ids
    if full:
        _check_rows(shard, table)
    if table_name == "features" and meta.get("layer_proxies") == "":
        # a set of network-level proxies only: no per-layer rows; its archs are checked in
        # its arch_stats twin
        if len(ids):
            fail(f"holds per-layer values of {len(ids)} archs, but its set has no layer proxies")
        return shard
    n_archs = meta.get("n_archs")
    if n_archs is None:
        return fail("metadata has no n_archs (not a shard written by parzc extract)")
    if rng is None:
        if n_archs != str(len(ids)):
            fail(f"holds {len(ids)} archs, its metadata says n_archs={n_archs}")
        return shard
    start, end = int(rng["start"]), int(rng["end"])
    if end < start:
        return fail(f"range {start}-{end} in the file name is reversed")
    if n_archs != str(end - start + 1) or len(ids) != end - start + 1:
        return fail(f"holds {len(ids)} archs, its range {start}-{end} needs {end - start + 1}")
    if foreign:  # rows of another partition: the partition's arch order is irrelevant
        return shard
    if arch_seed is not None or "arch_seed" in meta:
        seed = arch_seed if arch_seed is not None else _seed(meta["arch_seed"])
        try:
            order = arch_order(match["space"], seed)
        except KeyError as exc:  # an unknown space
            return fail(str(exc))
        want = np.sort(order[start : end + 1])
        if not np.array_equal(ids, want):
            fail(
                f"arch_ids differ from positions {start}-{end} of the seed-{seed} order of "
                f"{match['space']} (rows from another space, seed or range)"
            )
    return shard


def _check_rows(shard: _Shard, table: pa.Table) -> None:
    """Row-level checks (full reads only): duplicated keys, NaN values without a reason,
    features vectors with missing layers; records the layer counts for the twin check."""
    keys_names = KEYS[shard.table_name]
    keys = table.select(keys_names).cast(
        pa.schema([pa.field(k, pa.string() if k == "proxy" else pa.int64()) for k in keys_names])
    )
    counts = keys.group_by(keys_names).aggregate([([], "count_all")])
    dup = counts.filter(pc.greater(counts["count_all"], 1))
    if dup.num_rows:
        shard.problems.append(
            Problem(
                shard.path,
                f"{dup.num_rows} duplicated {'/'.join(keys_names)} "
                f"rows, e.g. {dup.slice(0, 1).to_pylist()[0]}",
            )
        )
    value = table["value"]
    silent = pc.sum(pc.and_(pc.is_nan(value), pc.is_null(table["nan_reason"]))).as_py() or 0
    if silent:
        shard.problems.append(Problem(shard.path, f"{silent} NaN values without a nan_reason"))
    if shard.table_name == "arch_stats":
        n = table.filter(pc.equal(table["proxy"].cast(pa.string()), "n_layers"))
        shard.layers = dict(zip(n["arch_id"].to_pylist(), n["value"].to_pylist(), strict=True))
        return
    # features: each (arch, proxy) vector holds each of the layers 0..n-1 (duplicates: above)
    per = (
        table.select(["arch_id", "proxy", "layer"])
        .cast(pa.schema([("arch_id", pa.int64()), ("proxy", pa.string()), ("layer", pa.int64())]))
        .group_by(["arch_id", "proxy"])
        .aggregate([("layer", "count_distinct"), ("layer", "min"), ("layer", "max")])
    )
    gaps = per.filter(
        pc.or_(
            pc.not_equal(per["layer_min"], 0),
            pc.not_equal(per["layer_count_distinct"], pc.add(per["layer_max"], 1)),
        )
    )
    if gaps.num_rows:
        first = gaps.slice(0, 1).to_pylist()[0]
        shard.problems.append(
            Problem(
                shard.path,
                f"{gaps.num_rows} (arch, proxy) vectors with missing layers, e.g. arch "
                f"{first['arch_id']} {first['proxy']}: {first['layer_count_distinct']} layers of "
                f"{first['layer_min']}..{first['layer_max']}",
            )
        )
    shard.layers = {
        (a, p): n
        for a, p, n in zip(
            per["arch_id"].to_pylist(),
            per["proxy"].to_pylist(),
            per["layer_count_distinct"].to_pylist(),
            strict=True,
        )
    }


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _value_type(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def _seed(text: str) -> int | None:
    return None if text == "None" else int(text)


def _relative(path: Path) -> str | None:
    """`space=.../dataset=.../feature_set=.../<file>` of a shard path (None if it has none)."""
    match = _PARTITION.search(path.as_posix())
    return match.group(0) if match else None


def _cross_checks(shards: Sequence[_Shard]) -> list[Problem]:
    """Missing twins and archs stored in more than one shard of the same table and partition."""
    problems = []
    by_table: dict[str, dict[str, Path]] = {name: {} for name in SCHEMAS}
    for s in shards:
        rel = _relative(s.path)
        if rel is not None:
            by_table[s.table_name][rel] = s.path
    inspected = {(s.table_name, _relative(s.path)): s for s in shards}
    for s in shards:
        rel = _relative(s.path)
        other = "arch_stats" if s.table_name == "features" else "features"
        if rel is not None and rel not in by_table[other]:
            problems.append(Problem(s.path, f"no matching {other} shard for {rel}"))
        twin = inspected.get(("arch_stats", rel))
        if s.table_name == "features" and s.layers is not None and twin and twin.layers:
            wrong = [
                (a, p, n, twin.layers.get(a))
                for (a, p), n in s.layers.items()
                if twin.layers.get(a) != n
            ]
            if wrong:
                a, p, n, want = wrong[0]
                problems.append(
                    Problem(
                        s.path,
                        f"{len(wrong)} (arch, proxy) vectors disagree with the n_layers of the "
                        f"arch_stats twin, e.g. arch {a} {p}: {n} layers, n_layers={want}",
                    )
                )
    groups: dict[tuple, list[_Shard]] = {}
    for s in shards:
        if s.ids is not None and s.partition is not None:
            groups.setdefault((s.table_name, s.partition), []).append(s)
    for group in groups.values():
        owner: dict[int, Path] = {}
        for s in sorted(group, key=lambda s: s.path):
            seen = [a for a in s.ids.tolist() if a in owner]
            if seen:
                first = owner[seen[0]]
                problems.append(
                    Problem(
                        s.path,
                        f"duplicate architectures: {len(seen)} arch_ids (e.g. {seen[0]}) are also "
                        f"stored in {first}",
                    )
                )
            for a in s.ids.tolist():
                owner.setdefault(a, s.path)
    return problems


def check_files(files: dict[str, Iterable[Path]], full: bool = False) -> list[Problem]:
    """Checks of the shards an assembly reads: {"features": [...], "arch_stats": [...]}.

    Per file: every page is readable (checksums verified), the schema and partition metadata
    match, the arch count matches the file's range (and seed); across files: every features
    shard has its arch_stats twin and no arch is stored in two shards. `full=True` adds the
    row-level checks of `check_shard` (duplicated keys, missing layers, NaNs without reason).
    Any file name inside a space=/dataset=/feature_set= partition is accepted.
    """
    shards = [
        _inspect(Path(path), table_name, None, full=full, strict_name=False)
        for table_name, paths in files.items()
        for path in paths
    ]
    return [p for s in shards for p in s.problems] + _cross_checks(shards)


def check_store(root: str | Path) -> list[Problem]:
    """Check every shard under `root`, their twins and overlaps, and leftover temporary files."""
    root = Path(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise FileNotFoundError(f"results folder {root} {what}")
    shards = [
        _inspect(path, table_name, None, full=True)
        for table_name in SCHEMAS
        for path in sorted((root / table_name).rglob("*.parquet"))
    ]
    problems = [p for s in shards for p in s.problems] + _cross_checks(shards)
    for table_name in SCHEMAS:
        for path in sorted((root / table_name).rglob("*.tmp")):
            problems.append(Problem(path, "leftover temporary file of an interrupted write"))
    return sorted(problems, key=lambda p: (str(p.path), p.problem))


def quarantine(problems: list[Problem], root: str | Path) -> list[Path]:
    """Move every problematic file (and its twin) to <root>/quarantine/, keeping the layout.

    Nothing is deleted (a name already in quarantine gets a numeric suffix); a rerun of the
    pipeline regenerates the moved shards.
    """
    root = Path(root)
    moved = []
    for path in sorted({p.path for p in problems}):
        rel = path.relative_to(root)
        parts = rel.parts
        twins = [path]
        if parts[0] in SCHEMAS and path.suffix == ".parquet":
            other = "arch_stats" if parts[0] == "features" else "features"
            twins.append(root / other / Path(*parts[1:]))
        for file in twins:
            if file.exists():
                target = root / "quarantine" / file.relative_to(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                n = 1
                while target.exists():
                    target = target.with_name(f"{file.name}.{n}")
                    n += 1
                shutil.move(file, target)
                moved.append(target)
    return moved
