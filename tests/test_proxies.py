"""Zero-cost proxies checked against closed forms written out with numpy/torch math."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from conftest import grasp_by_full_hessian
from torch import nn

from parzc.proxies import LAYER_PROXIES, NETWORK_PROXIES, validate_proxy_names
from parzc.proxies.compute import compute_proxies
from parzc.registry import UnknownNameError

ALL_LAYER = LAYER_PROXIES.names()
ALL_NET = NETWORK_PROXIES.names()
K = 1e-5


def _fill(model: nn.Module, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


def mlp(d_in: int = 12, hidden: int = 8, out: int = 3, seed: int = 0) -> nn.Sequential:
    """Linear -> ReLU(inplace) -> Linear in float64 with fixed weights."""
    model = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out))
    return _fill(model.double(), seed)


def batch(n: int = 6, d_in: int = 12, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d_in, generator=gen, dtype=torch.float64)
    return x, torch.tensor([0, 0, 1, 1, 1, 2][:n])


def convnet(seed: int = 0) -> nn.Sequential:
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1, groups=2),
        nn.BatchNorm2d(6),
        nn.ReLU(inplace=True),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(96, 5),
    )
    torch.manual_seed(seed)
    return model.apply(lambda m: m.reset_parameters() if hasattr(m, "reset_parameters") else None)


def images(n: int = 8, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=gen), torch.arange(n) % 5


def run(model, x, y, layer=(), net=(), num_classes=3, seed=0):
    return compute_proxies(model, x, y, list(layer), list(net), num_classes, seed)


def mlp_by_hand(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> dict[str, np.ndarray]:
    """Forward and backward of the mean cross-entropy of `mlp` written out in numpy."""
    w1, b1 = model[0].weight.detach().numpy(), model[0].bias.detach().numpy()
    w2, b2 = model[2].weight.detach().numpy(), model[2].bias.detach().numpy()
    x, n = x.numpy(), len(x)
    a1 = x @ w1.T + b1
    h = np.maximum(a1, 0)
    z = h @ w2.T + b2
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    gz = (p - np.eye(z.shape[1])[y.numpy()]) / n  # dL/dz
    ga1 = (gz @ w2) * (a1 > 0)  # dL/da1
    return dict(w1=w1, w2=w2, b1=b1, b2=b2, x=x, a1=a1, z=z, gz=gz, ga1=ga1,
                dw1=ga1.T @ x, dw2=gz.T @ h)  # fmt: skip


# ---------------------------------------------------------------- per-layer proxies


def test_gradient_proxies_match_closed_form():
    model, (x, y) = mlp(), batch()
    h = mlp_by_hand(model, x, y)
    r = run(model, x, y, ["grad_norm", "snip", "plain", "l2_norm", "fisher"])
    ws, gs = (h["w1"], h["w2"]), (h["dw1"], h["dw2"])
    np.testing.assert_allclose(r.per_layer["grad_norm"], [np.sqrt((g**2).sum()) for g in gs])
    wg = list(zip(ws, gs, strict=True))
    np.testing.assert_allclose(r.per_layer["snip"], [np.abs(w * g).mean() for w, g in wg])
    np.testing.assert_allclose(r.per_layer["plain"], [(w * g).mean() for w, g in wg])
    np.testing.assert_allclose(r.per_layer["l2_norm"], [np.sqrt((w**2).sum()) for w in ws])
    # fisher: 0.5 * sum_c mean_n (a g)^2 with a the layer output (before the in-place ReLU)
    fisher = [
        0.5 * ((a * g) ** 2).mean(0).sum() for a, g in ((h["a1"], h["ga1"]), (h["z"], h["gz"]))
    ]
    np.testing.assert_allclose(r.per_layer["fisher"], fisher)
    assert r.nan_reasons == {}


def test_zico_compares_the_gradients_of_the_batch_halves():
    model, (x, y) = mlp(), batch()
    halves = [mlp_by_hand(model, x[part], y[part]) for part in (slice(0, 3), slice(3, 6))]
    expected = []
    for name in ("dw1", "dw2"):
        g = np.stack([h[name] for h in halves])
        std = g.std(0)
        varies = std > 0
        expected.append(np.log((np.abs(g).mean(0)[varies] / std[varies]).sum()))
    r = run(model, x, y, ["zico"])
    np.testing.assert_allclose(r.per_layer["zico"], expected)
    odd = torch.cat([x, x[:1]]), torch.cat([y, y[:1]])  # the seventh example is left out
    np.testing.assert_allclose(run(model, *odd, ["zico"]).per_layer["zico"], expected)


def test_gradsign_sums_the_signs_of_each_examples_gradient():
    model, (x, y) = mlp(), batch()
    alone = [mlp_by_hand(model, x[i : i + 1], y[i : i + 1]) for i in range(len(x))]
    expected = [np.abs(sum(np.sign(h[name]) for h in alone)).sum() for name in ("dw1", "dw2")]
    r = run(model, x, y, ["gradsign"])
    np.testing.assert_allclose(r.per_layer["gradsign"], expected)
    # every example's gradient the same: each weight with a nonzero gradient counts n
    same = x[:1].repeat(4, 1), y[:1].repeat(4)
    nonzero = [(mlp_by_hand(model, *same)[name] != 0).sum() for name in ("dw1", "dw2")]
    np.testing.assert_allclose(run(model, *same, ["gradsign"]).per_layer["gradsign"],
                               [4 * n for n in nonzero])  # fmt: skip


def test_gradsign_of_a_model_that_cannot_take_one_example_is_nan_with_reason():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    r = run(model, torch.randn(5, 4), torch.tensor([0, 1, 0, 1, 0]), ["gradsign", "snip"], (), 2)
    assert np.isnan(r.per_layer["gradsign"]).all()
    assert "sample_grads pass failed" in r.nan_reasons["layer:gradsign"]
    assert np.isfinite(r.per_layer["snip"]).all()


def test_ntk_alignment_aligns_the_examples_output_gradients_with_their_labels():
    model, (x, y) = mlp(), batch()
    w1, b1 = model[0].weight.detach().numpy(), model[0].bias.detach().numpy()
    w2 = model[2].weight.detach().numpy()
    rows = []
    for xn in x.numpy():  # f = sum of the outputs: df/dW2 = 1 h^T, df/dW1 = (1^T W2 * [a > 0]) x^T
        a = w1 @ xn + b1
        h = np.maximum(a, 0)
        dw2 = np.outer(np.ones(w2.shape[0]), h)
        dw1 = np.outer(w2.sum(0) * (a > 0), xn)
        rows.append(np.concatenate([dw1.ravel(), dw2.ravel()]))
    kernel = np.array(rows) @ np.array(rows).T
    target = (y.numpy()[:, None] == y.numpy()[None, :]).astype(float)
    kc, tc = kernel - kernel.mean(), target - target.mean()
    expected = (kc * tc).sum() / (np.linalg.norm(kc) * np.linalg.norm(tc))
    r = run(model, x, y, (), ["ntk_alignment"])
    assert r.network["ntk_alignment"] == pytest.approx(expected)
    # a kernel that is the label kernel itself: one-hot inputs of the class through linear maps
    linear = nn.Sequential(nn.Linear(3, 2, bias=False))
    with torch.no_grad():
        linear[0].weight.fill_(1.0)
    onehot = torch.eye(3)[y]
    r = run(linear, onehot, y, (), ["ntk_alignment"])
    assert r.network["ntk_alignment"] == pytest.approx(1.0)


def test_gram_sums_float64_products_over_column_chunks(monkeypatch):
    from parzc.proxies import passes

    rows = torch.randn(5, 37, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(passes, "GRAM_CHUNK", 8)
    expected = rows.double() @ rows.double().T
    torch.testing.assert_close(passes.gram(list(rows)), expected, rtol=1e-12, atol=1e-12)


def test_ntk_alignment_without_two_classes_is_nan_with_reason():
    model, (x, _) = mlp(), batch()
    r = run(model, x, torch.zeros(len(x), dtype=torch.long), (), ["ntk_alignment", "params"])
    assert np.isnan(r.network["ntk_alignment"])
    assert "one class" in r.nan_reasons["net:ntk_alignment"]
    assert r.network["params"] == 131


def test_zico_of_a_layer_whose_gradients_do_not_vary_is_zero():
    model, (x, y) = mlp(), batch()
    halves = torch.cat([x[:3], x[:3]]), torch.cat([y[:3], y[:3]])  # the same gradients twice
    assert (run(model, *halves, ["zico"]).per_layer["zico"] == 0).all()


def test_zico_of_a_batch_too_small_to_split_is_nan_with_reason():
    model, (x, y) = mlp(), batch(3)
    r = run(model, x, y, ["zico", "grad_norm"])
    assert np.isnan(r.per_layer["zico"]).all() and "cannot be cut" in r.nan_reasons["layer:zico"]
    assert np.isfinite(r.per_layer["grad_norm"]).all()


def test_fisher_conv_sums_spatial_positions_then_squares():
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(12, 4)).double()
    _fill(model, 3)
    gen = torch.Generator().manual_seed(4)
    x, y = (
        torch.randn(5, 2, 4, 4, generator=gen, dtype=torch.float64),
        torch.tensor([0, 1, 2, 3, 0]),
    )
    # independent graph with the functional ops
    conv, lin = model[0], model[2]
    a = torch.nn.functional.conv2d(x, conv.weight.detach(), conv.bias.detach()).requires_grad_()
    z = a.flatten(1) @ lin.weight.detach().T + lin.bias.detach()
    (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(z, y), a)
    expected = 0.5 * ((a * g).sum((2, 3)) ** 2).mean(0).sum()
    r = run(model, x, y, ["fisher"], num_classes=4)
    np.testing.assert_allclose(r.per_layer["fisher"][0], expected.item())


def test_fisher_uses_layer_output_before_in_place_ops():
    model = nn.Sequential(nn.Linear(12, 8), nn.Hardtanh(-0.3, 0.3, inplace=True), nn.Linear(8, 3))
    _fill(model.double(), 9)
    x, y = batch()
    w1, b1 = model[0].weight.detach(), model[0].bias.detach()
    a = (x @ w1.T + b1).requires_grad_()
    z = torch.nn.functional.hardtanh(a, -0.3, 0.3) @ model[2].weight.detach().T
    (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(z + model[2].bias.detach(), y), a)
    r = run(model, x, y, ["fisher"])
    np.testing.assert_allclose(r.per_layer["fisher"][0], 0.5 * ((a * g) ** 2).mean(0).sum().item())


def test_grasp_matches_full_hessian_vector_product():
    model, (x, y) = mlp(d_in=5, hidden=4), batch(d_in=5)
    expected = grasp_by_full_hessian(model, x, y)
    r = run(model, x, y, ["grasp"])
    np.testing.assert_allclose(r.per_layer["grasp"], expected, rtol=1e-9)


def test_synflow_closed_form_uses_abs_weights_and_fresh_bn_stats():
    model = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))
    _fill(model, 5)
    model[1].running_mean.fill_(2.0)  # caller's statistics must be ignored (fresh: 0 / 1)
    model[1].running_var.fill_(4.0)
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    w1, b1, gamma, beta, w2 = (
        np.abs(t.detach().double().numpy())
        for t in (model[0].weight, model[0].bias, model[1].weight, model[1].bias, model[3].weight)
    )
    scale = gamma / np.sqrt(1.0 + model[1].eps)
    h = (w1 @ np.ones(4) + b1) * scale + beta  # > 0: ReLU passes everything
    d_w1 = np.outer(w2.sum(0) * scale, np.ones(4))  # dR/dW1[j, k] = sum_i |W2|_ij * scale_j
    d_w2 = np.outer(np.ones(3), h)  # dR/dW2[i, j] = h_j
    r = run(model, x, y, ["synflow"])
    np.testing.assert_allclose(r.per_layer["synflow"], [(w1 * d_w1).mean(), (w2 * d_w2).mean()])


def test_params_and_flops_are_exact_counts():
    model, (x, y) = convnet(), images()
    r = run(model, x, y, ["params", "flops"], ["params", "flops"], num_classes=5)
    # conv1 on 8x8 -> 4x4; grouped conv2 keeps 4x4; linear 96 -> 5
    assert r.per_layer["params"].tolist() == [4 * 3 * 9 + 4, 6 * 2 * 9 + 6, 96 * 5 + 5]
    assert r.per_layer["flops"].tolist() == [16 * 4 * 3 * 9, 16 * 6 * 2 * 9, 96 * 5]
    assert r.network["params"] == 112 + 114 + 485 + 2 * 4 + 2 * 6  # BN affine included
    assert r.network["flops"] == 1728 + 1728 + 480


class TinyViT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 4, stride=4)
        self.mlp = nn.Sequential(nn.LayerNorm(8), nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8))
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)  # (N, 4, 8)
        return self.head(self.mlp(tokens).mean(1))


def test_token_linear_flops_and_layer_order():
    x, y = images()
    r = run(TinyViT(), x, y, ["flops", "params"], ["flops"], num_classes=5)
    assert [(i.name, i.type) for i in r.layers] == [
        ("patch", "Conv2d"), ("mlp.1", "Linear"), ("mlp.3", "Linear"), ("head", "Linear"),
    ]  # fmt: skip
    assert r.per_layer["flops"].tolist() == [4 * 8 * 3 * 16, 4 * 8 * 16, 4 * 16 * 8, 8 * 5]
    assert r.per_layer["params"].tolist() == [8 * 48 + 8, 8 * 16 + 16, 16 * 8 + 8, 8 * 5 + 5]


# ---------------------------------------------------------------- network-level proxies


def jacobian_by_hand(model: nn.Sequential, x: torch.Tensor) -> np.ndarray:
    """d sum(f)/dx for Linear-ReLU-Linear: (1^T W2 * relu'(a1)) W1, one row per example."""
    w1, b1 = model[0].weight.detach().numpy(), model[0].bias.detach().numpy()
    w2 = model[2].weight.detach().numpy()
    active = (x.numpy() @ w1.T + b1) > 0
    return (w2.sum(0) * active) @ w1


def test_jacov_matches_eigenvalues_of_jacobian_correlation():
    model, (x, y) = mlp(), batch()
    v = np.linalg.eigvalsh(np.corrcoef(jacobian_by_hand(model, x)))
    r = run(model, x, y, net=["jacov"])
    np.testing.assert_allclose(r.network["jacov"], -np.sum(np.log(v + K) + 1 / (v + K)))


def _epe_by_hand(jac: np.ndarray, y: np.ndarray, many_classes: bool) -> float:
    s = []
    for c in np.unique(y):
        corr = np.atleast_2d(np.corrcoef(jac[y == c]))
        s.append(np.log(np.abs(corr) + K).sum() / (len(corr) if many_classes else 1))
    s = np.array(s)
    return np.abs(s[:, None] - s[None, :]).sum() / len(s) if many_classes else np.abs(s).sum()


@pytest.mark.parametrize("num_classes", [3, 101])
def test_epe_nas_per_class_correlation_score(num_classes):
    model, (x, y) = mlp(out=num_classes), batch()  # classes 0 (2 ex.), 1 (3 ex.), 2 (1 ex.)
    expected = _epe_by_hand(jacobian_by_hand(model, x), y.numpy(), num_classes > 100)
    r = run(model, x, y, net=["epe_nas"], num_classes=num_classes)
    np.testing.assert_allclose(r.network["epe_nas"], expected)


def test_nwot_from_hand_built_codes_of_all_relus():
    model = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    _fill(model.double(), 6)
    x, y = batch()
    with torch.no_grad():
        a1 = model[0](x)
        a2 = model[2](torch.relu(a1))
    c = torch.cat([a1 > 0, a2 > 0], 1).double().numpy()
    kernel = c @ c.T + (1 - c) @ (1 - c).T
    r = run(model, x, y, net=["nwot"])
    np.testing.assert_allclose(r.network["nwot"], np.linalg.slogdet(kernel)[1])


@pytest.mark.parametrize("n", [6, 70])  # 70 examples: patterns of two packed words
def test_swap_counts_distinct_activation_patterns_of_all_relus(n):
    model = nn.Sequential(
        nn.Linear(12, 40), nn.ReLU(), nn.Linear(40, 30), nn.ReLU(), nn.Linear(30, 3)
    )
    _fill(model.double(), 6)
    with torch.no_grad():  # the first layer's last 15 units repeat its first 15
        model[0].weight[25:] = model[0].weight[:15]
        model[0].bias[25:] = model[0].bias[:15]
    x = torch.randn(n, 12, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    y = torch.arange(n) % 3
    with torch.no_grad():
        a1 = model[0](x)
        a2 = model[2](torch.relu(a1))
    codes = torch.cat([a1 > 0, a2 > 0], 1).numpy()  # (examples, units)
    expected = len(np.unique(codes.T, axis=0))
    assert 1 < expected <= codes.shape[1] - 15
    r = run(model, x, y, net=["swap", "nwot"])  # the two share the activation hooks
    assert r.network["swap"] == expected


def test_swap_without_relu_like_activations_is_nan_with_reason():
    model, (x, y) = mlp(), batch()
    model[1] = nn.Tanh()
    r = run(model, x, y, net=["swap"])
    assert np.isnan(r.network["swap"]) and "no ReLU-like" in r.nan_reasons["net:swap"]


def _smallest_eigenvalue(output: torch.Tensor) -> float:
    rows = output.reshape(output.shape[0], -1).double().numpy()
    if rows.shape[1] < 2:
        return 0.0
    with np.errstate(all="ignore"):
        corr = np.corrcoef(rows)
    return float(np.linalg.eigvalsh(np.where(np.isfinite(corr), corr, 0.0))[0])


def test_meco_sums_each_module_calls_smallest_correlation_eigenvalue_of_the_first_example():
    model, (x, y) = convnet(), images()
    first = x[:1]

    def batch_norm(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
        return torch.nn.functional.batch_norm(x, None, None, bn.weight, bn.bias, training=True)

    with torch.no_grad():  # by hand: the first example alone, batch-1 train-mode BN
        conv1 = model[0](first)
        bn1 = batch_norm(conv1, model[1])
        relu1 = bn1.clamp_min(0)
        conv2 = model[3](relu1)
        bn2 = batch_norm(conv2, model[4])
        relu2 = bn2.clamp_min(0)
    # flatten, dropout, the head and the model itself give one value per row: 0 each
    maps = [conv1, bn1, relu1, conv2, bn2, relu2]
    expected = sum(_smallest_eigenvalue(m[0]) for m in maps)
    assert expected > 0
    r = run(model, x, y, ["meco"], ["meco"], num_classes=5)
    assert r.network["meco"] == pytest.approx(expected, rel=1e-6)
    # per layer: the two convolutions' terms, and 0 for the head (one value per row)
    by_layer = [_smallest_eigenvalue(conv1[0]), _smallest_eigenvalue(conv2[0]), 0.0]
    np.testing.assert_allclose(r.per_layer["meco"], by_layer, rtol=1e-6)
    others = torch.cat([first, torch.randn(7, 3, 8, 8)])  # the other examples do not count
    assert run(model, others, y, net=["meco"], num_classes=5).network["meco"] == pytest.approx(
        r.network["meco"]
    )


def test_meco_of_a_layer_called_twice_sums_its_calls():
    conv = nn.Conv2d(3, 3, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(), conv, nn.Flatten(), nn.Linear(192, 3))
    _fill(model, 0)
    x, y = images()[0], torch.arange(8) % 3
    with torch.no_grad():
        first = conv(x[:1])
        second = conv(first.clamp_min(0))
    expected = _smallest_eigenvalue(first[0]) + _smallest_eigenvalue(second[0])
    r = run(model, x, y, ["meco"])
    np.testing.assert_allclose(r.per_layer["meco"], [expected, 0.0], rtol=1e-6)


def _nb201_kendall(layer: list[str], net: list[str], score) -> dict[str, float]:
    """Kendall tau with CIFAR-10 test accuracy, over 40 canonical NB201 networks (seeded sample,
    shipped CIFAR-10 images, batch 16), of each entry of `score(result)` (name -> value); NaN
    ranked last."""
    from scipy.stats import kendalltau

    from parzc.proxies.batch import load_batch
    from parzc.spaces import get_space

    space = get_space("nb201")
    arch_of = dict(space.archs().select("arch_id", "arch").iter_rows())
    nets = np.random.default_rng(0).permutation(space.networks())[:40]
    proxy_batch = load_batch(16, 0, 32, 10)
    scores: dict[str, list[float]] = {}
    for arch_id in nets:
        torch.manual_seed(int(arch_id))
        model = space.build(arch_of[int(arch_id)], "cifar10")
        result = run(model, proxy_batch.images, proxy_batch.labels, layer, net, 10)
        for name, value in score(result).items():
            scores.setdefault(name, []).append(value)
    truth = space.accuracy_table().filter(pl.col("dataset") == "cifar10")
    accuracy_of = dict(truth.select("arch_id", "test_acc").iter_rows())
    accuracy = [accuracy_of[int(a)] for a in nets]
    return {
        name: kendalltau(np.nan_to_num(values, nan=-np.inf), accuracy).statistic
        for name, values in scores.items()
    }


def test_gradient_and_activation_proxies_rank_nb201_networks_by_accuracy():
    """On 40 canonical NB201 networks and the shipped CIFAR-10 images, MeCo agrees with CIFAR-10
    test accuracy at Kendall 0.756, swap at 0.597, zico (summed over layers) at 0.597, gradsign
    (summed over layers) at 0.644, ntk_alignment at 0.433 and MeCo's Conv2d/Linear terms alone
    (the per-layer meco, summed) at 0.700 (nwot 0.531 on the same networks)."""

    def score(result) -> dict[str, float]:
        return {
            "meco": result.network["meco"],
            "swap": result.network["swap"],
            "zico": result.per_layer["zico"].sum(),
            "meco_layers": result.per_layer["meco"].sum(),
            "gradsign": result.per_layer["gradsign"].sum(),
            "ntk_alignment": result.network["ntk_alignment"],
        }

    tau = _nb201_kendall(["zico", "meco", "gradsign"], ["meco", "swap", "ntk_alignment"], score)
    assert tau["meco"] > 0.6 and tau["swap"] > 0.5 and tau["zico"] > 0.5
    assert tau["gradsign"] > 0.5 and tau["ntk_alignment"] > 0.3
    assert tau["meco_layers"] > 0.6


def test_zen_closed_form_for_linear_features():
    model, (x, y) = mlp(), batch()
    model[1] = nn.Identity()  # features (input of the last Linear) = x W1^T + b1
    seed = 7
    gen = torch.Generator().manual_seed(seed)  # documented draw order: x, eps, then the weights
    torch.randn(x.shape, generator=gen, dtype=x.dtype)  # x: cancels for affine features
    eps = torch.randn(x.shape, generator=gen, dtype=x.dtype)
    w1 = torch.randn(model[0].weight.shape, generator=gen, dtype=x.dtype)  # Gaussian re-init
    diff = (0.01 * eps @ w1.T).abs().sum(1).mean().item()
    r = run(model, x, y, net=["zen"], seed=seed)
    np.testing.assert_allclose(r.network["zen"], np.log(diff + 1e-6))


def test_zen_adds_log_bn_scaling_and_ignores_the_model_weights():
    def build(scale: float) -> nn.Sequential:
        model = nn.Sequential(nn.Linear(12, 8, bias=False), nn.BatchNorm1d(8), nn.ReLU(),
                              nn.Linear(8, 3))  # fmt: skip
        _fill(model, 8)
        with torch.no_grad():
            model[0].weight.mul_(scale)
        return model

    x, y = batch(n=6)
    x = x.float()
    z1 = run(build(1.0), x, y, net=["zen"]).network["zen"]
    assert np.isfinite(z1)
    # the weights are re-drawn from N(0, 1), so the model's own scale does not matter
    assert run(build(10.0), x, y, net=["zen"]).network["zen"] == z1
    # BN term by hand: BN input = x_gauss W^T with W the first Gaussian draw after x and eps
    gen = torch.Generator().manual_seed(0)
    xg = torch.randn(x.shape, generator=gen)
    eps = torch.randn(x.shape, generator=gen)
    w = torch.randn(8, 12, generator=gen)
    pre = (xg @ w.T).double()
    log_std = np.log(pre.var(0, unbiased=False).mean().sqrt().item() + 1e-6)

    def feats(inp):  # train-mode BN with weight 1 / bias 0, ReLU: the input of the last Linear
        a = inp.double() @ w.T.double()
        return torch.relu((a - a.mean(0)) / torch.sqrt(a.var(0, unbiased=False) + 1e-5))

    diff = (feats(xg) - feats(xg + 0.01 * eps)).abs().sum(1).mean().item()
    np.testing.assert_allclose(z1, np.log(diff + 1e-6) + log_std, rtol=1e-4)
    assert run(build(1.0), x, y, net=["zen"], seed=1).network["zen"] != z1


# ---------------------------------------------------------------- behaviour


def test_unknown_names_raise_with_the_name_and_known_names():
    with pytest.raises(UnknownNameError, match="bogus_proxy.*known:.*snip"):
        validate_proxy_names(["snip", "bogus_proxy"], [])
    with pytest.raises(UnknownNameError, match="no_such_net"):
        run(mlp(), *batch(), ["snip"], ["no_such_net"])
    with pytest.raises(TypeError):
        validate_proxy_names("snip", [])


def test_layers_follow_named_modules_order():
    model = nn.Sequential()
    model.add_module("stem", nn.Conv2d(3, 4, 3, padding=1))
    model.add_module("body", nn.Sequential(nn.ReLU(), nn.Conv2d(4, 4, 1)))
    model.add_module("pool", nn.AdaptiveAvgPool2d(1))
    model.add_module("flat", nn.Flatten())
    model.add_module("head", nn.Linear(4, 5))
    x, y = images()
    r = run(model, x, y, ["l2_norm"], num_classes=5)
    assert [(i.name, i.type) for i in r.layers] == [
        ("stem", "Conv2d"), ("body.1", "Conv2d"), ("head", "Linear"),
    ]  # fmt: skip
    assert r.per_layer["l2_norm"].shape == (3,)


def test_model_state_and_modes_are_restored():
    model, (x, y) = convnet(), images()
    model[0].bias.requires_grad_(False)
    model.eval()
    model[4].train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    run(model, x, y, ALL_LAYER, ALL_NET, num_classes=5)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) and before[k].dtype == after[k].dtype
               for k in before)  # fmt: skip
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == [True, False] + [True] * 8
    assert all(p.grad is None for p in model.parameters())


def test_results_are_deterministic():
    x, y = images()
    a = run(convnet(), x, y, ALL_LAYER, ALL_NET, num_classes=5, seed=3)
    b = run(convnet(), x, y, ALL_LAYER, ALL_NET, num_classes=5, seed=3)
    assert a.per_layer.keys() == b.per_layer.keys() == set(ALL_LAYER)
    for name in ALL_LAYER:
        assert a.per_layer[name].dtype == np.float64
        np.testing.assert_array_equal(a.per_layer[name], b.per_layer[name])
    assert a.network == b.network and a.nan_reasons == b.nan_reasons == {}


def test_passes_are_shared():
    model, (x, y) = convnet(), images()
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    run(model, x, y, ALL_LAYER, ALL_NET, num_classes=5)
    # data 1 + synflow 1 + zen 2 + meco 1 + blocks 1 + split_grads 2 + sample_grads 8 (one per
    # example), whatever the number of proxies
    assert len(calls) == 16
    calls.clear()
    run(model, x, y, ["snip", "grad_norm", "fisher", "grasp", "flops"], ["jacov", "nwot"], 5)
    assert len(calls) == 1
    calls.clear()
    run(model, x, y, ["l2_norm", "params"], ["params"], num_classes=5)
    assert len(calls) == 0


def test_input_independent_network_gives_finite_values():
    model, (x, y) = convnet(), images()
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
    r = run(model, x, y, ALL_LAYER, ALL_NET, num_classes=5)
    for name in ALL_LAYER:
        assert np.isfinite(r.per_layer[name]).all(), name
    assert r.per_layer["grad_norm"][:2].tolist() == [0.0, 0.0]
    for name in ("jacov", "epe_nas", "zen", "params", "flops"):
        assert np.isfinite(r.network[name]), name
    # zero Jacobians: every correlation 0 for jacov (worst score), 1 for epe_nas
    assert r.network["jacov"] == pytest.approx(-8 * (np.log(K) + 1 / K))
    assert r.network["epe_nas"] == pytest.approx(sum(n * n for n in (2, 2, 2, 1, 1)) * np.log1p(K))
    assert np.isnan(r.network["nwot"]) and "singular" in r.nan_reasons["net:nwot"]


def test_synflow_overflow_is_nan_with_reason():
    model = nn.Sequential(*[nn.Linear(4, 4) for _ in range(40)])
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1e10)
    x, y = torch.randn(3, 4), torch.tensor([0, 1, 2])
    r = run(model, x, y, ["synflow", "l2_norm"], num_classes=4)
    assert np.isnan(r.per_layer["synflow"]).all()
    assert "overflow" in r.nan_reasons["layer:synflow"]
    assert np.isfinite(r.per_layer["l2_norm"]).all() and "layer:l2_norm" not in r.nan_reasons


