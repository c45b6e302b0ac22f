"""parzc.score: one call on any torch model gives the store's values, per layer and whole."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from conftest import LAYER, NETWORK, mini_settings
from torch import nn

import parzc
from parzc.extract import network_seed
from parzc.proxies.batch import load_batch
from parzc.sharding import shard_arch_ids
from parzc.spaces import get_space


def test_scores_equal_the_stores_rows(mini_store):
    """The network the store built for an arch, scored on the same batch, gives its rows."""
    settings = mini_settings()
    arch_id = int(shard_arch_ids("nb201", 0, 0, 3)[1])
    space = get_space("nb201")
    arch = space.archs().filter(pl.col("arch_id") == arch_id)["arch"].item()
    torch.manual_seed(network_seed(settings.init_seed, arch_id))
    model = space.build(arch, "cifar10")
    batch = load_batch(settings.batch_size, settings.batch_seed)
    proxies = [*LAYER, *(f"net:{n}" for n in NETWORK)]
    scores = parzc.score(model, batch.images, batch.labels, proxies, seed=settings.batch_seed)
    stored = pl.read_parquet(mini_store / "features", hive_partitioning=True).filter(
        pl.col("arch_id") == arch_id
    )
    for proxy in LAYER:
        want = stored.filter(pl.col("proxy") == proxy).sort("layer")["value"].to_numpy()
        got = scores.layers.filter(pl.col("proxy") == proxy)["value"].to_numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    network = pl.read_parquet(mini_store / "arch_stats", hive_partitioning=True).filter(
        pl.col("arch_id") == arch_id
    )
    for proxy in NETWORK:
        want = network.filter(pl.col("proxy") == proxy)["value"].item()
        assert scores.network[proxy] == pytest.approx(want, rel=1e-12)
    wide = scores.wide()
    assert len(wide) == len(stored["layer"].unique()) and set(LAYER) <= set(wide.columns)
    assert scores.totals()["synflow"] == pytest.approx(wide["synflow"].sum())


def squared_error(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return ((outputs.squeeze(-1) - targets) ** 2).mean()


def test_a_regression_model_scores_with_its_own_loss():
    """A model whose output is not class logits: its loss replaces cross-entropy, and targets
    need not be class indices."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.ReLU(), nn.Linear(16, 1))
    inputs, targets = torch.randn(12, 3, 4, 4), torch.randn(12)
    scores = parzc.score(
        model, inputs, targets, ["grad_norm", "snip", "net:params"], loss_fn=squared_error
    )
    assert scores.layers["layer_name"].unique(maintain_order=True).to_list() == ["1", "3"]
    assert (
        scores.layers["value"].is_finite().all() and scores.network["params"] == 48 * 16 + 16 + 17
    )
    with pytest.raises(KeyError, match="unknown proxy 'synflo'"):
        parzc.score(model, inputs, targets, ["synflo"], loss_fn=squared_error)
