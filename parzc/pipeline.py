"""What the Snakemake DAG needs from a validated config: target paths and per-job settings."""

from __future__ import annotations

from typing import Any

from parzc.config import check_names
from parzc.costs import TrainingRun
from parzc.extract import ExtractSettings, arch_order, shard_ranges
from parzc.splits import resolve_size

__all__ = ["Plan", "check_names", "proxy_dataset_of"]


def proxy_dataset_of(config: dict[str, Any], space: str, target: str) -> str:
    """The dataset whose proxies feed `target` of `space` under `config`."""
    from parzc.spaces import get_space

    chosen = config["spaces"][space].get("proxy_dataset")
    return chosen or get_space(space).proxy_dataset or target


def strategies():
    """The search-strategy registry, imported only when a config asks for searches."""
    from parzc.search import STRATEGIES

    return STRATEGIES


class Plan:
    """Output paths of a config's pipeline, derived once from the config."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.results = config["results"]

    def arch_seed(self, space: str) -> int | None:
        return self.config["spaces"][space]["archs"]["seed"]

    def arch_count(self, space: str) -> int:
        count = self.config["spaces"][space]["archs"]["count"]
        return count if count is not None else len(arch_order(space, None))

    def target_shards(self, table: str, space: str, target: str) -> list[str]:
        """Shards of `table` whose proxies feed (space, target)."""
        return self._shards(table, space, self.proxy_dataset(space, target))

    def ranges(self, space: str) -> list[tuple[int, int]]:
        return shard_ranges(self.arch_count(space), self.config["shard_size"])

    def space_datasets(self) -> list[tuple[str, str]]:
        """(space, target dataset) pairs: what predictors are trained and evaluated on."""
        return [(s, d) for s, entry in self.config["spaces"].items() for d in entry["datasets"]]

    def proxy_dataset(self, space: str, target: str) -> str:
        """The dataset whose extracted proxies feed `target` (space's `proxy_dataset`, else the
        space's default, else the target itself)."""
        return proxy_dataset_of(self.config, space, target)

    def extracted(self) -> list[tuple[str, str]]:
        """(space, dataset) partitions the store must hold: the targets' proxy datasets."""
        pairs = [(s, self.proxy_dataset(s, d)) for s, d in self.space_datasets()]
        return list(dict.fromkeys(pairs))

    def shard(
        self, space: str, dataset: str, feature_set: str, start: int, end: int
    ) -> dict[str, Any]:
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

    def extract_settings(self, space: str, dataset: str, feature_set: str) -> dict[str, Any]:
        proxies = self.config["feature_sets"][feature_set]
        return vars(
            ExtractSettings(
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
        )

    def _shards(self, table: str, space: str | None, dataset: str | None) -> list[str]:
        return [
            f"{self.results}/{table}/space={s}/dataset={d}/set={f}/part-{a:05d}-{b:05d}.parquet"
            for s, d in self.extracted()
            if space in (None, s) and dataset in (None, d)
            for f in self.config["feature_sets"]
            for a, b in self.ranges(s)
        ]

    def feature_shards(self, space: str | None = None, dataset: str | None = None) -> list[str]:
        return self._shards("features", space, dataset)

    def arch_stat_shards(self, space: str | None = None, dataset: str | None = None) -> list[str]:
        return self._shards("arch_stats", space, dataset)

    def pool(self, space: str) -> list[int]:
        """arch_ids of the config's sample of `space` (the shards' union)."""
        order = arch_order(space, self.arch_seed(space))
        return [int(a) for a in order[: self.arch_count(space)]]

    def predictors(self) -> dict[str, dict[str, Any]]:
        return self.config["train"]["predictors"]

    def predictor_params(self, space: str, label: str) -> dict[str, Any]:
        """The label's params with the space's overrides applied."""
        overrides = self.config["spaces"][space]["predictor_params"].get(label, {})
        return {**self.predictors()[label].get("params", {}), **overrides}

    def train_sizes(self, space: str) -> list[int]:
        pool = self.arch_count(space)
        return [resolve_size(size, pool) for size in self.config["spaces"][space]["train_sizes"]]

    def experiments(self) -> list[dict[str, Any]]:
        """Every (space, dataset, predictor label, train size, seed) the config asks for."""
        return [
            {"space": s, "dataset": d, "predictor": label, "size": n, "seed": seed}
            for s, d in self.space_datasets()
            for n in self.train_sizes(s)
            for seed in self.config["train"]["seeds"]
            for label in self.predictors()
        ]

    def split_path(self, space: str, dataset: str, size: int, seed: int) -> str:
        return f"{self.results}/splits/{space}/{dataset}/n{size}_seed{seed}.parquet"

    def predictions_path(self, e: dict[str, Any]) -> str:
        return (
            f"{self.results}/predictions/space={e['space']}/dataset={e['dataset']}/"
            f"predictor={e['predictor']}/n{e['size']}_seed{e['seed']}.parquet"
        )

    def metrics_path(self, e: dict[str, Any]) -> str:
        return (
            f"{self.results}/metrics/{e['space']}/{e['dataset']}/{e['predictor']}/"
            f"n{e['size']}_seed{e['seed']}.parquet"
        )

    def metrics_files(self) -> list[str]:
        return [self.metrics_path(e) for e in self.experiments()]

    def tables(self) -> list[str]:
        if not self.experiments():
            return []
        return [
            f"{self.results}/tables/correlation.csv",
            f"{self.results}/tables/loss_ablation.csv",
            f"{self.results}/plots/kendall_vs_train_size.png",
        ]

    def scatter_plots(self) -> list[str]:
        """One scatter per (space, dataset, reported predictor) at its largest split, first seed."""
        seed = self.config["train"]["seeds"][0]
        return [
            f"{self.results}/plots/scatter/{s}/{d}/{label}_n{max(self.train_sizes(s))}_seed{seed}.png"
            for s, d in self.space_datasets()
            if self.train_sizes(s)
            for label, entry in self.predictors().items()
            if not entry["loss_ablation"]
        ]

    def proxy_tables(self) -> list[str]:
        return [
            f"{self.results}/tables/proxy_correlation/{s}_{d}.csv" for s, d in self.space_datasets()
        ]

    def search_runs(self) -> list[dict[str, Any]]:
        """Every search the config asks for, one per train seed: predictor strategies with each
        `search.predictors` label at the space's largest train size, baselines on their own."""
        search = self.config["search"]
        unknown = [p for p in search["predictors"] if p not in self.predictors()]
        if unknown:
            raise ValueError(f"search.predictors {unknown} are not train.predictors labels")
        runs = []
        for s, d in self.space_datasets():
            for strategy in search["strategies"]:
                if not strategies().get(strategy).needs_predictor:
                    trained = [(None, None)]
                elif self.train_sizes(s):
                    trained = [(p, max(self.train_sizes(s))) for p in search["predictors"]]
                else:
                    trained = []
                runs += [
                    dict(space=s, dataset=d, strategy=strategy, predictor=p, size=n, seed=seed)
                    for p, n in trained
                    for seed in self.config["train"]["seeds"]
                ]
        return runs

    def search_path(self, run: dict[str, Any]) -> str:
        base = f"{self.results}/search/{run['space']}/{run['dataset']}/{run['strategy']}"
        if run["predictor"] is None:
            return f"{base}/seed{run['seed']}.parquet"
        return f"{base}/{run['predictor']}_n{run['size']}_seed{run['seed']}.parquet"

    def search_files(self) -> list[str]:
        return [self.search_path(run) for run in self.search_runs()]

    def search_reports(self) -> list[str]:
        if not self.search_runs():
            return []
        return [
            f"{self.results}/reports/search.md",
            f"{self.results}/reports/search.csv",
            f"{self.results}/plots/search_accuracy_vs_cost.png",
        ]

    def strategy_pattern(self, needs_predictor: bool) -> str:
        """Regex of the registered strategies that do (not) need a trained predictor."""
        return "|".join(
            n for n in strategies() if strategies().get(n).needs_predictor == needs_predictor
        )

    def training_run(
        self, space: str, dataset: str, predictor: str, size: int, seed: int
    ) -> TrainingRun:
        return TrainingRun.locate(self.results, space, dataset, predictor, size, seed)