def test_failing_pass_gives_nan_and_reason_and_restores_model():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))  # train-mode BN needs N > 1
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = run(model, torch.randn(1, 4), torch.tensor([0]), ["snip", "params"], ["jacov"])
    assert np.isnan(r.per_layer["snip"]).all() and "data pass failed" in r.nan_reasons["layer:snip"]
    assert "net:jacov" in r.nan_reasons and np.isnan(r.network["jacov"])
    assert r.per_layer["params"].tolist() == [15.0]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


class _NotDifferentiable(torch.autograd.Function):
    """Identity whose backward raises, as for a kernel without a derivative formula."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("derivative for fused_kernel_backward is not implemented")


class _TanhWithoutDoubleBackward(torch.autograd.Function):
    """tanh whose backward cannot itself be differentiated (like a fused attention kernel's)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return _NotDifferentiable.apply(grad * (1 - y * y))


class _SingleBackwardNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(_TanhWithoutDoubleBackward.apply(self.act(self.fc1(x))))


def test_failed_hessian_product_only_loses_grasp():
    x, y = batch()
    net = _fill(_SingleBackwardNet().double(), 5)
    r = run(net, x, y, ["grasp", "snip", "fisher"], ["jacov", "nwot"])
    assert np.isnan(r.per_layer["grasp"]).all()
    assert "Hessian-gradient product failed" in r.nan_reasons["layer:grasp"]
    assert set(r.nan_reasons) == {"layer:grasp"}
    assert np.isfinite(r.per_layer["snip"]).all() and np.isfinite(r.per_layer["fisher"]).all()
    alone = run(net, x, y, ["snip", "fisher"], ["jacov", "nwot"])
    np.testing.assert_array_equal(alone.per_layer["snip"], r.per_layer["snip"])
    assert alone.network == r.network


def _entropy(features: np.ndarray) -> float:
    """AZ-NAS's expressivity term of one (N, C, H, W) output, in numpy."""
    rows = np.moveaxis(features, 1, -1).reshape(-1, features.shape[1])
    rows = rows - rows.mean(0)
    s = np.clip(np.linalg.eigvalsh(rows.T @ rows / len(rows)), 0, None)
    p = s / s.sum()
    return float(-(p * np.log(p + 1e-8)).sum())


def test_az_nas_proxies_of_linear_blocks_in_closed_form():
    """Blocks: a 1x1 conv, another 1x1 conv and a 2x2 average pool (the model's children; the
    head's 2-D outputs are not blocks). Backward maps by hand: W^T g, and g / 4 spread over each
    pooled window, folded back by pixel unshuffle."""
    model = nn.Sequential(
        nn.Conv2d(3, 4, 1, bias=False),
        nn.Conv2d(4, 6, 1, bias=False),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 3),
    )
    _fill(model, 0)
    x, y = torch.randn(6, 3, 4, 4, generator=torch.Generator().manual_seed(1)), torch.arange(6) % 3
    w1 = model[1].weight.detach()[:, :, 0, 0]
    with torch.no_grad():
        outputs = [model[0](x)]
        outputs += [model[1](outputs[0])]
        outputs += [model[2](outputs[1])]
    entropies = [_entropy(o.numpy().astype(np.float64)) for o in outputs]
    gen = torch.Generator().manual_seed(0)  # the pass's seed; pairs drawn from the last
    g_pool = torch.randint(0, 2, outputs[2].shape, generator=gen).double() * 2 - 1
    g_conv = torch.randint(0, 2, outputs[1].shape, generator=gen).double() * 2 - 1

    def gain(rows_in: torch.Tensor, rows_out: torch.Tensor) -> float:
        return float(np.linalg.svd((rows_in.T @ rows_out / len(rows_in)).numpy())[1].max())

    rows = lambda g: g.movedim(1, -1).reshape(-1, g.shape[1])  # noqa: E731
    pool_gain = gain(torch.cat([rows(g_pool) / 4] * 4, 1), rows(g_pool))
    conv_gain = gain(rows(g_conv) @ w1.double(), rows(g_conv))
    score = np.mean([2 - s - 1 / (s + 1e-6) for s in (conv_gain, pool_gain)])
    r = run(model, x, y, net=["az_expressivity", "az_progressivity", "az_trainability"])
    assert r.network["az_expressivity"] == pytest.approx(sum(entropies), rel=1e-6)
    assert r.network["az_progressivity"] == pytest.approx(min(np.diff(entropies)), abs=1e-9)
    assert r.network["az_trainability"] == pytest.approx(score, rel=1e-6)


