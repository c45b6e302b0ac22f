"""Writing result tables: CSV and GitHub-flavoured Markdown, atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from parzc.io import write_atomic, write_text


def markdown_table(frame: pl.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table with floats rounded to `digits`; a missing value
    (e.g. a training size one space has and another has not) shows as "–"."""

    def fmt(value: object) -> str:
        if value is None:
            return "–"
        if isinstance(value, float):
            return "nan" if np.isnan(value) else f"{value:.{digits}f}"
        return str(value).replace("|", "\\|")  # e.g. NB201 encodings

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines) + "\n"


def write_table(
    frame: pl.DataFrame, csv_path: str | Path | None = None, md_path: str | Path | None = None
) -> None:
    """Write a table as CSV and/or Markdown, atomically."""
    if csv_path is not None:
        write_text(csv_path, frame.write_csv())
    if md_path is not None:
        write_text(md_path, markdown_table(frame))


def save_figure(fig, path: str | Path) -> None:
    """Save a matplotlib figure as PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
