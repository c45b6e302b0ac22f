"""ParZC-F: a parametric proxy over everything the store knows about an architecture.

Three branches, each a registry option (`branches`), embed one view of an architecture:
- `cell`: its cell graph (operations and DAG links) by a graph transformer
  (`parzc.predictors.cell_encoder`) whose attention (`cell_attention`) follows the links
  (`links`, PINAT), spans the cell with a learned bias per directed hop distance (`hops`),
  keeps to common paths (`flow`, FlowerFormer) or gives each head one sibling relation
  (`siblings`, NN-Former), optionally after FlowerFormer's flow passes (`cell_flow_passes`);
- `slots`: ParZC's MABN over the per-layer statistics of every stored layer proxy, each layer in
  the slot named by its role (`FeatureMatrix.slots`) rather than its position, as signed-log
  values z-scored per (proxy, slot) plus a present-mask;
- `aggregates`: the summed and network-level proxies the trees use, signed-log and z-scored.

Late fusion: the branch embeddings are concatenated and a Bayesian head scores them. ParZC's
NB201 model adds the mixer's output to the cell transformer's node tokens instead; that needs a
one-to-one map from layers to graph nodes, which NB101 and DARTS cells lack (a node's operation
has several layers in every cell of the network), whereas concatenation works in every space
and lets each branch be ablated alone.

Training has two stages:
1. `pretrain` (zero label cost): on the unlabelled pool (every extracted architecture), learn
   the ranking of a proxy ensemble, the ranks of `pretrain_proxies` combined by
   `pretrain_aggregation` (`parzc.predictors.proxy_ensembles`; and, with
   `pretrain_branch_heads`, each proxy's rank, or each of `pretrain_head_proxies`', from every
   branch alone; with `pretrain_flow_surrogate`, FGP's flow surrogate, and with
   `pretrain_slot_statistics`, the per-layer statistics, from the cell embedding);
2. fine-tune on the labelled architectures with `loss` on `target`-transformed accuracies,
   optionally averaging its weights over the last epochs (`finetune_averaging`, SWA) and
   moving the fine-tuned weights part of the way back to the pretrained ones
   (`pretrained_share`).
`members` such models (seeds seed*1000+k), optionally a ridge probe on each member's pretrained
embedding (`probe_weight`) and gradient-boosted trees (`tree_weight`) are averaged as scores
z-scored over the pool, optionally smoothed over the pool networks one edit away from each
network's cells (`neighbour_smoothing`), and optionally mixed with a label-free proxy prior
(`prior_proxies`, `prior_weight`); the uncertainty is the spread of the members' MC samples.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters
from torch.optim.swa_utils import AveragedModel

from parzc.device import resolve_device
from parzc.io import write_atomic
from parzc.neighbours import neighbour_means, smoothed
from parzc.predictors.base import (
    PREDICTORS,
    NotFittedError,
    Predictor,
    TrainingDiverged,
    check_same_columns,
)
from parzc.predictors.cell_encoder import CELL_ATTENTION, MAX_HOPS, hop_buckets
from parzc.predictors.finetuning import (
    AuxiliaryTask,
    RidgeProbe,
    cpu_state,
    interpolated,
    minibatches,
    rows,
)
from parzc.predictors.flow_surrogate import flow_surrogate
from parzc.predictors.fusion_net import (
    BRANCHES,
    SLOT_LAYOUTS,
    FusionNet,
    score_and_columns_loss,
    with_reconstruction,
)
from parzc.predictors.losses import LossSpec, make_loss
from parzc.predictors.proxy_ensembles import (
    AGGREGATIONS,
    PoolRanking,
    mixed_with_prior,
    proxy_ensemble,
)
from parzc.predictors.targets import TARGETS
from parzc.predictors.torch_base import cpu_threads, seeded, signed_log
from parzc.predictors.trees import GBDTPredictor
from parzc.store.matrix import FeatureMatrix

# pretraining settings added after weights were first cached -> the value that behaves as
# pretraining did before them: they enter the cache key only when set otherwise, so weights
# cached before stay valid (not "omit every default": a changed default must change the key)
_PRETRAIN_SETTINGS_ADDED = {
    "pretrain_aggregation": "mean_rank",
    "pretrain_head_proxies": None,
    "pretrain_slot_statistics": 0.0,
}

# settings that shape only the trees / only the probes: a fit without them does not depend on
# them (`FusionPredictor.fit_settings`)
_TREE_SETTINGS = ("tree_target", "tree_graph_features")
_PROBE_SETTINGS = ("probe_ridge",)


def _zscore_stats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and std over finite entries (std 1 where constant or empty)."""
    finite = np.isfinite(values)
    count = finite.sum(axis=0)
    filled = np.where(finite, values, 0.0)
    mean = filled.sum(axis=0) / np.maximum(count, 1)
    var = (np.where(finite, values - mean, 0.0) ** 2).sum(axis=0) / np.maximum(count, 1)
    std = np.sqrt(var)
    return mean, np.where(std > 0, std, 1.0)


