"""Fits kept by what they depend on, so that changing only a predictor's blend parameters
(`Predictor.blend_params`, e.g. fusion's `tree_weight`) re-blends a kept fit instead of fitting
again.

A fit's key digests the predictor's `fit_settings` for its label count (its device as resolved),
the seed, the training and pool matrices, the versions of parzc and torch, and parzc's source
code: a change to any of them fits again. The folder holds, per key, the fitted model (a hard
link to the model file the fit wrote, or a copy where links are not possible) and the fit's
report.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import torch

import parzc
from parzc.device import resolve_device
from parzc.io import write_atomic
from parzc.predictors import Predictor
from parzc.store.matrix import FeatureMatrix

log = logging.getLogger(__name__)


def fit_key(predictor: Predictor, train: FeatureMatrix, pool: FeatureMatrix, seed: int) -> str:
    """The key of a fit of `predictor` on `train` (labels included) with `pool`, seeded `seed`;
    a `device` setting counts as the device it resolves to here (`auto` on a machine without
    CUDA is the CPU)."""
    settings = predictor.fit_settings(len(train))
    if "device" in settings:
        settings["device"] = str(resolve_device(settings["device"]))
    digest = hashlib.sha256(
        json.dumps(
            [predictor.name, settings, seed, parzc.__version__, torch.__version__],
            sort_keys=True,
            default=str,
        ).encode()
    )
    for part in (train.digest(), pool.digest(), _source_digest()):
        digest.update(part.encode())
    return digest.hexdigest()[:24]


def load_kept(folder: str | Path, key: str) -> tuple[Predictor, dict[str, Any]] | None:
    """The fit kept under `key` and its report, or None; an unreadable kept fit is logged,
    naming the file, and treated as absent (the fit is made and kept again)."""
    model, report = _paths(folder, key)
    if not (model.is_file() and report.is_file()):
        return None
    try:
        return Predictor.load(model), json.loads(report.read_text())
    except (OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        log.warning(
            "kept fit %s is unreadable (%s: %s); fitting again", model, type(exc).__name__, exc
        )
        return None


def keep(folder: str | Path, key: str, model_path: str | Path, report: dict[str, Any]) -> None:
    """Keep the fit saved at `model_path` under `key`, with its report; atomically."""
    model, report_path = _paths(folder, key)
    model.parent.mkdir(parents=True, exist_ok=True)

    def link(tmp: Path) -> None:
        tmp.unlink()  # the link takes the temporary file's name
        try:
            os.link(model_path, tmp)
        except OSError:  # another file system, or links not supported
            shutil.copyfile(model_path, tmp)

    write_atomic(model, link)
    write_atomic(report_path, lambda tmp: tmp.write_text(json.dumps(report, sort_keys=True)))


def _paths(folder: str | Path, key: str) -> tuple[Path, Path]:
    return Path(folder) / f"{key}.pkl", Path(folder) / f"{key}.json"


@cache
def _source_digest() -> str:
    """A SHA-256 of every module of the installed parzc package."""
    digest = hashlib.sha256()
    root = Path(parzc.__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
