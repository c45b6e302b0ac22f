"""The training loop shared by the torch predictors, and their common base class."""

from __future__ import annotations

import math
import os
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from parzc.device import resolve_device
from parzc.predictors.base import NotFittedError, Predictor, TrainingDiverged, check_same_columns
from parzc.predictors.losses import LossSpec, make_loss
from parzc.store.matrix import FeatureMatrix

_PREDICT_CHUNK = 4096

# Layer-wise inputs a torch predictor can see: the store's within-arch min-max vectors (ParZC's
# scaling: the shape of each proxy over the layers) and/or signed log magnitudes z-scored per
# (proxy, layer) over the training archs (keeps the differences between archs that summed
# proxies rank by). scaling name -> views, concatenated in this order.
LAYER_SCALINGS: dict[str, tuple[str, ...]] = {
    "within_arch": ("within_arch",),
    "global_log": ("global_log",),
    "both": ("within_arch", "global_log"),
}


def signed_log(values: np.ndarray) -> np.ndarray:
    """sign(x) * log(1 + |x|): proxies span tens of orders of magnitude (synflow)."""
    return np.sign(values) * np.log1p(np.abs(values))


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global RNGs for the block, restoring their previous state afterwards."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def allowed_cpus() -> int:
    """CPUs this process may use: its affinity mask (cgroups/Slurm), capped by OMP_NUM_THREADS."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    omp = os.environ.get("OMP_NUM_THREADS", "")
    return min(n, int(omp)) if omp.isdigit() and int(omp) > 0 else n


@contextmanager
def cpu_threads(n: int | None = None) -> Iterator[None]:
    """Run the block with min(n, allowed_cpus()) torch intra-op threads (all allowed if None)."""
    before = torch.get_num_threads()
    allowed = allowed_cpus()
    torch.set_num_threads(max(1, min(n or allowed, allowed)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_torch_model(
    model: nn.Module,
    inputs: Sequence[Tensor],
    target: Tensor,
    *,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    regulariser: Callable[[], Tensor] | None = None,
) -> dict[str, Any]:
    """Train `model(*inputs) -> score` with Adam and cosine annealing over `epochs`.

    Tensors must already be on the model's device. Batches come from a permutation drawn from a
    generator seeded by `seed`; `regulariser()` (e.g. a KL term) is added to each batch loss.
    Raises TrainingDiverged when an epoch's loss is NaN or infinite.
    """
    n = target.shape[0]
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    starts = range(0, n, batch_size)
    history: list[float] = []
    model.train()
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(n, generator=gen).to(target.device)
        total = torch.zeros((), device=target.device)
        for start in starts:
            idx = perm[start : start + batch_size]
            loss = loss_fn(model(*(x[idx] for x in inputs)), target[idx])
            if regulariser is not None:
                loss = loss + regulariser()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
        sched.step()
        epoch_loss = total.item() / len(starts)  # one host sync per epoch
        if not math.isfinite(epoch_loss):
            raise TrainingDiverged(
                f"training diverged at epoch {epoch}/{epochs}: mean batch loss is {epoch_loss}"
            )
        history.append(epoch_loss)
    seconds = time.perf_counter() - t0
    model.eval()
    return {
        "epochs": epochs,
        "final_loss": history[-1],
        "loss_history": history,
        "seconds": seconds,
        "seconds_per_epoch": seconds / epochs,
        "n_train": n,
    }


@dataclass(kw_only=True, eq=False)
class TorchPredictor(Predictor):
    """Base of the torch predictors: flattened layer-wise features (+ optional one-hot) in,
    a model trained by `train_torch_model` on the z-scored validation accuracy.

    Scores are mapped back to the accuracy scale (mean + std of the training targets).
    `num_threads` caps torch's CPU threads in training and prediction: small batches run
    fastest on one thread, and the same thread count keeps scores bitwise reproducible (float
    reductions split over more threads round differently).
    `scaling` picks the layer-wise view (LAYER_SCALINGS); global statistics come from the
    training archs and are saved with the model.
    """

    epochs: int = 200
    batch_size: int = 10
    lr: float = 1e-4
    weight_decay: float = 1e-3
    loss: LossSpec = "diffkendall"
    device: str = "auto"
    use_onehot: bool = False
    num_threads: int = 1
    scaling: str = "within_arch"

    _model: nn.Module | None = field(default=None, init=False, repr=False)
    _meta: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "num_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        make_loss(self.loss)  # fail early on a bad loss spec
        if self.scaling not in LAYER_SCALINGS:
            raise ValueError(
                f"{self.name}: unknown scaling {self.scaling!r}; choose from {list(LAYER_SCALINGS)}"
            )

    @abstractmethod
    def build_model(self, input_dim: int, onehot_dim: int) -> nn.Module:
        """A fresh model mapping (layerwise[, onehot]) batches to scores of shape (batch,)."""

    def _regulariser(self, model: nn.Module, n_train: int) -> Callable[[], Tensor] | None:
        """An extra loss term evaluated every batch (none by default)."""
        return None

    def _forward_eval(self, model: nn.Module, inputs: list[Tensor]) -> tuple[Tensor, Tensor | None]:
        """(mean, std or None) of the model on one chunk, in standardised units."""
        return model(*inputs), None

    def _log_stats(self, train: FeatureMatrix) -> dict[str, list[float]]:
        """Per (proxy, layer) mean and std of the signed log values over the training archs."""
        if "global_log" not in LAYER_SCALINGS[self.scaling]:
            return {}
        logs = signed_log(np.asarray(train.layerwise_raw, dtype=np.float64)).reshape(len(train), -1)
        std = logs.std(axis=0)
        return {
            "log_mean": logs.mean(axis=0).tolist(),
            "log_std": np.where(std > 0, std, 1.0).tolist(),
        }

    def _layer_inputs(self, data: FeatureMatrix, stats: dict[str, list[float]]) -> np.ndarray:
        n = len(data)
        views = {
            "within_arch": lambda: np.asarray(data.layerwise, dtype=np.float64).reshape(n, -1),
            "global_log": lambda: (
                (
                    signed_log(np.asarray(data.layerwise_raw, dtype=np.float64)).reshape(n, -1)
                    - np.asarray(stats["log_mean"])
                )
                / np.asarray(stats["log_std"])
            ),
        }
        return np.concatenate([views[v]() for v in LAYER_SCALINGS[self.scaling]], axis=1)

    def _inputs(
        self, data: FeatureMatrix, device: torch.device, stats: dict[str, list[float]]
    ) -> list[Tensor]:
        arrays = [self._layer_inputs(data, stats).astype(np.float32)]
        if self.use_onehot:
            if data.onehot is None:
                raise ValueError(f"{self.name}: use_onehot=True but the data has no onehot")
            arrays.append(np.asarray(data.onehot, dtype=np.float32))
        for label, arr in zip(("layerwise", "onehot"), arrays, strict=False):
            if not np.isfinite(arr).all():
                raise ValueError(
                    f"{self.name}: {label} features contain NaN or infinite values "
                    f"({int((~np.isfinite(arr)).sum())} entries)"
                )
        return [torch.from_numpy(a).to(device) for a in arrays]

    def fit(
        self, train: FeatureMatrix, seed: int, pool: FeatureMatrix | None = None
    ) -> dict[str, Any]:
        device = resolve_device(self.device)
        target = np.asarray(train.val_acc, dtype=np.float64)
        if not np.isfinite(target).all():
            raise ValueError(f"{self.name}: train.val_acc contains NaN or infinite values")
        if len(target) < 2:
            raise ValueError(f"{self.name}: needs at least 2 training architectures")
        mean, std = float(target.mean()), float(target.std())
        std = std if std > 0 else 1.0
        stats = self._log_stats(train)
        inputs = self._inputs(train, device, stats)
        y = torch.from_numpy((target - mean) / std).to(device=device, dtype=torch.float32)
        onehot_dim = inputs[1].shape[1] if self.use_onehot else 0
        with cpu_threads(self.num_threads), seeded(seed, device):
            model = self.build_model(inputs[0].shape[1], onehot_dim).to(device)
            report = train_torch_model(
                model,
                inputs,
                y,
                loss_fn=make_loss(self.loss),
                epochs=self.epochs,
                batch_size=self.batch_size,
                lr=self.lr,
                weight_decay=self.weight_decay,
                seed=seed,
                regulariser=self._regulariser(model, len(target)),
            )
        self._model = model
        self._meta = {
            "proxies": list(train.proxies),
            "max_layers": int(train.layerwise.shape[2]),
            "input_dim": int(inputs[0].shape[1]),
            "onehot_dim": onehot_dim,
            **stats,
            "target_mean": mean,
            "target_std": std,
        }
        return {**report, "device": str(device), "seed": seed}

    def predict(self, data: FeatureMatrix) -> tuple[np.ndarray, np.ndarray | None]:
        if self._model is None:
            raise NotFittedError(f"{self.name}: call fit() or load() before predict()")
        check_same_columns("proxies", self._meta["proxies"], data.proxies)
        if data.layerwise.shape[2] != self._meta["max_layers"]:
            raise ValueError(
                f"{self.name}: trained with max_layers={self._meta['max_layers']}, "
                f"got {data.layerwise.shape[2]}"
            )
        device = next(self._model.parameters()).device
        inputs = self._inputs(data, device, self._meta)
        means, stds = [], []
        with cpu_threads(self.num_threads), torch.no_grad():
            for start in range(0, len(data), _PREDICT_CHUNK):
                chunk = [x[start : start + _PREDICT_CHUNK] for x in inputs]
                mean, std = self._forward_eval(self._model, chunk)
                means.append(mean.double().cpu())
                stds.append(None if std is None else std.double().cpu())
        scale, shift = self._meta["target_std"], self._meta["target_mean"]
        score = torch.cat(means).numpy() * scale + shift if means else np.zeros(0)
        if not stds or stds[0] is None:
            return score, None
        return score, torch.cat(stds).numpy() * scale

    def _get_state(self) -> dict[str, Any]:
        if self._model is None:
            raise NotFittedError(f"{self.name}: nothing to save before fit()")
        weights = {k: v.detach().cpu().clone() for k, v in self._model.state_dict().items()}
        return {"meta": dict(self._meta), "model_state": weights}

    def _set_state(self, state: dict[str, Any]) -> None:
        meta = state["meta"]
        with seeded(0, torch.device("cpu")):  # the init is overwritten; keep the global RNG
            model = self.build_model(meta["input_dim"], meta["onehot_dim"])
        model.load_state_dict(state["model_state"])
        self._model = model.to(resolve_device(self.device)).eval()
        self._meta = dict(meta)