def _standardised(values: np.ndarray, stats: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Signed-log values z-scored by `stats`, 0 where missing, followed by the present flags."""
    present = np.isfinite(values)
    scaled = np.where(present, (values - stats[0]) / stats[1], 0.0)
    return np.concatenate([scaled, present], axis=1).astype(np.float32)


def _weights_by_labels(name: str, spec: float | dict[Any, Any]) -> float | dict[int, float]:
    """A blend weight in [0, 1], or {labels: weight} with integer label counts (JSON params
    give string keys); raises naming `name` otherwise."""
    if isinstance(spec, dict):
        try:
            spec = {int(k): float(v) for k, v in spec.items()}
        except ValueError:
            raise ValueError(
                f"fusion: {name} by labels needs integer label counts, got {sorted(spec)}"
            ) from None
    weights = _weight_values(spec)
    if not weights or not all(0.0 <= w <= 1.0 for w in weights):
        raise ValueError(f"fusion: {name} must lie in [0, 1], got {spec}")
    return spec


def _weight_values(spec: float | dict[int, float]) -> list[float]:
    """Every weight `spec` gives: its value, or each label count's."""
    return list(spec.values()) if isinstance(spec, dict) else [spec]


def _weight_at(spec: float | dict[int, float], labels: int) -> float:
    """The weight of `spec` for a fit on `labels` labels: the entry with the most labels not
    above `labels` (below every entry, the smallest entry's)."""
    if not isinstance(spec, dict):
        return spec
    counts = sorted(spec)
    below = [c for c in counts if c <= labels]
    return spec[below[-1] if below else counts[0]]


@PREDICTORS.register("fusion")
@dataclass(kw_only=True, eq=False)
class FusionPredictor(Predictor):
    """ParZC-F (see the module doc): cell graph + aligned-slot MABN + aggregates, pretrained on
    the store's proxies, fine-tuned on labels, ensembled with its seeds and the trees.

    `pretrain_proxies` are aggregate columns (e.g. "net:nwot", "synflow"), their ranks combined
    by `pretrain_aggregation` (a `parzc.predictors.proxy_ensembles.AGGREGATIONS` name);
    `pretrain_epochs: 0` or an empty list turns pretraining off. `pretrain_member_proxies`
    (a list of such lists) gives member k the ensemble of entry k mod its length instead, so
    the members start from different proxy rankings. Without a pool
    (`fit(..., pool=None)`) the training architectures themselves are the pretraining set and
    the normalisation statistics' source.
    Fitted on no labels (an empty `train`, with a pool), it keeps the pretrained models alone:
    the learned proxy before the first label.
    Pretrained weights depend on the pool, the seed and the settings only, never on labels:
    with `pretrain_cache` (a folder; the pipeline sets one) they are saved under a digest of
    all three and reused by every training size and target, bitwise the same as recomputed.
    The fit report's `pretrain_seconds` is what pretraining cost, measured now or when the
    reused weights were made (`pretrained_reused` counts those), so search costs can charge it.
    `pretrain_branch_heads: true` also makes every branch learn each pretrain proxy's rank from
    its own embedding alone, so the cell encoder learns what the proxies see in a cell's
    structure instead of leaving the ranking to the aggregates branch; `pretrain_head_proxies`
    gives those heads other proxies than the ensemble's (e.g. every stored aggregate), so the
    embeddings learn more of what the store holds while the score still learns the ensemble.
    `finetune_pretraining_weight` > 0 keeps pretraining's loss, on a random pool minibatch per
    step and with this weight, while fine-tuning on the labels, so a few labels adjust the
    pretrained ranking instead of overwriting it.
    `tree_target` (a `parzc.predictors.targets.TARGETS` name) is what the trees regress:
    `rank` helps where labels are few (docs/results.md); `tree_graph_features: true` gives
    the trees the cell graphs' path features too (GRAF; `GBDTPredictor.use_graph_features`).
    `tree_weight` may depend on the number of training labels, as {labels: weight}: the entry
    with the most labels not above the training set's applies (below every entry, the smallest
    entry's), e.g. {0: 0.5, 781: 0} keeps the trees for fewer than 781 labels only; the more
    labels, the less they add.
    `probe_weight` > 0 (a weight, or {labels: weight} as `tree_weight`) fits, for each member,
    a ridge regression (penalty `probe_ridge`) of the training labels' ranks on its embedding
    before fine-tuning (`RidgeProbe`), and mixes the probes' mean with the fine-tuned members'
    at this weight, before the trees; it needs pretraining.
    `pretrained_share` > 0 (a weight, or {labels: weight} as `tree_weight`) interpolates each
    member's weights after fine-tuning towards its pretrained ones: share x pretrained +
    (1 - share) x fine-tuned (WiSE-FT's weight-space ensemble, `interpolated`), so a few labels
    move the pretrained ranking part of the way; it needs pretraining.
    `finetune_averaging` > 0 (a share of the fine-tuning epochs, or {labels: share} as
    `tree_weight`) is stochastic weight averaging (Izmailov et al., 2018): the learning rate
    stops annealing when the last share of the epochs begins, and each member keeps the mean of
    its weights at the ends of those epochs (`torch.optim.swa_utils.AveragedModel`).
    `neighbour_smoothing` > 0 mixes each score, with this weight, with the mean pool score of
    its neighbours: the networks of the nearest operation encodings of each of its cells,
    averaged over its cells (NB201: one operation changed; `parzc.neighbours`), a label-free
    prior that accuracy changes little under one edit.
    `prior_weight` > 0 (a weight, or {labels: weight} as `tree_weight`) mixes the final score,
    z-scored over the pool, with that weight with a label-free **proxy prior**: the mean rank of
    `prior_proxies` (aggregate columns) among the pool's values, z-scored over the pool
    (`PoolRanking`), so what fine-tuning on few labels moved away from is weighed back in.
    `slot_layout: packed` is the ablation of aligned slots: each arch's present layers are
    packed to the front in module order (position k = the k-th layer), as MABN sees them.
    `cell_attention` (a `CELL_ATTENTION` name) and `cell_flow_passes` shape the cell encoder
    (`parzc.predictors.cell_encoder`); `pretrain_flow_surrogate` > 0 adds FGP's pretext to
    pretraining: the cell embedding reconstructs the cell's flow surrogate
    (`parzc.predictors.flow_surrogate`, z-scored over the pool), its squared error weighted by
    this value next to the proxy ranking. `pretrain_slot_statistics` > 0 does the same with the
    store's per-layer statistics (every layer proxy of every slot, signed-log, z-scored over the
    pool; a slot an architecture lacks is not reconstructed): the cell encoder learns what the
    layers of each operation measure without the `slots` branch.
    """

    name: ClassVar[str] = "fusion"
    blend_params: ClassVar[tuple[str, ...]] = (
        "tree_weight",
        "probe_weight",
        "neighbour_smoothing",
        "prior_proxies",
        "prior_weight",
    )

    branches: list[str] = field(default_factory=lambda: ["cell", "slots", "aggregates"])
    dim: int = 64
    depth: int = 2
    cell_attention: str = "links"
    cell_flow_passes: bool = False
    pretrain_proxies: list[str] = field(
        default_factory=lambda: ["net:nwot", "net:jacov", "synflow", "net:params", "net:flops"]
    )
    pretrain_member_proxies: list[list[str]] | None = None
    pretrain_aggregation: str = "mean_rank"
    pretrain_head_proxies: list[str] | None = None
    pretrain_epochs: int = 20
    pretrain_batch_size: int = 256
    pretrain_lr: float = 1e-3
    pretrain_branch_heads: bool = False
    pretrain_flow_surrogate: float = 0.0
    pretrain_slot_statistics: float = 0.0
    finetune_pretraining_weight: float = 0.0
    epochs: int = 200
    batch_size: int = 512
    lr: float = 3e-4
    weight_decay: float = 1e-2
    loss: LossSpec = "pairwise"
    target: str = "rank"
    members: int = 1
    tree_weight: float | dict[int, float] = 0.0
    tree_target: str = "accuracy"
    tree_graph_features: bool = False
    probe_weight: float | dict[int, float] = 0.0
    probe_ridge: float = 1.0
    pretrained_share: float | dict[int, float] = 0.0
    finetune_averaging: float | dict[int, float] = 0.0
    neighbour_smoothing: float = 0.0
    prior_proxies: list[str] = field(default_factory=list)
    prior_weight: float | dict[int, float] = 0.0
    slot_layout: str = "aligned"
    mc_samples: int = 1
    eval_seed: int = 0
    device: str = "auto"
    num_threads: int = 1
    pretrain_cache: str | None = None

    _models: list[nn.Module] = field(default_factory=list, init=False, repr=False)
    _trees: GBDTPredictor | None = field(default=None, init=False, repr=False)
    _probes: list[RidgeProbe] = field(default_factory=list, init=False, repr=False)
    _prior: PoolRanking | None = field(default=None, init=False, repr=False)
    _meta: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.branches:
            raise ValueError("fusion: branches must name at least one of " + str(BRANCHES.names()))
        for name in self.branches:
            BRANCHES.get(name)
        TARGETS.get(self.target)
        TARGETS.get(self.tree_target)
        AGGREGATIONS.get(self.pretrain_aggregation)
        CELL_ATTENTION.get(self.cell_attention)
        SLOT_LAYOUTS.get(self.slot_layout)
        make_loss(self.loss)
        for name in ("dim", "depth", "epochs", "members", "mc_samples", "num_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"fusion: {name} must be >= 1, got {getattr(self, name)}")
        if self.pretrain_member_proxies is not None and not (
            self._pretraining and self.pretrain_member_proxies and all(self.pretrain_member_proxies)
        ):
            raise ValueError(
                "fusion: pretrain_member_proxies needs pretraining and a non-empty list of "
                f"proxies per entry, got {self.pretrain_member_proxies}"
            )
        if self.pretrain_head_proxies is not None and not (
            self.pretrain_branch_heads and self.pretrain_head_proxies
        ):
            raise ValueError(
                "fusion: pretrain_head_proxies needs pretrain_branch_heads: true and at least "
                f"one proxy, got {self.pretrain_head_proxies}"
            )
        for name in ("pretrain_flow_surrogate", "pretrain_slot_statistics"):
            if getattr(self, name) < 0:
                raise ValueError(f"fusion: {name} must be >= 0, got {getattr(self, name)}")
            if getattr(self, name) > 0 and "cell" not in self.branches:
                raise ValueError(f"fusion: {name} needs the 'cell' branch")
        if self.finetune_pretraining_weight < 0:
            raise ValueError(
                "fusion: finetune_pretraining_weight must be >= 0, got "
                f"{self.finetune_pretraining_weight}"
            )
        self.tree_weight = _weights_by_labels("tree_weight", self.tree_weight)
        self.probe_weight = _weights_by_labels("probe_weight", self.probe_weight)
        if self.probe_ridge <= 0:
            raise ValueError(f"fusion: probe_ridge must be > 0, got {self.probe_ridge}")
        if not self._pretraining and any(w > 0 for w in _weight_values(self.probe_weight)):
            raise ValueError("fusion: probe_weight needs pretraining (a probe of what it learned)")
        self.pretrained_share = _weights_by_labels("pretrained_share", self.pretrained_share)
        if not self._pretraining and any(w > 0 for w in _weight_values(self.pretrained_share)):
            raise ValueError("fusion: pretrained_share needs pretraining (weights to share)")
        self.finetune_averaging = _weights_by_labels("finetune_averaging", self.finetune_averaging)
        if not 0.0 <= self.neighbour_smoothing < 1.0:
            raise ValueError(
                f"fusion: neighbour_smoothing must lie in [0, 1), got {self.neighbour_smoothing}"
            )
        self.prior_weight = _weights_by_labels("prior_weight", self.prior_weight)
        if not self.prior_proxies and any(w > 0 for w in _weight_values(self.prior_weight)):
            raise ValueError("fusion: prior_weight needs prior_proxies (aggregate columns)")

    def _tree_weight_for(self, labels: int) -> float:
        """The trees' weight for a fit on `labels` labels (`tree_weight`, the class doc)."""
        return _weight_at(self.tree_weight, labels)

    def _probe_weight_for(self, labels: int) -> float:
        """The probes' weight for a fit on `labels` labels (`probe_weight`, the class doc)."""
        return _weight_at(self.probe_weight, labels)

    def _prior_weight_for(self, labels: int) -> float:
        """The proxy prior's weight for a fit on `labels` labels (the class doc)."""
        return _weight_at(self.prior_weight, labels)

    def _pretrained_share_for(self, labels: int) -> float:
        """The pretrained weights' share for a fit on `labels` labels (the class doc)."""
        return _weight_at(self.pretrained_share, labels)

    def _averaging_for(self, labels: int) -> float:
        """The share of fine-tuning epochs averaged for a fit on `labels` labels."""
        return _weight_at(self.finetune_averaging, labels)

    @property
    def _pretraining(self) -> bool:
        return self.pretrain_epochs > 0 and bool(self.pretrain_proxies)

    def _member_proxies(self, member: int) -> list[str]:
        """The proxies whose ensemble member `member` learns in pretraining."""
        if self.pretrain_member_proxies is None:
            return list(self.pretrain_proxies)
        return list(self.pretrain_member_proxies[member % len(self.pretrain_member_proxies)])

    @property
    def _branch_outputs(self) -> int:
        """Outputs of each branch's pretraining head: one per head proxy, or 0 (no heads)."""
        if not (self._pretraining and self.pretrain_branch_heads):
            return 0
        return len(self._head_proxies)

    @property
    def _head_proxies(self) -> list[str]:
        """The proxies each branch head learns to rank: `pretrain_head_proxies`, by default
        `pretrain_proxies`."""
        heads = self.pretrain_head_proxies
        return list(self.pretrain_proxies if heads is None else heads)

    def _reconstruction_targets(self, pool: FeatureMatrix) -> list[tuple[np.ndarray, float]]:
        """(targets z-scored over `pool`, loss weight) of each target the cell embedding
        reconstructs in pretraining: the flow surrogate, the slot statistics."""
        if not self._pretraining:
            return []
        blocks = []
        if self.pretrain_flow_surrogate > 0:
            surrogate = flow_surrogate(
                pool.graph_ops, pool.graph_adjacency, len(pool.graph_vocabulary)
            )
            blocks.append((surrogate, self.pretrain_flow_surrogate))
        if self.pretrain_slot_statistics > 0:
            blocks.append((self._slot_values(pool), self.pretrain_slot_statistics))
        zscored = []
        for values, weight in blocks:  # NaN stays NaN: nothing to reconstruct there
            mean, std = _zscore_stats(values)
            zscored.append(((values - mean) / std, weight))
        return zscored

    def _pretraining_targets(
        self,
        pool: FeatureMatrix,
        reconstructions: list[tuple[np.ndarray, float]],
        device: torch.device,
    ) -> dict[tuple[str, ...], Tensor]:
        """Pretraining's targets over `pool` for each distinct member ensemble
        (`_member_proxies`): the ensemble's ranking, each head proxy's ranking once per branch
        (with branch heads) and the reconstruction blocks; empty without pretraining."""
        if not self._pretraining:
            return {}
        heads = [proxy_ensemble(pool, [p]) for p in self._head_proxies if self._branch_outputs]
        blocks = [block for block, _ in reconstructions]
        ensembles = dict.fromkeys(tuple(self._member_proxies(k)) for k in range(self.members))
        targets = {}
        for proxies in ensembles:
            columns = [proxy_ensemble(pool, proxies, self.pretrain_aggregation)]
            columns += heads * len(self.branches)
            stacked = np.concatenate([np.stack(columns, axis=1), *blocks], axis=1)
            targets[proxies] = torch.tensor(stacked, dtype=torch.float32, device=device)
        return targets

    def _new_model(self, shapes: dict[str, int]) -> FusionNet:
        return FusionNet(
            self.branches,
            shapes,
            self.dim,
            self.depth,
            self._branch_outputs,
            shapes.get("reconstructions", 0),
            cell_attention=self.cell_attention,
            cell_flow_passes=self.cell_flow_passes,
        )

    # -- inputs ------------------------------------------------------------------------------

    def _check_data(self, data: FeatureMatrix) -> None:
        if "cell" in self.branches and data.graph_ops is None:
            raise ValueError(
                f"fusion: the 'cell' branch needs cell graphs, which space {data.space!r} lacks; "
                "drop it from branches"
            )
        if "slots" in self.branches and data.slots is None:
            raise ValueError("fusion: the 'slots' branch needs FeatureMatrix.slots")
        if self.pretrain_slot_statistics > 0 and data.slots is None:
            raise ValueError("fusion: pretrain_slot_statistics needs FeatureMatrix.slots")

    def _slot_values(self, data: FeatureMatrix) -> np.ndarray:
        slots = SLOT_LAYOUTS.get(self.slot_layout)(data.slots.astype(np.float64))
        return signed_log(slots.reshape(len(data), -1))

    def _statistics(self, data: FeatureMatrix) -> dict[str, Any]:
        """Normalisation statistics, from the pool (or the training set)."""
        stats: dict[str, Any] = {
            "aggregate_names": list(data.aggregate_names),
            "aggregates": _zscore_stats(signed_log(data.aggregates)),
        }
        if data.slots is not None:
            flat = self._slot_values(data)
            stats |= {
                "slot_names": list(data.slot_names),
                "slot_proxies": list(data.slot_proxies),
                "slots": _zscore_stats(flat),
            }
        if data.graph_ops is not None:
            stats["graph_vocabulary"] = list(data.graph_vocabulary)
        return stats

    def _inputs(self, data: FeatureMatrix, device: torch.device) -> dict[str, tuple[Tensor, ...]]:
        stats = self._meta
        check_same_columns("aggregate columns", stats["aggregate_names"], data.aggregate_names)
        arrays: dict[str, tuple[np.ndarray, ...]] = {}
        if "aggregates" in self.branches:
            arrays["aggregates"] = (
                _standardised(signed_log(data.aggregates), stats["aggregates"]),
            )
        if "slots" in self.branches:
            check_same_columns("layer slots", stats["slot_names"], data.slot_names)
            check_same_columns("slot proxies", stats["slot_proxies"], data.slot_proxies)
            flat = self._slot_values(data)
            arrays["slots"] = (_standardised(flat, stats["slots"]),)
        if "cell" in self.branches:
            check_same_columns("graph operations", stats["graph_vocabulary"], data.graph_vocabulary)
            arrays["cell"] = (data.graph_ops.astype(np.int64), data.graph_adjacency)
        inputs = {
            name: tuple(torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in parts)
            for name, parts in arrays.items()
        }
        if "cell" in inputs and self.cell_attention == "hops":  # once rather than every step
            ops, adjacency = inputs["cell"]
            inputs["cell"] = (ops, adjacency, hop_buckets(adjacency, MAX_HOPS))
        return inputs

    def _shapes(self, inputs: dict[str, tuple[Tensor, ...]], vocabulary: int) -> dict[str, int]:
        shapes = {name: int(parts[0].shape[1]) for name, parts in inputs.items()}
        if "cell" in inputs:
            shapes |= {"vocabulary": vocabulary, "nodes": shapes["cell"]}
        return shapes

    # -- training ----------------------------------------------------------------------------

    def _train_stage(
        self,
        model: nn.Module,
        inputs: dict[str, tuple[Tensor, ...]],
        target: Tensor,
        *,
        epochs: int,
        batch_size: int,
        lr: float,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        seed: int,
        forward: Callable[[dict[str, tuple[Tensor, ...]]], Tensor] | None = None,
        auxiliary: AuxiliaryTask | None = None,
        averaging: float = 0.0,
    ) -> float:
        """Train `model` (through `forward`, default the model itself) on `target`, plus
        `auxiliary`'s weighted loss on one of its random minibatches per step; with
        `averaging` > 0, hold the learning rate over the last share of the epochs and leave
        `model` with the mean of its weights at their ends (SWA). Returns the last batch's
        loss."""
        forward = forward or model
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        averaged, averaging_from = None, epochs  # SWA: from `averaging_from` on, hold and average
        if averaging > 0:
            averaged = AveragedModel(model)
            averaging_from = epochs - max(1, round(averaging * epochs))
        model.train()
        loss = torch.zeros(())
        for epoch in range(epochs):
            for idx in minibatches(target.shape[0], batch_size, gen):
                idx = idx.to(target.device)
                loss = loss_fn(forward(rows(inputs, idx)), target[idx])
                total = loss if auxiliary is None else loss + auxiliary.loss(gen)
                opt.zero_grad(set_to_none=True)
                total.backward()
                opt.step()
            if averaged is None or epoch < averaging_from:
                sched.step()
            else:
                averaged.update_parameters(model)
        if averaged is not None:
            vector_to_parameters(
                parameters_to_vector(averaged.module.parameters()), model.parameters()
            )
        model.eval()
        final = float(loss.detach())
        if not np.isfinite(final):
            raise TrainingDiverged(f"fusion: training diverged (loss {final})")
        return final

    def fit(
        self, train: FeatureMatrix, seed: int, pool: FeatureMatrix | None = None
    ) -> dict[str, Any]:
        started = time.perf_counter()
        device = resolve_device(self.device)
        acc = np.asarray(train.val_acc, dtype=np.float64)
        labelled = len(acc) > 0  # without labels: the pretrained proxy model alone
        if (labelled and len(acc) < 2) or not np.isfinite(acc).all():
            raise ValueError("fusion: needs >= 2 training architectures with finite val_acc")
        if not labelled and (pool is None or not self._pretraining):
            raise ValueError("fusion: without labels it needs a pool and pretraining")
        unlabelled = pool if pool is not None else train
        self._check_data(train)
        self._meta = self._statistics(unlabelled)
        pool_in = self._inputs(unlabelled, device)
        train_in = self._inputs(train, device) if labelled else pool_in
        shapes = self._shapes(train_in, len(train.graph_vocabulary))
        reconstructions = self._reconstruction_targets(unlabelled)
        shapes["reconstructions"] = sum(block.shape[1] for block, _ in reconstructions)
        self._meta["shapes"] = shapes
        y = torch.tensor(TARGETS.get(self.target)(acc), dtype=torch.float32, device=device)
        proxy_targets = self._pretraining_targets(unlabelled, reconstructions, device)
        pretraining_loss = with_reconstruction(
            score_and_columns_loss(make_loss("pairwise")),
            1 + len(self.branches) * self._branch_outputs,
            [(block.shape[1], weight) for block, weight in reconstructions],
        )
        loss_fn = make_loss(self.loss)
        probing = labelled and self._probe_weight_for(len(acc)) > 0
        share = self._pretrained_share_for(len(acc)) if labelled else 0.0
        averaging = self._averaging_for(len(acc)) if labelled else 0.0
        probe_target = TARGETS.get("rank")(acc)
        self._models, self._probes, losses = [], [], []
        reused, pretrain_s = 0, 0.0
        with cpu_threads(self.num_threads):
            for member in range(self.members):
                member_seed = seed * 1000 + member
                proxies = self._member_proxies(member)
                proxy_y = proxy_targets.get(tuple(proxies))
                with seeded(member_seed, device):
                    model = self._new_model(shapes).to(device)
                    if self._pretraining:
                        cached = self._cached_pretraining(unlabelled, member_seed, proxies)
                        if cached is not None and cached.exists():
                            saved = torch.load(cached, map_location=device)
                            model.load_state_dict(saved["state"])
                            pretrain_s += saved["seconds"]  # what producing them cost
                            reused += 1
                        else:
                            t0 = time.perf_counter()
                            self._train_stage(
                                model,
                                pool_in,
                                proxy_y,
                                epochs=self.pretrain_epochs,
                                batch_size=self.pretrain_batch_size,
                                lr=self.pretrain_lr,
                                loss_fn=pretraining_loss,
                                seed=member_seed,
                                forward=model.pretraining_outputs,
                            )
                            spent = time.perf_counter() - t0
                            pretrain_s += spent
                            if cached is not None:
                                saved = {
                                    "state": {k: v.cpu() for k, v in model.state_dict().items()},
                                    "seconds": spent,
                                }
                                write_atomic(cached, lambda tmp, sv=saved: torch.save(sv, tmp))
                auxiliary = None
                if self._pretraining and self.finetune_pretraining_weight > 0:
                    auxiliary = AuxiliaryTask(
                        pool_in,
                        proxy_y,
                        model.pretraining_outputs,
                        pretraining_loss,
                        self.finetune_pretraining_weight,
                        self.pretrain_batch_size,
                    )
                if not labelled:
                    self._models.append(model)
                    continue
                pretrained = cpu_state(model) if share > 0 else None
                if probing:  # on the member before fine-tuning changes it
                    encoder = copy.deepcopy(model).eval()
                    self._probes.append(
                        RidgeProbe.fit(
                            encoder, train_in, probe_target, self.probe_ridge, self.eval_seed
                        )
                    )
                with seeded(member_seed + 1, device):  # the same whether pretraining was reused
                    losses.append(
                        self._train_stage(
                            model,
                            train_in,
                            y,
                            epochs=self.epochs,
                            batch_size=self.batch_size,
                            lr=self.lr,
                            loss_fn=loss_fn,
                            seed=member_seed + 1,
                            auxiliary=auxiliary,
                            averaging=averaging,
                        )
                    )
                if pretrained is not None:
                    model.load_state_dict(interpolated(pretrained, model.state_dict(), share))
                self._models.append(model)
        self._meta["labels"] = len(acc)
        self._meta["tree_weight"] = self._tree_weight_for(len(acc))
        self._meta["probe_weight"] = self._probe_weight_for(len(acc)) if probing else 0.0
        self._meta["pretrained_share"] = share
        self._meta["finetune_averaging"] = averaging
        self._meta["prior_weight"] = self._prior_weight_for(len(acc))
        self._trees = None
        if self._meta["tree_weight"] > 0 and labelled:
            self._trees = GBDTPredictor(
                use_onehot=train.onehot is not None,
                use_graph_features=self.tree_graph_features,
                target=self.tree_target,
            )
            self._trees.fit(train, seed=seed)
        self._summarise_pool(pool_in, unlabelled)
        return {
            "epochs": self.epochs,
            "pretrain_epochs": self.pretrain_epochs if self._pretraining else 0,
            "pretrain_seconds": pretrain_s,
            "pretrained_reused": reused,
            "final_loss": float(np.mean(losses)) if losses else float("nan"),
            "seconds": time.perf_counter() - started,
            "n_train": len(acc),
            "n_pool": len(unlabelled),
            "members": self.members,
            "device": str(device),
            "seed": seed,
        }

    def _summarise_pool(self, pool_in: dict[str, tuple[Tensor, ...]], pool: FeatureMatrix) -> None:
        """Record the fitted models' pool scales (every member's and the trees' scores are
        z-scored over the pool before they are blended) and, with smoothing, the pool networks'
        blended scores and their neighbour means."""
        pool_scores = [samples.mean(axis=0) for samples in self._mc_scores(pool_in)]
        if self._trees is not None:
            pool_scores.append(self._trees.predict(pool)[0])
        self._meta["scales"] = [(float(s.mean()), float(s.std()) or 1.0) for s in pool_scores]
        probe_scores = self._probe_scores(pool_in)
        self._meta["probe_scales"] = [
            (float(s.mean()), float(s.std()) or 1.0) for s in probe_scores
        ]
        prior = self._meta.get("prior_weight", 0.0) > 0
        if self.neighbour_smoothing > 0 or prior:
            nets = self._standardised(pool_scores[: len(self._models)])
            trees = pool_scores[-1] if self._trees is not None else None
            pool_score = self._blend(nets, trees, self._standardised_probes(probe_scores))
        if self.neighbour_smoothing > 0:
            pool_ids = pool.network_ids.copy()
            # the pool networks' means, once: predicting the pool needs no neighbour search
            pool_means = neighbour_means(pool.space, pool_ids, pool_ids, pool_score)
            self._meta["neighbour_pool"] = (pool_ids, pool_score, pool_means)
            pool_score = smoothed(pool_score, pool_means, self.neighbour_smoothing)
        self._prior = None
        if prior:
            self._prior = PoolRanking.fit(pool, self.prior_proxies)
            self._meta["final_scale"] = (float(pool_score.mean()), float(pool_score.std()) or 1.0)

    def _cached_pretraining(
        self, pool: FeatureMatrix, seed: int, proxies: list[str]
    ) -> Path | None:
        """Where the pretrained weights of this pool, seed, settings and member's `proxies` are
        kept (None: no cache). The key digests the pool's features, the settings that shape
        pretraining (with the member's proxies as `pretrain_proxies`, so a member shares its
        weights with a fit whose every member learns those), the seed and the torch version."""
        if self.pretrain_cache is None:
            return None
        settings = {
            name: getattr(self, name)
            for name in (
                "branches",
                "dim",
                "depth",
                "cell_attention",
                "cell_flow_passes",
                "slot_layout",
                "weight_decay",
            )
            + tuple(n for n in self.params if n.startswith("pretrain_") and n != "pretrain_cache")
        }
        settings["pretrain_proxies"] = list(proxies)
        del settings["pretrain_member_proxies"]
        for name, before in _PRETRAIN_SETTINGS_ADDED.items():
            if settings[name] == before:
                del settings[name]
        digest = hashlib.sha256(json.dumps([settings, seed, torch.__version__]).encode())
        for array in (
            pool.arch_ids,
            pool.aggregates,
            pool.slots,
            pool.graph_ops,
            pool.graph_adjacency,
        ):
            if array is not None:
                digest.update(np.ascontiguousarray(array).tobytes())
        return Path(self.pretrain_cache) / f"{digest.hexdigest()[:24]}.pt"

    # -- prediction --------------------------------------------------------------------------

    def _mc_scores(self, inputs: dict[str, tuple[Tensor, ...]]) -> list[np.ndarray]:
        """Per member, (mc_samples, n) raw scores of prepared `inputs` (`_inputs`), drawn with
        a generator seeded by eval_seed."""
        device = next(self._models[0].parameters()).device
        out = []
        with cpu_threads(self.num_threads), torch.no_grad(), seeded(self.eval_seed, device):
            for model in self._models:
                out.append(
                    torch.stack([model(inputs) for _ in range(self.mc_samples)]).double().numpy()
                )
        return out

    def predict(self, data: FeatureMatrix) -> tuple[np.ndarray, np.ndarray | None]:
        if not self._models:
            raise NotFittedError("fusion: call fit() or load() before predict()")
        self._check_data(data)
        device = next(self._models[0].parameters()).device
        inputs = self._inputs(data, device)
        nets = self._standardised(self._mc_scores(inputs))
        trees = self._trees.predict(data)[0] if self._trees is not None else None
        probes = self._standardised_probes(self._probe_scores(inputs))
        score = self._blend([n.mean(axis=0) for n in nets], trees, probes)
        if self.neighbour_smoothing > 0:
            score = smoothed(score, self._neighbour_means(data), self.neighbour_smoothing)
        if self._prior is not None:
            prior, weight = self._prior.scores(data), self._meta["prior_weight"]
            score = mixed_with_prior(score, self._meta["final_scale"], prior, weight)
        spread = np.concatenate(nets, axis=0)
        uncertainty = spread.std(axis=0) if spread.shape[0] > 1 else None
        return score.astype(np.float64), uncertainty

    def _probe_scores(self, inputs: dict[str, tuple[Tensor, ...]]) -> list[np.ndarray]:
        """Each probe's raw scores of prepared `inputs` (none where the probes' weight is 0)."""
        if not self._meta.get("probe_weight", 0.0):
            return []
        return [probe.scores(inputs, self.eval_seed) for probe in self._probes]

    def _standardised_probes(self, scores: list[np.ndarray]) -> list[np.ndarray]:
        """Each probe's scores z-scored with its pool mean and std (fits saved before probes
        existed record no scales and have no scores)."""
        if not scores:
            return []
        scales = self._meta["probe_scales"]
        return [(s - m) / sd for s, (m, sd) in zip(scores, scales, strict=True)]

    @property
    def has_trees(self) -> bool:
        """Whether the fit made trees (a tree weight above 0 for its label count)."""
        return self._trees is not None

    @property
    def has_probes(self) -> bool:
        """Whether the fit made probes (a probe weight above 0 for its label count)."""
        return bool(self._probes)

    def fit_settings(self, labels: int) -> dict[str, Any]:
        """The params less the blend and the pretraining cache's folder, the pretrained share
        and the averaged share of the epochs for `labels` labels, and whether a fit on
        `labels` labels makes trees and probes (a tree / probe weight above 0 for that count);
        the settings of trees or probes a fit does not make are left out, so changing them
        keeps the fits without them."""
        settings = super().fit_settings(labels)
        del settings["pretrain_cache"]
        settings["pretrained_share"] = self._pretrained_share_for(labels)
        settings["finetune_averaging"] = self._averaging_for(labels)
        parts = {
            "trees": (self._tree_weight_for(labels) > 0, _TREE_SETTINGS),
            "probes": (self._probe_weight_for(labels) > 0, _PROBE_SETTINGS),
        }
        for part, (made, names) in parts.items():
            settings[part] = made
            if not made:
                for name in names:
                    del settings[name]
        return settings

    def adopt(self, fitted: Predictor, pool: FeatureMatrix) -> FusionPredictor:
        """`fitted`'s members, probes and trees blended with this predictor's `tree_weight` and
        `probe_weight` (for the fit's label count) and `neighbour_smoothing`; the pool's blended
        scores and neighbour means are recomputed over `pool` (the fit's). A tree (probe) weight
        above 0 needs a fit with trees (probes)."""
        if not isinstance(fitted, FusionPredictor) or not fitted._models:
            raise NotFittedError("fusion: adopt() needs a fitted fusion predictor")
        labels = fitted._meta.get("labels")
        if labels is None and isinstance(self.tree_weight, dict):
            raise ValueError("fusion: this fit records no label count for a tree weight by labels")
        if labels is None and isinstance(self.probe_weight, dict):
            raise ValueError("fusion: this fit records no label count for a probe weight by labels")
        if labels is None and isinstance(self.prior_weight, dict):
            raise ValueError("fusion: this fit records no label count for a prior weight by labels")
        weight = self._tree_weight_for(labels)
        if weight > 0 and not fitted.has_trees:
            raise ValueError("fusion: this model was fitted without trees (tree_weight 0)")
        probe_weight = self._probe_weight_for(labels)
        if probe_weight > 0 and not fitted.has_probes:
            raise ValueError("fusion: this model was fitted without probes (probe_weight 0)")
        other = replace(self)
        other._models, other._trees = fitted._models, fitted._trees
        other._probes = fitted._probes
        other._meta = {k: v for k, v in fitted._meta.items() if k != "neighbour_pool"}
        other._meta["tree_weight"] = weight
        other._meta["probe_weight"] = probe_weight
        other._meta["prior_weight"] = self._prior_weight_for(labels) if labels is not None else 0.0
        device = next(fitted._models[0].parameters()).device
        other._summarise_pool(other._inputs(pool, device), pool)
        return other

    def reweighted(
        self,
        pool: FeatureMatrix,
        *,
        tree_weight: float,
        neighbour_smoothing: float,
        probe_weight: float | None = None,
        prior_weight: float | None = None,
        prior_proxies: list[str] | None = None,
    ) -> FusionPredictor:
        """This fitted model with other blend weights and prior proxies (None: its own), without
        refitting (`adopt`)."""
        others = {
            name: value
            for name, value in (
                ("probe_weight", probe_weight),
                ("prior_weight", prior_weight),
                ("prior_proxies", prior_proxies),
            )
            if value is not None
        }
        return replace(
            self, tree_weight=tree_weight, neighbour_smoothing=neighbour_smoothing, **others
        ).adopt(self, pool)

    def _neighbour_means(self, data: FeatureMatrix) -> np.ndarray:
        """Each row's neighbour mean: looked up for pool networks, searched for the others."""
        pool_ids, pool_score, pool_means = self._meta["neighbour_pool"]
        row = np.full(int(max(pool_ids.max(), data.network_ids.max())) + 1, -1)
        row[pool_ids] = np.arange(len(pool_ids))
        at = row[data.network_ids]
        known = at >= 0
        means = np.where(known, pool_means[at], np.nan)
        if not known.all():
            means[~known] = neighbour_means(
                data.space, data.network_ids[~known], pool_ids, pool_score
            )
        return means

    def _standardised(self, members: list[np.ndarray]) -> list[np.ndarray]:
        """Each member's scores (or MC samples) z-scored with its pool mean and std."""
        scales = self._meta["scales"]
        return [(s - m) / sd for s, (m, sd) in zip(members, scales, strict=False)]

    def _blend(
        self,
        members: list[np.ndarray],
        trees: np.ndarray | None,
        probes: list[np.ndarray] | None = None,
    ) -> np.ndarray:
        """The mean of the members' pool-z-scored scores, mixed by probe_weight with the mean of
        the probes' (`probes`, pool-z-scored; none: no probes) and then by tree_weight with the
        trees' raw scores z-scored over the pool."""
        score = np.mean(members, axis=0)
        if probes:
            probe_weight = self._meta["probe_weight"]
            score = (1 - probe_weight) * score + probe_weight * np.mean(probes, axis=0)
        if trees is None:
            return score
        mean, sd = self._meta["scales"][-1]
        # fits saved before the weight could depend on the labels recorded none
        weight = self._meta.get("tree_weight", self.tree_weight)
        return (1 - weight) * score + weight * (trees - mean) / sd

    # -- persistence -------------------------------------------------------------------------

    def _get_state(self) -> dict[str, Any]:
        if not self._models:
            raise NotFittedError("fusion: nothing to save before fit()")
        weights = [cpu_state(m) for m in self._models]
        probes = [
            {"weights": cpu_state(p.encoder), "probe": (p.mean, p.std, p.weights)}
            for p in self._probes
        ]
        return {
            "meta": dict(self._meta),
            "weights": weights,
            "trees": self._trees,
            "probes": probes,
            "prior": self._prior,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        if self.neighbour_smoothing > 0 and len(state["meta"]["neighbour_pool"]) != 3:
            raise ValueError(
                "fusion: this model was saved by a parzc that smoothed over canonical codes "
                "only; fit it again"
            )
        self._meta = dict(state["meta"])
        device = resolve_device(self.device)
        self._models = [self._loaded_model(weights, device) for weights in state["weights"]]
        self._trees = state["trees"]
        self._prior = state.get("prior")  # fits saved before the prior existed have none
        self._probes = [  # fits saved before probes existed have none
            RidgeProbe(self._loaded_model(saved["weights"], device), *saved["probe"])
            for saved in state.get("probes", [])
        ]

    def _loaded_model(self, weights: dict[str, Tensor], device: torch.device) -> FusionNet:
        """A saved member (or probe encoder) rebuilt on `device`, in eval mode."""
        with seeded(0, torch.device("cpu")):
            model = self._new_model(self._meta["shapes"])
        model.load_state_dict(weights)
        return model.to(device).eval()
