"""A full-NB201 run's saved fusion fits, loaded for the post-hoc benchmarks
(`embedding_probe.py`, `pretrained_share.py`): each fit with its predictions, its split's
training networks and the networks it scored, its members' pretrained weights, and its
predictions rescored under the run's protocols."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import polars as pl
from fusion_protocol import run_matrix

from parzc.evaluation.predictions import evaluate_predictions
from parzc.evaluation.protocols import PROTOCOLS, Protocol
from parzc.io import read_metadata
from parzc.layout import Layout
from parzc.predictors.base import Predictor
from parzc.predictors.fusion import FusionPredictor
from parzc.store.matrix import FeatureMatrix
from parzc.training.splits import load_split, split_path


@dataclass
class SavedFit:
    """One (size, seed) fit of a run: the model, its predictions file, the split's training
    networks and the networks it scored, in the store's order, and the label it was trained on
    (`parzc.evaluation.protocols.LABELS`)."""

    fitted: FusionPredictor
    frame: pl.DataFrame
    train: FeatureMatrix
    rows: FeatureMatrix
    train_label: str

    @classmethod
    def load(
        cls,
        layout: Layout,
        networks: FeatureMatrix,
        target: str,
        label: str,
        size: int,
        seed: int,
    ) -> SavedFit:
        """The fit of predictor `label` on `target`'s split (`size`, `seed`, and the draw and
        training label its predictions file records); `networks` are the store's canonical
        networks."""
        keys = {"space": "nb201", "dataset": target, "predictor": label, "size": size}
        keys["seed"] = seed
        predictions = layout.path("predictions", **keys)
        frame, metadata = pl.read_parquet(predictions), read_metadata(predictions)
        draw = metadata.get("train_draw", "networks")
        train_ids, _ = load_split(split_path(layout, "nb201", target, size, seed, draw))
        return cls(
            Predictor.load(layout.path("model", **keys)),
            frame,
            networks.subset(np.isin(networks.arch_ids, train_ids)),
            networks.subset(np.isin(networks.network_ids, frame["network_id"].to_numpy())),
            metadata.get("train_label", "val"),
        )

    def pretrained(self, layout: Layout, pool: FeatureMatrix, seed: int) -> FusionPredictor:
        """The fit's members before fine-tuning: its pretraining, reloaded from the run's cache
        (a fit on no labels keeps the pretrained models)."""
        cache = layout.path("pretrained", space=pool.space, dataset=pool.dataset)
        model = replace(self.fitted, pretrain_cache=cache, device="cpu")
        model.fit(pool.subset(np.zeros(len(pool), dtype=bool)), seed, pool)
        return model

    def kendall(self, score: np.ndarray, protocols: dict[str, Protocol]) -> dict[str, float]:
        """Kendall tau per protocol of `score` (one per row of `rows`) given to every cell of
        its network, as the run's metrics score the fit's own predictions."""
        by_network = dict(zip(self.rows.network_ids.tolist(), score, strict=True))
        rescored = self.frame.with_columns(
            score=pl.col("network_id").replace_strict(by_network, return_dtype=pl.Float64)
        )
        metrics = evaluate_predictions(rescored, protocols)
        return dict(zip(metrics["protocol"].to_list(), metrics["kendall"].to_list(), strict=True))

    def saved_scores(self) -> np.ndarray:
        """The fit's saved score of each row of `rows`."""
        saved = dict(
            zip(self.frame["network_id"].to_list(), self.frame["score"].to_list(), strict=True)
        )
        return np.array([saved[n] for n in self.rows.network_ids.tolist()])


def zscored(values: np.ndarray) -> np.ndarray:
    """`values` less their mean, over their standard deviation."""
    return (values - values.mean()) / values.std()


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments naming a run's fits: RESULTS TARGET LABEL SIZES SEEDS and `--protocols`
    (comma-separated, default strict)."""
    for name in ("results", "target", "label", "sizes", "seeds"):
        parser.add_argument(name)
    parser.add_argument("--protocols", default="strict")


@dataclass
class Run:
    """What the post-hoc benchmarks read of a run for one target: its layout, the target's
    canonical networks, the pool `train_and_predict` fits with, and the protocols to score."""

    layout: Layout
    networks: FeatureMatrix
    pool: FeatureMatrix
    protocols: dict[str, Protocol]

    @classmethod
    def of(cls, args: argparse.Namespace) -> Run:
        """The run of parsed `add_fit_arguments`."""
        data = run_matrix(args.results, args.target)
        networks = data.subset(data.arch_ids == data.network_ids)
        protocols = {name: PROTOCOLS.get(name) for name in args.protocols.split(",")}
        return cls(Layout(args.results), networks, networks.unlabelled(), protocols)

    def fits(self, args: argparse.Namespace, size: int) -> Iterator[tuple[int, SavedFit]]:
        """(seed, fit) of `args.label` at `size` labels for every seed of `args.seeds`."""
        for seed in map(int, args.seeds.split(",")):
            yield (
                seed,
                SavedFit.load(self.layout, self.networks, args.target, args.label, size, seed),
            )
