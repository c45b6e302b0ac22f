"""The state of an ask / tell loop, all of it in files:

    <results>/loop/space=S/dataset=D/
      features.npz               the store's features of every candidate (no labels)
      round<r>/proposals.parquet what round r proposed (one row per candidate)
      round<r>/labels.csv        the labels round r was fitted on, frozen
      trainings/arch<i>_seed<s>.json   one result per finished training (the DAG's jobs)
    the labels file             every training's result, appended (`parzc.labels`)

A proposal is pending until the labels file has a row for it; pending proposals are never
proposed again, so a crash loses none and trains none twice. The budget counts the labelled and
failed candidates of the labels file.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from parzc.labels import aggregate_labels, append_labels, locked, read_labels
from parzc.layout import Layout
from parzc.spaces import SearchSpace, get_space


@dataclass
class LoopState:
    """The files of one target's loop."""

    layout: Layout
    space: str
    dataset: str
    labels_path: Path

    @property
    def search_space(self) -> SearchSpace:
        return get_space(self.space)

    def path(self, kind: str, **fields) -> Path:
        return Path(self.layout.path(kind, space=self.space, dataset=self.dataset, **fields))

    @property
    def label_range(self) -> tuple[float, float]:
        return tuple(getattr(self.search_space, "label_range", (0.0, 100.0)))

    def label_rows(self) -> pl.DataFrame:
        return read_labels(self.labels_path, self.search_space, self.label_range)

    def labels(self) -> pl.DataFrame:
        """One row per labelled or failed candidate (aggregated)."""
        return aggregate_labels(self.label_rows(), self.dataset)

    def rounds(self) -> list[int]:
        folder = self.path("loop_proposals", round=0).parent.parent
        found = [int(p.name[5:]) for p in folder.glob("round*") if p.name[5:].isdigit()]
        return sorted(r for r in found if self.path("loop_proposals", round=r).exists())

    def proposals(self) -> pl.DataFrame:
        """Every round's proposals, with their round."""
        frames = [
            pl.read_parquet(self.path("loop_proposals", round=r)).with_columns(
                pl.lit(r, dtype=pl.Int32).alias("round")
            )
            for r in self.rounds()
        ]
        return pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()

    def pending(self) -> pl.DataFrame:
        """Proposals the labels file has no row for yet (neither a label nor a failure)."""
        proposals = self.proposals()
        if proposals.is_empty():
            return proposals
        told = set(self.label_rows()["arch_id"].to_list())
        return proposals.filter(~pl.col("arch_id").is_in(list(told)))

    def used(self) -> int:
        """Candidates the budget has paid for: labelled or failed."""
        return len(self.labels())

    def write_round(self, round_: int, proposals: pl.DataFrame) -> Path:
        """Freeze the labels file as the round's labels, then write its proposals."""
        from parzc.io import write_atomic, write_parquet

        frozen = self.path("loop_frozen_labels", round=round_)
        if self.labels_path.exists():
            write_atomic(frozen, lambda tmp: shutil.copyfile(self.labels_path, tmp))
        else:
            write_atomic(frozen, lambda tmp: tmp.write_text("arch,val_acc\n"))
        out = self.path("loop_proposals", round=round_)
        write_parquet(proposals.to_arrow(), out, {"round": str(round_)})
        return out

    def tell(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Append label rows under a lock (trainings of one round finish concurrently)."""
        with locked(self.labels_path):
            return append_labels(self.labels_path, rows, self.search_space, self.label_range)

    def told(self, arch: str, seed: int) -> dict | None:
        """The labels file's row of a (candidate, seed) training, if it has one."""
        rows = self.label_rows().filter((pl.col("arch") == arch) & (pl.col("seed") == seed))
        return None if rows.is_empty() else rows.drop("line").row(0, named=True)


def result_json(row: dict) -> str:
    keep = ("arch", "val_acc", "test_acc", "train_time_s", "seed", "status", "note")
    return json.dumps({k: row.get(k) for k in keep if row.get(k) is not None}, sort_keys=True)
