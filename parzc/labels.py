"""Labels files: measured accuracies of a space's candidates, one file per (space, dataset).

A labels file is CSV or Parquet with the columns

    arch          the encoding (required)
    val_acc       validation accuracy, in the declared range (required; empty for a failure)
    test_acc      test accuracy (optional)
    train_time_s  seconds the training took (optional, >= 0)
    seed          the training seed (optional): two rows of one (arch, seed) must agree
    status        `ok` (default) or `failed`: a training that produced no accuracy
    note          free text (optional)

Rows are appended, never edited: several rows of one arch (seeds) are averaged and counted. A bad
row is an error naming the file, the line and the value; nothing downstream runs on a bad file.
"""

from __future__ import annotations

import fcntl
import math
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from parzc.io import write_atomic

if TYPE_CHECKING:
    from parzc.spaces.base import SearchSpace

COLUMNS: dict[str, pl.DataType] = {
    "arch": pl.String,
    "val_acc": pl.Float64,
    "test_acc": pl.Float64,
    "train_time_s": pl.Float64,
    "seed": pl.Int64,
    "status": pl.String,
    "note": pl.String,
}
REQUIRED = ("arch", "val_acc")
STATUSES = ("ok", "failed")
DEFAULT_RANGE = (0.0, 100.0)


class LabelsError(ValueError):
    """A labels file that cannot be used; the message names the file, the line and the value."""


def _read_raw(path: Path) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.from_arrow(pq.read_table(path))
    if path.suffix != ".csv":
        raise LabelsError(f"{path}: labels files are .csv or .parquet")
    try:  # every column as text first, so that a bad number is reported with its line
        options = pacsv.ConvertOptions(null_values=[""], strings_can_be_null=True)
        table = pacsv.read_csv(path, convert_options=options)
        table = table.cast(pa.schema([(n, pa.string()) for n in table.column_names]))
    except pa.ArrowInvalid as exc:
        raise LabelsError(f"{path}: not a readable CSV file ({exc})") from None
    return pl.from_arrow(table)


def _line(path: Path, row: int) -> str:
    """How a row is named in errors: its line in a CSV (header = line 1), its row otherwise."""
    return f"{path}, line {row + 2}" if path.suffix == ".csv" else f"{path}, row {row + 1}"


