"""One training of the loop: run the user's `train_command` for a proposed candidate and record
its result in the labels file, once.

`train_command` is a shell command with the placeholders `{arch}` (the encoding, already
shell-quoted), `{seed}` and `{result}`: the path of a JSON object the command writes, with at
least `val_acc` and optionally `test_acc`, `train_time_s` and `note` (the format of `parzc tell
--result`). A command that exits non-zero or writes no valid result is a failed training: it is
recorded as such, counts against the budget and is never proposed again.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import tempfile
from pathlib import Path

import polars as pl

from parzc.io import write_text
from parzc.loop.state import LoopState, result_json

log = logging.getLogger(__name__)


def command_line(template: str, arch: str, seed: int, result: str | Path) -> str:
    return template.format(arch=shlex.quote(arch), seed=seed, result=shlex.quote(str(result)))


def _result(path: Path, arch: str) -> tuple[dict | None, str]:
    """(the result, "") or (None, why it is unusable)."""
    if not path.is_file():
        return None, "the command wrote no result file"
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        return None, f"the result is not JSON ({exc})"
    if not isinstance(result, dict) or "val_acc" not in result:
        return None, "the result has no val_acc"
    return result, ""


def run_training(state: LoopState, template: str, arch: str, seed: int, out: str | Path) -> dict:
    """Train `arch` with `seed` unless the labels file already has that training; append its
    label (or its failure); write the recorded row to `out` as JSON."""
    done = state.told(arch, seed)
    if done is not None:
        log.info("%s seed %d is already in %s: not trained again", arch, seed, state.labels_path)
        write_text(out, result_json(done) + "\n")
        return done
    with tempfile.TemporaryDirectory() as folder:
        result_path = Path(folder) / "result.json"
        command = command_line(template, arch, seed, result_path)
        log.info("training: %s", command)
        proc = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
        log.info("stdout:\n%s", proc.stdout[-4000:])
        if proc.stderr:
            log.info("stderr:\n%s", proc.stderr[-4000:])
        result, why = _result(result_path, arch)
    if proc.returncode != 0:
        result, why = None, f"exit status {proc.returncode}: {proc.stderr.strip()[-200:]}"
    if result is None:
        log.warning("training of %s failed: %s", arch, why)
        row = {"arch": arch, "seed": seed, "status": "failed", "note": why[:500]}
    else:
        keep = ("val_acc", "test_acc", "train_time_s", "note")
        row = {"arch": arch, "seed": seed, "status": "ok"} | {
            k: result[k] for k in keep if result.get(k) is not None
        }
    state.tell(pl.DataFrame([row]))
    recorded = state.told(arch, seed)
    write_text(out, result_json(recorded) + "\n")
    return recorded
