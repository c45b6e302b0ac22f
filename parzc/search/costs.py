"""What a search cost: device-seconds per phase and the ground-truth labels it used.

Phases: feature extraction (the store's per-arch `extract_ms`, for the archs the search and its
predictor's training split needed), predictor training (the train_predictor job's Snakemake
benchmark file) and scoring (measured by the search). A phase's wall seconds count as
GPU-seconds when it ran on a GPU, else as CPU-seconds. Label training time is summed from the
space's `train_time_s` and is NaN (unknown) when any label's time is not recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from parzc.io import read_metadata
from parzc.layout import TEMPLATES, Layout
from parzc.store import Store
from parzc.training.splits import load_split, split_path

if TYPE_CHECKING:
    from parzc.search.run import SearchResult


@dataclass(frozen=True)
class Benchmark:
    """One Snakemake benchmark file, averaged over its repeats."""

    seconds: float  # wall clock (column `s`)
    cpu_time_s: float  # column `cpu_time`; NaN when Snakemake could not sample the process


def read_benchmark(path: str | Path) -> Benchmark:
    table = pl.read_csv(path, separator="\t", null_values=["NA", "-"], infer_schema_length=None)
    if table.is_empty():
        raise ValueError(f"benchmark file {path} has no rows")
    cpu = table["cpu_time"].cast(pl.Float64).fill_null(np.nan)
    return Benchmark(float(table["s"].cast(pl.Float64).mean()), float(cpu.mean()))


@dataclass(frozen=True)
class TrainingRun:
    """One train_predictor job: label, size, seed and files (paths of parzc.layout)."""

    predictor: str
    train_size: int
    seed: int
    model: Path
    predictions: Path
    split: Path
    benchmark: Path

    @classmethod
    def locate(
        cls,
        layout: Layout,
        space: str,
        dataset: str,
        predictor: str,
        size: int,
        seed: int,
        draw: str | None = None,
    ) -> TrainingRun:
        """The files of one fit; `draw` is how its split was drawn (None: as its predictions
        file records, else uniformly over networks)."""
        fields = dict(space=space, dataset=dataset, predictor=predictor, size=size, seed=seed)
        predictions = Path(layout.path("predictions", **fields))
        if draw is None:
            draw = read_metadata(predictions).get("train_draw") if predictions.is_file() else None
        return cls(
            predictor=predictor,
            train_size=size,
            seed=seed,
            model=Path(layout.path("model", **fields)),
            predictions=predictions,
            split=Path(split_path(layout, space, dataset, size, seed, draw or "networks")),
            benchmark=Path(layout.benchmark("predictions", **fields)),
        )

    @classmethod
    def from_model_path(cls, layout: Layout, model: str | Path) -> TrainingRun:
        """The run that saved `model` (a path of the layout's `model` kind)."""
        fields = layout.parse("model", model)
        if fields is None:
            raise ValueError(f"model file {model} is not named like <results>/{TEMPLATES['model']}")
        return cls.locate(
            layout,
            fields["space"],
            fields["dataset"],
            fields["predictor"],
            int(fields["size"]),
            int(fields["seed"]),
        )

    def files(self) -> dict[str, str]:
        return {k: str(getattr(self, k)) for k in ("model", "predictions", "split", "benchmark")}


@dataclass(frozen=True)
class Training:
    """What training the predictor cost and used."""

    seconds: float
    cpu_time_s: float
    device: str
    arch_ids: np.ndarray  # the labelled training split
    features: list[str]  # the per-layer proxies the predictor reads
    pool_ids: np.ndarray  # networks it read without labels (pretraining); empty if none


def load_training(run: TrainingRun) -> Training:
    """What the run's training cost: the train job's Snakemake benchmark (wall and CPU seconds
    of the whole job), or, for a model trained outside Snakemake (`parzc train`), the fit and
    prediction seconds its predictions file records (CPU time then unknown); a kept fit
    re-blended (`parzc.training.kept_fits`) and pretrained weights reused are charged too."""
    for path in (run.predictions, run.split):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path} (written by the train_predictor job) does not exist")
    meta = read_metadata(run.predictions)
    report = json.loads(meta["fit_report"])
    if Path(run.benchmark).is_file():
        bench = read_benchmark(run.benchmark)
    else:
        bench = Benchmark(report["fit_seconds"] + report["predict_seconds"], float("nan"))
    train_ids, _ = load_split(run.split)
    pool_ids = np.zeros(0, dtype=np.int64)
    seconds = bench.seconds
    if Path(run.benchmark).is_file() and report.get("kept_fit"):
        seconds += report["fit_seconds"]  # the job re-blended a kept fit: charge that fit
    if report.get("pretrain_epochs", 0) > 0:  # pretrained on every network of the pool
        held_out = pl.read_parquet(run.predictions, columns=["network_id"])["network_id"]
        pool_ids = np.union1d(held_out.unique().to_numpy(), train_ids)
        if report.get("pretrained_reused"):  # weights made by an earlier job: charge them here
            seconds += report["pretrain_seconds"]
    return Training(
        seconds=seconds,
        cpu_time_s=bench.cpu_time_s,
        device=report["device"],
        arch_ids=train_ids,
        features=meta["features"].split(","),
        pool_ids=pool_ids,
    )


