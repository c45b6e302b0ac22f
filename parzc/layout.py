"""Where every result lives: one template per kind of output, used by the rules, the CLI and the
library alike.

Every per-item output sits in hive-style folders (`space=S/dataset=D/...`), so DuckDB and Polars
read any of them with hive partitioning, and the log and benchmark of the job that wrote it
mirror its path: `<results>/logs/<relative path>.log`, `<results>/benchmarks/<relative path>.tsv`.
`dataset` is always the target dataset, except for the store's shards, where it is the dataset
whose images the proxies were computed on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

TEMPLATES: dict[str, str] = {
    "features": "features/space={space}/dataset={dataset}/feature_set={feature_set}/"
    "part-{start}-{end}.parquet",
    "arch_stats": "arch_stats/space={space}/dataset={dataset}/feature_set={feature_set}/"
    "part-{start}-{end}.parquet",
    "proxy_table": "tables/proxy_correlation/space={space}/dataset={dataset}/proxies.csv",
    "proxy_table_md": "tables/proxy_correlation/space={space}/dataset={dataset}/proxies.md",
    "matrix": "matrices/space={space}/dataset={dataset}/matrix.npz",
    "split": "splits/space={space}/dataset={dataset}/n{size}_seed{seed}.parquet",
    # a split drawn other than uniformly over networks (`train_draw` of a predictor)
    "split_drawn": "splits/space={space}/dataset={dataset}/draw={draw}/n{size}_seed{seed}.parquet",
    "model": "models/space={space}/dataset={dataset}/predictor={predictor}/n{size}_seed{seed}.pkl",
    # a folder of pretrained weights of predictors that pretrain on the store, one file per
    # digest of pool, seed and settings (dataset: the proxies')
    "pretrained": "models/pretrained/space={space}/dataset={dataset}",
    # fits of predictors with blend parameters, one model and report per key
    # (`parzc.training.kept_fits`; dataset: the target)
    "kept_fits": "models/kept/space={space}/dataset={dataset}",
    "predictions": "predictions/space={space}/dataset={dataset}/predictor={predictor}/"
    "n{size}_seed{seed}.parquet",
    "metrics": "metrics/space={space}/dataset={dataset}/predictor={predictor}/"
    "n{size}_seed{seed}.parquet",
    "scatter": "plots/scatter/space={space}/dataset={dataset}/predictor={predictor}/"
    "n{size}_seed{seed}.png",
    "search": "search/space={space}/dataset={dataset}/strategy={strategy}/predictor={predictor}/"
    "n{size}_seed{seed}.parquet",
    "search_baseline": "search/space={space}/dataset={dataset}/strategy={strategy}/"
    "predictor=none/seed{seed}.parquet",
    # a fit on every label of a target, and its scores of every candidate
    "ranking": "rankings/space={space}/dataset={dataset}/predictor={predictor}/seed{seed}.parquet",
    "rank_model": "models/rank/space={space}/dataset={dataset}/predictor={predictor}/"
    "seed{seed}.pkl",
    "ranking_csv": "tables/ranking/space={space}/dataset={dataset}/ranking.csv",
    "ranking_md": "tables/ranking/space={space}/dataset={dataset}/ranking.md",
    # the ask / tell loop of one target: the store's features without labels, one folder per
    # round (its proposals and the labels it used, frozen), one result per training
    "loop_features": "loop/space={space}/dataset={dataset}/features.npz",
    "loop_labels": "loop/space={space}/dataset={dataset}/labels.csv",
    "loop_proposals": "loop/space={space}/dataset={dataset}/round{round}/proposals.parquet",
    "loop_frozen_labels": "loop/space={space}/dataset={dataset}/round{round}/labels.csv",
    "loop_training": "loop/space={space}/dataset={dataset}/trainings/arch{arch_id}_seed{seed}.json",
    "loop_summary": "loop/space={space}/dataset={dataset}/summary.md",
    "correlation_csv": "tables/correlation.csv",
    "correlation_md": "tables/correlation.md",
    "loss_ablation_csv": "tables/loss_ablation.csv",
    "loss_ablation_md": "tables/loss_ablation.md",
    "kendall_plot": "plots/kendall_vs_train_size.png",
    "kendall_by_size_md": "tables/kendall_by_size.md",
    "protocols_csv": "tables/protocols.csv",
    "protocols_md": "tables/protocols.md",
    "search_csv": "reports/search.csv",
    "search_md": "reports/search.md",
    "search_plot": "plots/search_accuracy_vs_cost.png",
}
SHARD_TABLES = ("features", "arch_stats")
_FIELD = re.compile(r"\{(\w+)\}")
# how a field's value is spelled in a path, and the regex a path's field must match
_FORMATS = {"start": "{:05d}", "end": "{:05d}"}
_PATTERNS = {
    "start": r"\d{5}",
    "end": r"\d{5}",
    "size": r"\d+",
    "seed": r"\d+",
    "round": r"\d+",
    "arch_id": r"\d+",
}


@dataclass(frozen=True)
class Layout:
    """The paths of one results folder."""

    results: str | Path = "results"

    @classmethod
    def of(cls, kind: str, path: str | Path) -> Layout:
        """The layout whose `kind` output `path` is."""
        depth = len(PurePosixPath(TEMPLATES[kind]).parts)
        return cls(Path(path).parents[depth - 1])

    def _root(self) -> PurePosixPath:
        return PurePosixPath(Path(self.results).as_posix())

    def path(self, kind: str, **fields: Any) -> str:
        """The path of one output, e.g. path("split", space="nb201", dataset="cifar10",
        size=78, seed=0)."""
        return str(self._root() / TEMPLATES[kind].format(**_spelled(fields)))

    def pattern(self, kind: str) -> str:
        """The Snakemake output pattern of `kind` (its fields as wildcards)."""
        return str(self._root() / TEMPLATES[kind])

    def log(self, kind: str) -> str:
        """The Snakemake log pattern of a rule producing `kind`."""
        return str(self._root() / "logs" / _stem(TEMPLATES[kind])) + ".log"

    def benchmark(self, kind: str, **fields: Any) -> str:
        """The Snakemake benchmark pattern of a rule producing `kind`, or with `fields` the
        benchmark file of one of its jobs."""
        template = str(self._root() / "benchmarks" / _stem(TEMPLATES[kind])) + ".tsv"
        if not fields:
            return template
        return template.format(**_spelled(fields))

    def glob(self, kind: str, any_name: bool = False) -> str:
        """A glob (relative to the results folder) matching every output of `kind`; with
        `any_name`, every file of the same extension in the kind's folders."""
        pattern = _FIELD.sub("*", TEMPLATES[kind])
        if any_name:
            folder, name = pattern.rsplit("/", 1)
            pattern = f"{folder}/*{PurePosixPath(name).suffix}"
        return pattern

    def parse(self, kind: str, path: str | Path) -> dict[str, str] | None:
        """The fields of a path of `kind` (None when it is not one)."""
        match = template_regex(kind).search(Path(path).as_posix())
        return match.groupdict() if match else None


def _spelled(fields: dict[str, Any]) -> dict[str, str]:
    """Field values as they are spelled in paths (ranges zero-padded)."""
    return {k: _FORMATS.get(k, "{}").format(v) for k, v in fields.items()}


def _stem(template: str) -> str:
    return template.rsplit(".", 1)[0]


def template_regex(kind: str) -> re.Pattern[str]:
    """A regex matching the end of a path of `kind`, one named group per field."""
    parts = _FIELD.split(TEMPLATES[kind])
    regex = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>{_PATTERNS.get(part, '[^/]+')})"
        for i, part in enumerate(parts)
    )
    return re.compile(f"(?:^|/){regex}$")


def wildcard_constraints() -> dict[str, str]:
    """Regexes of the fields whose values have a fixed form."""
    return dict(_PATTERNS)