def _number(path: Path, row: int, column: str, value: object) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LabelsError(f"{_line(path, row)}: {column} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise LabelsError(f"{_line(path, row)}: {column} is {value!r}, not a finite number")
    return number


def read_labels(
    path: str | Path,
    space: SearchSpace,
    value_range: Sequence[float] = DEFAULT_RANGE,
) -> pl.DataFrame:
    """The validated rows of a labels file, with `arch` normalised and `arch_id`, `line` added.

    An unknown or invalid encoding, a missing or unknown column, a non-numeric, NaN, infinite or
    out-of-range value, an unknown status and conflicting rows of one (arch, seed) are errors.
    A missing file has no rows (`no_label_rows`).
    """
    path = Path(path)
    if not path.exists():
        return no_label_rows()
    raw = _read_raw(path)
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise LabelsError(
            f"{path}: missing column {missing[0]!r} (columns: {', '.join(raw.columns)}; "
            f"required: {', '.join(REQUIRED)})"
        )
    unknown = [c for c in raw.columns if c not in COLUMNS]
    if unknown:
        raise LabelsError(f"{path}: unknown column {unknown[0]!r}; known: {', '.join(COLUMNS)}")
    ids = dict(space.archs().select("arch", "arch_id").iter_rows())
    low, high = value_range
    rows: dict[str, list] = {name: [] for name in [*COLUMNS, "arch_id", "line"]}
    for i, record in enumerate(raw.iter_rows(named=True)):
        where = _line(path, i)
        arch = record["arch"]
        try:
            arch = space.normalise(arch)
        except ValueError as exc:
            raise LabelsError(f"{where}: arch {record['arch']!r} is invalid: {exc}") from None
        if arch not in ids:
            raise LabelsError(
                f"{where}: arch {record['arch']!r} is not a candidate of space {space.name!r}"
            )
        status = (record.get("status") or "ok").strip()
        if status not in STATUSES:
            raise LabelsError(f"{where}: status {status!r} is not one of {', '.join(STATUSES)}")
        values = {c: _number(path, i, c, record.get(c)) for c in ("val_acc", "test_acc")}
        if status == "ok" and values["val_acc"] is None:
            raise LabelsError(f"{where}: val_acc is empty for arch {arch!r} (status ok)")
        if status == "failed" and values["val_acc"] is not None:
            raise LabelsError(f"{where}: a failed training has no val_acc, got {values['val_acc']}")
        for column, value in values.items():
            if value is not None and not low <= value <= high:
                raise LabelsError(
                    f"{where}: {column} {value} is outside the declared range [{low}, {high}]"
                )
        train_time = _number(path, i, "train_time_s", record.get("train_time_s"))
        if train_time is not None and train_time < 0:
            raise LabelsError(f"{where}: train_time_s {train_time} is negative")
        seed = _number(path, i, "seed", record.get("seed"))
        if seed is not None and seed != int(seed):
            raise LabelsError(f"{where}: seed {record.get('seed')!r} is not an integer")
        rows["arch"].append(arch)
        rows["val_acc"].append(values["val_acc"])
        rows["test_acc"].append(values["test_acc"])
        rows["train_time_s"].append(train_time)
        rows["seed"].append(None if seed is None else int(seed))
        rows["status"].append(status)
        rows["note"].append(record.get("note"))
        rows["arch_id"].append(ids[arch])
        rows["line"].append(i)
    table = pl.DataFrame(rows, schema={**COLUMNS, "arch_id": pl.Int32, "line": pl.Int64})
    _check_conflicts(path, table)
    return table


def no_label_rows() -> pl.DataFrame:
    """The rows of a labels file that does not exist (yet)."""
    return pl.DataFrame(schema={**COLUMNS, "arch_id": pl.Int32, "line": pl.Int64})


def _check_conflicts(path: Path, table: pl.DataFrame) -> None:
    """Two rows of one (arch, seed) must report the same result (a repeated row is fine)."""
    seeded = table.filter(pl.col("seed").is_not_null())
    keys = ["arch", "seed"]
    values = ["status", "val_acc", "test_acc"]
    clashes = (
        seeded.group_by(keys)
        .agg(pl.struct(values).n_unique().alias("n"), pl.col("line"))
        .filter(pl.col("n") > 1)
        .sort(keys)
    )
    if len(clashes):
        arch, seed, _, lines = clashes.row(0)
        shown = " and ".join(_line(path, int(x)).split(", ", 1)[1] for x in sorted(lines)[:2])
        raise LabelsError(
            f"{path}: conflicting rows for arch {arch!r} seed {seed} ({shown}): the same "
            "training reported two results"
        )


def aggregate_labels(rows: pl.DataFrame, dataset: str) -> pl.DataFrame:
    """One row per labelled arch: mean accuracies and training time of its successful rows,
    `n_labels` (successful trainings counted once per distinct seed), `n_failed`."""
    distinct = pl.concat(
        [
            rows.filter(pl.col("seed").is_not_null()).unique(["arch", "seed"], keep="first"),
            rows.filter(pl.col("seed").is_null()),
        ]
    )
    ok = pl.col("status") == "ok"
    return (
        distinct.group_by("arch_id", "arch")
        .agg(
            pl.col("val_acc").filter(ok).mean(),
            pl.col("test_acc").filter(ok).mean(),
            pl.col("train_time_s").mean(),
            ok.sum().cast(pl.Int32).alias("n_labels"),
            (~ok).sum().cast(pl.Int32).alias("n_failed"),
        )
        .with_columns(pl.lit(dataset).alias("dataset"))
        .select(
            "arch_id",
            "arch",
            "dataset",
            "val_acc",
            "test_acc",
            "train_time_s",
            "n_labels",
            "n_failed",
        )
        .sort("arch_id")
    )


def append_labels(
    path: str | Path,
    rows: pl.DataFrame,
    space: SearchSpace,
    value_range: Sequence[float] = DEFAULT_RANGE,
) -> pl.DataFrame:
    """Append rows (columns among COLUMNS) to a labels file, creating it if needed; returns
    the appended rows as validated. The whole new file is validated before it replaces the old
    one, so a bad row writes nothing."""
    path = Path(path)
    unknown = [c for c in rows.columns if c not in COLUMNS]
    if unknown:
        raise LabelsError(f"unknown label column {unknown[0]!r}; known: {', '.join(COLUMNS)}")
    text = rows.select(pl.col(c).cast(pl.String) for c in rows.columns)
    old = _read_raw(path).select(pl.all().cast(pl.String)) if path.exists() else None
    combined = text if old is None else pl.concat([old, text], how="diagonal_relaxed")
    for column in REQUIRED:  # e.g. a new file whose first row is a failed training
        if column not in combined.columns:
            combined = combined.with_columns(pl.lit(None, dtype=pl.String).alias(column))
    combined = combined.select(c for c in COLUMNS if c in combined.columns)
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder) / path.name
        _write(combined, scratch, path.suffix)
        try:
            checked = read_labels(scratch, space, value_range)
        except LabelsError as exc:  # name the user's file, not the scratch copy
            raise LabelsError(
                str(exc).replace(str(scratch), f"{path} (with the new rows)")
            ) from None
    write_atomic(path, lambda tmp: _write(combined, tmp, path.suffix))
    return checked.tail(len(rows))


def _write(frame: pl.DataFrame, path: Path, suffix: str) -> None:
    if suffix == ".parquet":
        frame.select(pl.col(c).cast(COLUMNS[c]) for c in frame.columns).write_parquet(path)
    else:
        frame.write_csv(path)


@contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """An exclusive lock on a labels file's sibling `.<name>.lock` (a POSIX advisory lock), for
    writers that append concurrently (the loop's trainings, `parzc tell`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