def _device_type(device: str) -> str:
    """ "cuda:0" -> "cuda" (torch.device(...).type without importing torch)."""
    return device.split(":")[0]


def _provides(meta: dict[str, str], column: str) -> bool:
    """Whether a shard computed `column` (a per-layer proxy, or "net:<proxy>")."""
    if column.startswith("net:"):
        return column[4:] in meta["network_proxies"].split(",")
    return column in meta["layer_proxies"].split(",")


def extraction_seconds(
    store: Store, space: str, dataset: str, arch_ids: Iterable[int], columns: Sequence[str]
) -> dict[str, float]:
    """Device type -> seconds of extracting `arch_ids` in the feature sets providing `columns`.

    One `extract_ms` per (feature set, arch): a set's shard computes all its proxies at once.
    """
    wanted = set(int(a) for a in arch_ids)
    totals: dict[str, float] = {}
    seen: set[tuple[str, int]] = set()
    for path in store.shard_files("arch_stats"):
        meta = read_metadata(path)
        if meta["space"] != space or meta["dataset"] != dataset:
            continue
        if not any(_provides(meta, c) for c in columns):
            continue
        times = pl.from_arrow(pq.read_table(path, columns=["arch_id", "extract_ms"]))
        times = times.unique("arch_id", keep="first").filter(pl.col("arch_id").is_in(wanted))
        keys = [(meta["feature_set"], a) for a in times["arch_id"].to_list()]
        if seen.intersection(keys):
            raise ValueError(f"{path}: archs already extracted in another shard of the set")
        seen.update(keys)
        device = _device_type(meta["device"])
        totals[device] = totals.get(device, 0.0) + float(times["extract_ms"].sum()) / 1e3
    missing = wanted - {a for _, a in seen} if columns else set()
    if missing:
        raise ValueError(f"no extraction time for {len(missing)} archs, e.g. {sorted(missing)[:5]}")
    return totals


def label_train_seconds(store: Store, space: str, dataset: str, arch_ids: Iterable[int]) -> float:
    """Sum of the labels' recorded training times; NaN when any is unknown, 0 for no labels."""
    ids = [int(a) for a in arch_ids]
    times = (
        pl.from_arrow(store.accuracy)
        .filter(
            (pl.col("space") == space)
            & (pl.col("dataset") == dataset)
            & pl.col("arch_id").is_in(ids)
        )["train_time_s"]
        .fill_nan(None)
    )
    if len(times) < len(ids) or times.null_count():
        return float("nan")
    return float(times.sum())


@dataclass(frozen=True)
class SearchCost:
    """The cost of one search, by phase; `cpu_s` / `gpu_s` sum the phases' device-seconds."""

    extract_archs: int
    extract_s: float
    labels: int
    train_s: float
    train_cpu_time_s: float
    score_queries: int
    score_s: float
    score_cpu_time_s: float
    label_train_s: float
    cpu_s: float
    gpu_s: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def describe(self) -> str:
        label = "unknown" if np.isnan(self.label_train_s) else f"{self.label_train_s:.1f} s"
        return (
            f"extraction {self.extract_s:.1f} s ({self.extract_archs} archs), "
            f"predictor training {self.train_s:.1f} s, scoring {self.score_s:.2f} s "
            f"({self.score_queries} queries): {self.cpu_s:.1f} CPU-seconds, "
            f"{self.gpu_s:.1f} GPU-seconds; {self.labels} ground-truth labels "
            f"(their training time: {label})"
        )


def search_cost(store: Store, result: SearchResult, training: Training | None) -> SearchCost:
    """Cost of `result`, counting the predictor's training split, and the networks it was
    pretrained on, when there is a predictor.

    Extraction is counted per canonical network (the training split holds networks only)."""
    none = np.zeros(0, dtype=np.int64)
    trained = training.arch_ids if training is not None else none
    pretrained = training.pool_ids if training is not None else none
    featurised = np.union1d(np.union1d(result.featurised, trained), pretrained)
    labelled = np.union1d(result.labelled, trained)
    columns = sorted(set(result.proxies) | set(training.features if training else []))
    device_s = extraction_seconds(store, result.space, result.proxy_dataset, featurised, columns)
    phases = [(result.score_device, result.score_s), *device_s.items()]
    if training is not None:
        phases.append((training.device, training.seconds))
    on = {kind: [s for d, s in phases if _device_type(d) == kind] for kind in ("cpu", "cuda")}
    return SearchCost(
        extract_archs=len(featurised),
        extract_s=sum(device_s.values(), 0.0),
        labels=len(labelled),
        train_s=training.seconds if training else 0.0,
        train_cpu_time_s=training.cpu_time_s if training else 0.0,
        score_queries=result.queries,
        score_s=result.score_s,
        score_cpu_time_s=result.score_cpu_time_s,
        label_train_s=label_train_seconds(store, result.space, result.dataset, labelled),
        cpu_s=sum(on["cpu"], 0.0),
        gpu_s=sum(on["cuda"], 0.0),
    )
