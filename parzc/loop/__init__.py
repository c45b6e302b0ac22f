"""The ask / tell loop: the learned proxy decides which candidates to train next.

From Python, as Optuna's `study.ask` / `study.tell`:

    from parzc.loop import Loop
    loop = Loop("config/digits_loop.yaml")   # the config's `loop:` section
    for row in loop.ask().iter_rows(named=True):
        result = my_training(row["arch"])
        loop.tell(row["arch"], val_acc=result, seed=0)

Modules: `ask` (proposals), `acquisition`, `state` (the loop's files), `rounds`, `training`
(one `train_command` job), `oracle` (benchmarks answer from their ground truth), `simulate`
(benchmark searches against the oracle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl


class Loop:
    """A config's loop: ask for proposals, tell results; every step is written to files."""

    def __init__(self, config: str | Path | dict[str, Any] | Any) -> None:
        from parzc.config import load, validate
        from parzc.dag import Plan

        if isinstance(config, Plan):
            self.plan = config
        else:
            loaded = validate(config) if isinstance(config, dict) else load(config)
            self.plan = Plan(loaded)
        if "loop" not in self.plan.config:
            raise ValueError("the config has no loop: section (space, dataset, predictor, ...)")
        self.state = self.plan.loop_state()

    @property
    def last_round(self) -> int:
        return max(self.state.rounds(), default=0)

    def features(self) -> str:
        """The loop's feature matrix, assembled from the store the first time."""
        from parzc import stages

        space, dataset = self.state.space, self.state.dataset
        path = self.plan.layout.path("loop_features", space=space, dataset=dataset)
        if not Path(path).is_file():
            stages.assemble_target(self.plan, space, dataset, path)
        return path

    def ask(self, k: int | None = None) -> pl.DataFrame:
        """Propose up to `k` (default: the loop's batch) candidates as a new round."""
        from parzc.loop.rounds import ask_round

        loop = self.plan.config["loop"]
        return ask_round(
            self.state,
            self.features(),
            self.plan.loop_settings(),
            k or loop["batch"],
            loop["budget"],
            self.last_round + 1,
            self.plan.config["device"],
        )

    def tell(
        self,
        arch: str,
        val_acc: float | None = None,
        *,
        failed: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        """Record a training's result (`test_acc`, `train_time_s`, `seed`, `note` optional), or
        a failed training; returns the recorded row."""
        if failed == (val_acc is not None):
            raise ValueError("give a val_acc or failed=True, not both")
        row = {"arch": arch, "status": "failed" if failed else "ok", **fields}
        if val_acc is not None:
            row["val_acc"] = val_acc
        return self.state.tell(pl.DataFrame([row])).drop("line").row(0, named=True)

    def pending(self) -> pl.DataFrame:
        """Proposals not yet told."""
        return self.state.pending()

    def labels(self) -> pl.DataFrame:
        """The labels told so far, one row per candidate."""
        return self.state.labels()
