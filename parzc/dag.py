"""What the Snakemake DAG needs from a validated config: target paths and per-job settings.

Parsing the workflow imports this module; it needs no torch (a dry run stays fast).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from parzc.constraints import Constraints, parse_constraints
from parzc.layout import Layout
from parzc.search.costs import TrainingRun
from parzc.sharding import ExtractSettings, arch_order, shard_ranges
from parzc.spaces import get_space
from parzc.training.splits import resolve_size

__all__ = ["Plan"]

# fewest labelled candidates of a user's space that a proxy correlation table is made over
MIN_CORRELATED = 3


def strategies():
    """The search-strategy registry."""
    from parzc.search.strategies import STRATEGIES

    return STRATEGIES


class Plan:
    """Outputs and job settings of a config's pipeline, derived from the config."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.results = config["results"]
        self.layout = Layout(self.results)
        # why outputs the config asks for are left out (no labels yet, ...): logged by the DAG
        self.skipped: list[str] = []
        self._labelled: dict[tuple[str, str], list[int]] = {}

    # -- extraction ------------------------------------------------------------------------

    def arch_seed(self, space: str) -> int | None:
        """The seed of the order the space's networks are extracted in; a user's space keeps
        its candidates' order (already a seeded sample), so that more candidates only add
        shards."""
        if "source" in self.config["spaces"][space]:
            return None
        return self.config["spaces"][space]["archs"]["seed"]

    def arch_count(self, space: str) -> int:
        """Networks the config extracts of `space`."""
        count = self.config["spaces"][space]["archs"]["count"]
        return count if count is not None else len(arch_order(space, None))

    def ranges(self, space: str) -> list[tuple[int, int]]:
        return shard_ranges(self.arch_count(space), self.config["shard_size"])

    def targets(self) -> list[tuple[str, str]]:
        """(space, target dataset) pairs: what predictors are trained and evaluated on."""
        return [(s, d) for s, entry in self.config["spaces"].items() for d in entry["datasets"]]

    def proxy_dataset(self, space: str, target: str) -> str:
        """The dataset whose extracted proxies feed `target` (the space's `proxy_dataset`, else
        the space's default, else the target itself)."""
        chosen = self.config["spaces"][space].get("proxy_dataset")
        return chosen or get_space(space).proxy_dataset or target

    def extracted(self) -> list[tuple[str, str]]:
        """(space, dataset) partitions the store must hold: the targets' proxy datasets."""
        return list(dict.fromkeys((s, self.proxy_dataset(s, d)) for s, d in self.targets()))

    def shard(
        self, space: str, dataset: str, feature_set: str, start: int, end: int
    ) -> ExtractSettings:
        """Settings of one configured shard; a name or range the config lacks is an error."""
        spaces = self.config["spaces"]
        if space not in spaces:
            raise ValueError(f"space {space!r} is not in the config (spaces: {', '.join(spaces)})")
        extracted = [d for s, d in self.extracted() if s == space]
        if dataset not in extracted:
            raise ValueError(
                f"dataset {dataset!r} is not extracted for {space} "
                f"(proxy datasets: {', '.join(extracted)})"
            )
        sets = self.config["feature_sets"]
        if feature_set not in sets:
            raise ValueError(
                f"feature set {feature_set!r} is not in the config (sets: {', '.join(sets)})"
            )
        ranges = self.ranges(space)
        if (start, end) not in ranges:
            shown = ", ".join(f"{a}-{b}" for a, b in ranges[:6]) + (
                " ..." if len(ranges) > 6 else ""
            )
            raise ValueError(
                f"arch range {start}-{end} is not one of the config's shards of "
                f"{space} (shard_size {self.config['shard_size']}: {shown})"
            )
        return self.extract_settings(space, dataset, feature_set)

    def extract_settings(self, space: str, dataset: str, feature_set: str) -> ExtractSettings:
        proxies = self.config["feature_sets"][feature_set]
        entry = self.config["spaces"][space]
        own = "source" in entry
        return ExtractSettings(
            inputs=get_space(space).inputs[dataset].to_json() if own else None,
            # the candidates' order, not their count: a larger sample keeps every arch_id
            space_source=(
                json.dumps(
                    {
                        "source": entry["source"],
                        "sampled": entry.get("candidates", {}).get("count") is not None,
                        "seed": entry.get("candidates", {}).get("seed", 0),
                    },
                    sort_keys=True,
                )
                if own
                else None
            ),
            space=space,
            dataset=dataset,
            feature_set=feature_set,
            layer_proxies=tuple(proxies.get("layer", [])),
            network_proxies=tuple(proxies.get("network", [])),
            batch_size=self.config["batch"]["size"],
            batch_seed=self.config["batch"]["seed"],
            init_seed=self.config["init_seed"],
            arch_seed=self.arch_seed(space),
        )

    def shards(self, table: str, space: str | None = None, dataset: str | None = None) -> list[str]:
        """Shard files of `table` ("features" / "arch_stats"), optionally of one partition."""
        return [
            self.layout.path(table, space=s, dataset=d, feature_set=f, start=a, end=b)
            for s, d in self.extracted()
            if space in (None, s) and dataset in (None, d)
            for f in self.config["feature_sets"]
            for a, b in self.ranges(s)
        ]

    def input_files(self, space: str, dataset: str) -> list[str]:
        """Files a user's space reads its proxy batch from (the extraction jobs' inputs; every
        image of a folder, so that a changed image re-extracts)."""
        if "source" not in self.config["spaces"][space]:
            return []
        return get_space(space).inputs[dataset].files()

    def labels_files(self, space: str, dataset: str) -> list[str]:
        """The labels file of (space, dataset), where the config names one that exists."""
        path = self.config["spaces"][space].get("labels", {}).get(dataset)
        return [path] if path and Path(path).exists() else []

    def target_shards(self, table: str, space: str, target: str) -> list[str]:
        """Shards of `table` whose proxies feed (space, target)."""
        return self.shards(table, space, self.proxy_dataset(space, target))

    # -- training and evaluation -----------------------------------------------------------

    def pool(self, space: str, dataset: str | None = None) -> list[int]:
        """arch_ids of the config's sample of `space`'s networks (the shards' union); for a
        user's space and a `dataset`, only the labelled ones (what splits are drawn from)."""
        order = arch_order(space, self.arch_seed(space))
        pool = [int(a) for a in order[: self.arch_count(space)]]
        if dataset is None or get_space(space).ground_truth:
            return pool
        labelled = set(self.labelled(space, dataset))
        return [a for a in pool if a in labelled]

    def labelled(self, space: str, dataset: str) -> list[int]:
        """arch_ids of a space's candidates with a successful label for `dataset`."""
        key = (space, dataset)
        if key not in self._labelled:
            table = get_space(space).accuracy_table()
            table = table.filter((pl.col("dataset") == dataset) & pl.col("val_acc").is_not_null())
            self._labelled[key] = sorted(table["arch_id"].to_list())
        return self._labelled[key]

    def predictors(self) -> dict[str, dict[str, Any]]:
        return self.config["train"]["predictors"]

    def constraints(self, space: str) -> Constraints:
        """The bounds a candidate of `space` must meet to be proposed or listed
        (`parzc.constraints`)."""
        return parse_constraints(self.config["spaces"][space].get("constraints"))

    def predictor_params(self, space: str, label: str) -> dict[str, Any]:
        """The label's params with the space's overrides applied."""
        overrides = self.config["spaces"][space]["predictor_params"].get(label, {})
        return {**self.predictors()[label].get("params", {}), **overrides}

    def train_sizes(self, space: str, dataset: str | None = None) -> list[int]:
        """The space's training-split sizes as counts. A user's space draws its splits from its
        labelled networks: sizes that leave none of them to evaluate on are left out (noted in
        `skipped`) until more labels come."""
        sizes = self.config["spaces"][space]["train_sizes"]
        if get_space(space).ground_truth or dataset is None:
            pool = self.arch_count(space)
            return [resolve_size(size, pool) for size in sizes]
        pool = len(self.pool(space, dataset))
        kept = []
        for size in sizes:
            try:
                kept.append(resolve_size(size, pool))
            except ValueError as exc:
                self._skip(f"{space}/{dataset}: train size {size} left out: {exc}")
        return sorted(set(kept), key=kept.index)

    def skipped_outputs(self) -> list[str]:
        """Why outputs the config asks for are left out (e.g. a user's space without enough
        labels yet), one line each."""
        self.all_targets()
        return list(self.skipped)

    def _skip(self, reason: str) -> None:
        if reason not in self.skipped:
            self.skipped.append(reason)

    def experiments(self) -> list[dict[str, Any]]:
        """Every (space, dataset, predictor label, train size, seed) the config asks for; a
        predictor whose training label the target lacks is left out (noted in `skipped`)."""
        return [
            {"space": s, "dataset": d, "predictor": label, "size": n, "seed": seed}
            for s, d in self.targets()
            for label in self.trained_predictors(s, d)
            for n in self.predictor_sizes(s, d, label)
            for seed in self.config["train"]["seeds"]
        ]

    def trained_predictors(self, space: str, dataset: str) -> list[str]:
        """The predictor labels trained on (space, dataset): those whose `datasets` name it
        (default: every target) and whose training label it has."""
        from parzc.evaluation.protocols import label_available

        kept = []
        for label, entry in self.predictors().items():
            if entry.get("datasets") is not None and dataset not in entry["datasets"]:
                continue
            if label_available(space, dataset, entry["train_label"]):
                kept.append(label)
            else:
                self._skip(
                    f"{space}/{dataset}: predictor {label} left out: no "
                    f"{entry['train_label']!r} label"
                )
        return kept

    def predictor_sizes(self, space: str, dataset: str, label: str) -> list[int]:
        """The training sizes `label` is trained and evaluated at: its own `train_sizes` that
        are among the space's, else the space's (searches may train it at theirs too)."""
        sizes = self.train_sizes(space, dataset)
        own = self.predictors()[label].get("train_sizes")
        return sizes if own is None else [n for n in sizes if n in own]

    def metrics_files(self) -> list[str]:
        return [self.layout.path("metrics", **e) for e in self.experiments()]

    def training_run(
        self, space: str, dataset: str, predictor: str, size: int, seed: int
    ) -> TrainingRun:
        draw = self.predictors()[predictor]["train_draw"]
        return TrainingRun.locate(self.layout, space, dataset, predictor, size, seed, draw)

    # -- reports ---------------------------------------------------------------------------

    def tables(self) -> list[str]:
        if not self.experiments():
            return []
        return [
            self.layout.path(k)
            for k in ("correlation_csv", "loss_ablation_csv", "kendall_plot", "kendall_by_size_md")
        ]

    def scatter_plots(self) -> list[str]:
        """One scatter per (space, dataset, reported predictor) at its largest split, first seed."""
        seed = self.config["train"]["seeds"][0]
        return [
            self.layout.path(
                "scatter",
                space=s,
                dataset=d,
                predictor=label,
                size=max(self.predictor_sizes(s, d, label)),
                seed=seed,
            )
            for s, d in self.targets()
            for label in self.trained_predictors(s, d)
            if self.predictor_sizes(s, d, label) and not self.predictors()[label]["loss_ablation"]
        ]

    def proxy_tables(self) -> list[str]:
        """Proxy correlation tables of every target with labels to correlate against."""
        tables = []
        for s, d in self.targets():
            if not get_space(s).ground_truth and len(self.labelled(s, d)) < MIN_CORRELATED:
                self._skip(
                    f"{s}/{d}: proxy correlation left out: {len(self.labelled(s, d))} labelled "
                    f"candidates, fewer than {MIN_CORRELATED}"
                )
                continue
            tables.append(self.layout.path("proxy_table", space=s, dataset=d))
        return tables

    # -- ranking ---------------------------------------------------------------------------

    def rank_runs(self) -> list[dict[str, Any]]:
        """(space, dataset, predictor, seed) of every ranking the config asks for: a fit on all
        of the target's labels, at least two of them."""
        runs = []
        for s, d in self.targets():
            if not self.config["rank"]["predictors"]:
                break
            labelled = len(self.labelled(s, d)) if not get_space(s).ground_truth else None
            if labelled is not None and labelled < 2:
                self._skip(f"{s}/{d}: ranking left out: {labelled} labelled candidates, need 2")
                continue
            runs += [
                dict(space=s, dataset=d, predictor=p, seed=seed)
                for p in self.config["rank"]["predictors"]
                for seed in self.config["train"]["seeds"]
            ]
        return runs

    def rank_files(self) -> list[str]:
        return [self.layout.path("ranking", **run) for run in self.rank_runs()]

    def rank_tables(self) -> list[str]:
        targets = dict.fromkeys((r["space"], r["dataset"]) for r in self.rank_runs())
        return [self.layout.path("ranking_md", space=s, dataset=d) for s, d in targets]

    def rank_inputs(self, space: str, dataset: str) -> list[str]:
        return [
            self.layout.path("ranking", **run)
            for run in self.rank_runs()
            if (run["space"], run["dataset"]) == (space, dataset)
        ]

    # -- the ask / tell loop ---------------------------------------------------------------

    def loop_state(self):
        """The files of the config's loop (`parzc.loop.state.LoopState`)."""
        from parzc.loop.state import LoopState

        loop = self.config["loop"]
        space, dataset = loop["space"], loop["dataset"]
        labels = loop["labels"] or self.config["spaces"][space].get("labels", {}).get(dataset)
        if labels is None:
            labels = self.layout.path("loop_labels", space=space, dataset=dataset)
        return LoopState(self.layout, space, dataset, Path(labels))

    def loop_settings(self):
        """How the config's loop chooses (`parzc.loop.ask.LoopSettings`)."""
        from parzc.loop.ask import LoopSettings

        loop = self.config["loop"]
        return LoopSettings(
            predictor=loop["predictor"],
            model=self.predictors()[loop["predictor"]]["model"],
            params=self.predictor_params(loop["space"], loop["predictor"]),
            acquisition=loop["acquisition"],
            acquisition_params=loop["acquisition_params"],
            zero_label=loop["zero_label"],
            ensemble=tuple(loop["ensemble"]),
            seed=loop["seed"],
            constraints=self.constraints(loop["space"]),
        )

    def loop_outputs(self) -> list[str]:
        if "loop" not in self.config:
            return []
        loop = self.config["loop"]
        return [self.layout.path("loop_summary", space=loop["space"], dataset=loop["dataset"])]

    def loop_trainings(self, proposals: str | Path) -> list[str]:
        """The training results of one round's proposals file."""
        loop = self.config["loop"]
        ids = pl.read_parquet(proposals)["arch_id"].to_list()
        return [
            self.layout.path(
                "loop_training",
                space=loop["space"],
                dataset=loop["dataset"],
                arch_id=a,
                seed=loop["seed"],
            )
            for a in ids
        ]

    # -- search ----------------------------------------------------------------------------

    def search_runs(self) -> list[dict[str, Any]]:
        """Every search the config asks for, one per train seed: predictor strategies with each
        `search.predictors` label at `search.train_size` (default: the space's largest train
        size), baselines on their own."""
        search = self.config["search"]
        unknown = [p for p in search["predictors"] if p not in self.predictors()]
        if unknown:
            raise ValueError(f"search.predictors {unknown} are not train.predictors labels")
        runs = []
        for s, d in self.targets():
            if search["strategies"] and not get_space(s).ground_truth:
                self._skip(f"{s}/{d}: searches left out: they score their picks by ground truth")
                continue
            trained_here = self.trained_predictors(s, d)
            for strategy, params in search["strategies"].items():
                size = self.search_train_size(s, params.get("train_size"))
                if not strategies().get(strategy).needs_predictor:
                    trained = [(None, None)]
                elif size is not None:
                    trained = [(p, size) for p in search["predictors"] if p in trained_here]
                else:
                    trained = []
                runs += [
                    dict(space=s, dataset=d, strategy=strategy, predictor=p, size=n, seed=seed)
                    for p, n in trained
                    for seed in self.config["train"]["seeds"]
                ]
        return runs

    def search_train_size(self, space: str, strategy_size: int | None = None) -> int | None:
        """The train size of the predictors a search of `space` uses: the strategy's own
        `train_size`, else `search.train_size`, else the space's largest (None: no training).
        A size that is not one of the space's train sizes is trained for the searches only."""
        sizes = self.train_sizes(space)
        chosen = strategy_size or self.config["search"].get("train_size")
        if chosen is None:
            return max(sizes) if sizes else None
        try:
            return resolve_size(chosen, self.arch_count(space))
        except ValueError as exc:
            raise ValueError(f"search train_size {chosen} for {space}: {exc}") from None

    def search_path(self, run: dict[str, Any]) -> str:
        if run["predictor"] is None:
            fields = {k: run[k] for k in ("space", "dataset", "strategy", "seed")}
            return self.layout.path("search_baseline", **fields)
        return self.layout.path("search", **run)

    def search_files(self) -> list[str]:
        return [self.search_path(run) for run in self.search_runs()]

    def search_reports(self) -> list[str]:
        if not self.search_runs():
            return []
        return [self.layout.path(k) for k in ("search_md", "search_csv", "search_plot")]

    def strategy_pattern(self, needs_predictor: bool) -> str:
        """Regex of the registered strategies that do (not) need a trained predictor."""
        return "|".join(
            n for n in strategies() if strategies().get(n).needs_predictor == needs_predictor
        )

    def all_targets(self) -> list[str]:
        """Every final output of the config's pipeline."""
        return (
            self.shards("features")
            + self.shards("arch_stats")
            + self.proxy_tables()
            + self.tables()
            + self.scatter_plots()
            + self.search_reports()
            + self.rank_tables()
            + self.loop_outputs()
        )
