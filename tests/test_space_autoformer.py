"""AutoFormer ViT space: hand-computed parameter count, validation, encodings, forward pass."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from torch import nn

from parzc.spaces.autoformer import AutoFormer, parse_arch
from parzc.spaces.base import ACCURACY_COLUMNS, InvalidArchError


def subnet(embed_dim: int, mlp_ratio: list[float], num_heads: list[int]) -> str:
    spec = {
        "embed_dim": embed_dim,
        "depth": len(mlp_ratio),
        "mlp_ratio": mlp_ratio,
        "num_heads": num_heads,
    }
    return json.dumps(spec)


def test_parameter_count_by_hand() -> None:
    arch = subnet(216, [4.0] * 6 + [3.5] * 6, [3] * 12)
    e, tokens, classes = 216, (32 // 4) ** 2 + 1, 100
    embed = (3 * 4 * 4 * e + e) + e + tokens * e  # patch conv (+bias), cls token, pos embedding
    qkv, proj = e * 3 * 192 + 3 * 192, 192 * e + e  # 3 heads x 64
    mlp4 = e * 864 + 864 + 864 * e + e  # int(216 * 4.0) = 864
    mlp35 = e * 756 + 756 + 756 * e + e  # int(216 * 3.5) = 756
    norms = 2 * (2 * e)
    blocks = 6 * (norms + qkv + proj + mlp4) + 6 * (norms + qkv + proj + mlp35)
    head = 2 * e + e * classes + classes  # final LN + classifier
    model = AutoFormer().build(arch, "cifar100")
    assert sum(p.numel() for p in model.parameters()) == embed + blocks + head == 6_268_852


def test_accuracy_table_contract() -> None:
    table = AutoFormer().accuracy_table()
    assert dict(table.schema) == ACCURACY_COLUMNS
    assert table.height == 100 and set(table["dataset"]) == {"cifar100"}
    assert (table["val_acc"] == table["test_acc"]).all()
    assert table["train_time_s"].is_null().all()
    a = table["arch"][0]
    assert parse_arch(a).to_arch() == a
    assert list(json.loads(a)) == ["depth", "embed_dim", "mlp_ratio", "num_heads"]


def test_build_forward_backward_on_shipped_archs() -> None:
    space = AutoFormer()
    for a in space.archs()["arch"].head(3):
        torch.manual_seed(0)
        model = space.build(a, "cifar100")
        n_layers = sum(isinstance(m, nn.Conv2d | nn.Linear) for m in model.modules())
        assert n_layers == 2 + 4 * parse_arch(a).depth <= space.max_layers
        logits = model(torch.randn(2, 3, 32, 32))
        assert logits.shape == (2, 100)
        logits.sum().backward()


def test_max_layers_is_reached_at_depth_14() -> None:
    with torch.device("meta"):
        model = AutoFormer().build(subnet(240, [4.0] * 14, [4] * 14), "cifar100")
    assert sum(isinstance(m, nn.Conv2d | nn.Linear) for m in model.modules()) == 58
    assert AutoFormer.max_layers == 58


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        (
            subnet(192, [4.0] * 11, [3] * 12).replace('"depth": 11', '"depth": 12'),
            "mlp_ratio has 11 entries, expected one per block (depth 12)",
        ),
        (
            json.dumps(
                {"embed_dim": 192, "depth": 12, "mlp_ratio": [4.0] * 12, "num_heads": [3] * 13}
            ),
            "num_heads has 13 entries",
        ),
        (subnet(200, [4.0] * 12, [3] * 12), "embed_dim is 200"),
        (subnet(192, [4.0] * 11, [3] * 11), "depth is 11"),
        (subnet(192, [4.0] * 11 + [3.0], [3] * 12), "mlp_ratio[11] is 3.0"),
        (subnet(192, [4.0] * 12, [3] * 11 + [8]), "num_heads[11] is 8"),
        ('{"embed_dim": 192}', "expected an object with keys"),
        ("not json", "not JSON"),
    ],
)
def test_invalid_subnets_are_rejected(arch: str, message: str) -> None:
    with pytest.raises(InvalidArchError, match=re.escape(message)):
        AutoFormer().decode(arch)


def test_onehot_is_fixed_length() -> None:
    space = AutoFormer()
    codes = np.stack([space.onehot(a) for a in space.archs()["arch"]])
    assert codes.shape == (100, 62) and codes.dtype == np.float32
    short = space.onehot(subnet(192, [3.5] * 12, [4] * 12))
    assert np.array_equal(short[:6], [1, 0, 0, 1, 0, 0])
    blocks = short[6:].reshape(14, 4)
    assert (blocks[:12] == [1, 0, 0, 1]).all() and not blocks[12:].any()


def test_every_proxy_is_finite_on_a_vit_including_grasp() -> None:
    """grasp's Hessian-gradient product needs an attention backward that is differentiable."""
    from parzc.proxies import LAYER_PROXIES, NETWORK_PROXIES
    from parzc.proxies.batch import load_batch
    from parzc.proxies.compute import compute_proxies

    torch.manual_seed(0)
    model = AutoFormer().build(subnet(192, [3.5] * 12, [3] * 12), "cifar100")
    batch = load_batch(4, 0, num_classes=100)
    layer, network = LAYER_PROXIES.names(), NETWORK_PROXIES.names()
    r = compute_proxies(model, batch.images, batch.labels, layer, network, 100)
    assert r.nan_reasons == {}
    assert all(np.isfinite(v).all() for v in r.per_layer.values())
    assert np.abs(r.per_layer["grasp"]).sum() > 0