class Copy(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


def test_az_trainability_of_a_block_passing_its_gradient_through_is_nan_with_reason():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), Copy(), nn.Flatten(), nn.Linear(64, 3))
    x, y = torch.randn(6, 3, 4, 4), torch.arange(6) % 3
    r = run(model, x, y, net=["az_trainability", "az_expressivity"])
    assert np.isnan(r.network["az_trainability"])
    assert "unchanged" in r.nan_reasons["net:az_trainability"]
    assert np.isfinite(r.network["az_expressivity"])


def test_az_nas_blocks_returning_their_input_are_not_blocks():
    """Identity and dropout (off in the passes) return the tensor they were given: the model
    scores as it would without them."""
    x, y = torch.randn(6, 3, 4, 4), torch.arange(6) % 3
    names = ["az_expressivity", "az_progressivity", "az_trainability"]
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1), nn.Flatten(), nn.Linear(64, 3))
    _fill(model, 0)
    plain = run(model, x, y, net=names)
    padded = nn.Sequential(model[0], nn.Identity(), model[1], nn.Dropout(), *model[2:])
    assert run(padded, x, y, net=names).network == pytest.approx(plain.network)
    assert plain.nan_reasons == {}


def test_az_nas_proxies_rank_nb201_networks_by_accuracy():
    """On 40 canonical NB201 networks (the stem and every cell as blocks) and the shipped
    CIFAR-10 images, AZ-NAS's expressivity agrees with CIFAR-10 test accuracy at Kendall 0.687,
    its progressivity at 0.333 and its trainability at 0.226 (NaN ranked last)."""
    names = ["az_expressivity", "az_progressivity", "az_trainability"]
    tau = _nb201_kendall([], names, lambda result: {n: result.network[n] for n in names})
    assert tau["az_expressivity"] > 0.55
    assert tau["az_progressivity"] > 0.2 and tau["az_trainability"] > 0.1
