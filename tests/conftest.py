"""Shared fixtures: a small real NB201 feature store extracted once per pytest run; grasp's
reference values from a full Hessian."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from parzc.extract import extract_shard
from parzc.layout import Layout
from parzc.sharding import ExtractSettings, shard_arch_ids

LAYER = ("grad_norm", "snip", "synflow", "params")
REPO = Path(__file__).resolve().parent.parent
DIGITS_EXAMPLE = REPO / "examples" / "digits"
NETWORK = ("nwot", "params")
ARCH_SEED = 0
SHARDS = ((0, 3), (4, 7))


def grasp_by_full_hessian(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """grasp per Conv2d/Linear layer, mean(-W * (H g)), with H the full Hessian of the train-mode
    cross-entropy over all those weights (other parameters fixed) and g its gradient."""
    layers = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    names = [f"{n}.weight" for n, _ in layers]
    shapes = [m.weight.shape for _, m in layers]
    sizes = [s.numel() for s in shapes]
    fixed = {k: v.detach() for k, v in net.named_parameters() if k not in names}

    def loss(theta: torch.Tensor) -> torch.Tensor:
        parts = zip(names, theta.split(sizes), shapes, strict=True)
        weights = {n: t.reshape(s) for n, t, s in parts}
        return F.cross_entropy(functional_call(net.train(), fixed | weights, (x,)), y)

    theta = torch.cat([m.weight.detach().flatten() for _, m in layers])
    leaf = theta.clone().requires_grad_()
    (g,) = torch.autograd.grad(loss(leaf), leaf)
    hg = torch.autograd.functional.hessian(loss, theta) @ g
    pairs = zip(theta.split(sizes), hg.split(sizes), strict=True)
    return [(-w * v).mean().item() for w, v in pairs]


def shard_part(
    start: int,
    end: int,
    space: str = "nb201",
    dataset: str = "cifar10",
    feature_set: str = "mini",
) -> str:
    fields = dict(space=space, dataset=dataset, feature_set=feature_set, start=start, end=end)
    return Layout().path("features", **fields).removeprefix("results/features/")


def mini_settings(**overrides) -> ExtractSettings:
    fields = dict(
        space="nb201",
        dataset="cifar10",
        feature_set="mini",
        layer_proxies=LAYER,
        network_proxies=NETWORK,
        batch_size=8,
        batch_seed=0,
        init_seed=0,
        arch_seed=ARCH_SEED,
    )
    fields.update(overrides)
    return ExtractSettings(**fields)


def extract_into(root: Path, start: int, end: int, settings: ExtractSettings | None = None) -> None:
    settings = settings or mini_settings()
    part = shard_part(start, end, settings.space, settings.dataset, settings.feature_set)
    ids = shard_arch_ids(settings.space, ARCH_SEED, start, end)
    extract_shard(settings, ids, root / "features" / part, root / "arch_stats" / part, "cpu")


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread per test: tiny batches run fastest on one thread, and a shared busy
    CPU makes OpenMP contention many times slower with more."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def mini_store(tmp_path_factory) -> Path:
    """results/ with 8 real NB201 archs (2 shards) of a small proxy set, extracted on the CPU."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("results")
    for start, end in SHARDS:
        extract_into(root, start, end)
    return root


def digits_config(tmp_path: Path, count: int | None = 24, **space) -> dict:
    """A small config of the digits space, its labels file in tmp_path."""
    entry = {
        "source": "digits_space:DigitsCNN",
        "python_path": [str(DIGITS_EXAMPLE)],
        "candidates": {"count": count, "seed": 0},
        "datasets": ["digits"],
        "data": {"digits": {"source": {"callable": "digits_data:proxy_batch"}, "num_classes": 10}},
        "labels": {"digits": str(tmp_path / "labels.csv")},
        "train_sizes": [4],
        **space,
    }
    return {
        "results": str(tmp_path / "results"),
        "device": "cpu",
        "batch": {"size": 16, "seed": 0},
        "shard_size": 12,
        "feature_sets": {"mini": {"layer": ["grad_norm", "snip", "params"], "network": ["nwot"]}},
        "spaces": {"digits": entry},
        "train": {
            "features": ["grad_norm", "snip"],
            "seeds": [0],
            "predictors": {"gbdt": {"model": "gbdt"}},
        },
        "rank": {"predictors": ["gbdt"], "top": 5},
    }


def dry_run(config_path: Path) -> str:
    """What `snakemake -n` prints for a config, from the repository root."""
    return subprocess.run(
        ["snakemake", "-n", "--cores", "1", "--configfile", str(config_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def planned_jobs(config_path: Path) -> list[str]:
    """The rules of the jobs `snakemake -n` would run for a config, in its printed order."""
    return re.findall(r"^rule (\w+):", dry_run(config_path), flags=re.M)
