"""Atomic file writes: write to a temporary sibling, fsync, then rename into place.

The temporary sibling is `.<name>.<random>.tmp` in the target's folder (same file system, so the
rename is atomic). Readers never see it: the store globs `*.parquet` only, and `parzc store
check` reports a leftover one (left by a process killed mid-write) for `parzc store repair`.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata as _metadata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def _fsync_dir(folder: Path) -> None:
    """Persist a rename in `folder` (no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of `path`: it replaces `path` on success, is removed on error."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        # mkstemp creates the file private (0600); give it the mode a plain open() would, so
        # that others on a shared cluster can read the store
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, writer: Callable[[Path], None]) -> Path:
    """Call `writer(tmp_path)` and move the result to `path` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def _version(package: str) -> str:
    try:
        return _metadata.version(package)
    except _metadata.PackageNotFoundError:
        return "unknown"


def provenance() -> dict[str, str]:
    """Versions recorded in every Parquet file parzc writes (callers' metadata takes precedence)."""
    import parzc

    torch = sys.modules.get("torch")
    return {
        "parzc_version": parzc.__version__,
        "torch_version": torch.__version__ if torch is not None else _version("torch"),
        "pyarrow_version": pa.__version__,
    }


def write_parquet(
    table: pa.Table, path: str | os.PathLike, metadata: dict[str, str] | None = None
) -> Path:
    """Write an Arrow table atomically, merging `metadata` into the Parquet key-value metadata.

    Every file also records `provenance()` (versions), unless `metadata` sets those keys, and
    carries page checksums so that `parzc store check` detects flipped bytes.
    """
    merged = dict(table.schema.metadata or {})
    merged.update({k.encode(): v.encode() for k, v in provenance().items()})
    merged.update({k.encode(): str(v).encode() for k, v in (metadata or {}).items()})
    table = table.replace_schema_metadata(merged)
    return write_atomic(
        path,
        lambda tmp: pq.write_table(table, tmp, compression="zstd", write_page_checksum=True),
    )


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The Parquet key-value metadata of a file (parzc writes versions, seeds, config hashes)."""
    meta = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items()}
