import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from parzc.evaluation.metrics import rank_metrics
from parzc.predictors import (
    NotFittedError,
    Predictor,
    TrainingDiverged,
    create_predictor,
)
from parzc.predictors.mabn import MABN, BayesianLinear, MABNPredictor
from parzc.predictors.torch_base import train_torch_model
from parzc.predictors.training_free import dagger_weights
from parzc.predictors.trees import GBDTPredictor
from parzc.registry import UnknownNameError
from parzc.store.matrix import FeatureMatrix

PROXIES = ["synflow", "snip", "grad_norm"]
N_LAYERS = 12
# A small MABN so that training tests stay fast.
SMALL_MABN = dict(
    embed_dim=64, patch_size=16, hidden_dim=32, depth=2, token_mlp_dim=16, channel_mlp_dim=64
)


def make_features(n: int = 60, seed: int = 0, onehot: bool = False) -> FeatureMatrix:
    """A learnable synthetic problem: accuracy = sum of the layer-wise features + noise."""
    rng = np.random.default_rng(seed)
    raw = rng.gamma(2.0, 1.0, size=(n, len(PROXIES), N_LAYERS))
    lo, hi = raw.min(axis=2, keepdims=True), raw.max(axis=2, keepdims=True)
    layerwise = ((raw - lo) / (hi - lo)).astype(np.float32)
    aggregates = np.concatenate([raw.sum(axis=2), rng.normal(size=(n, 1))], axis=1)
    aggregates[0, 1] = np.nan  # a failed proxy
    acc = layerwise.sum(axis=(1, 2)).astype(np.float64) + rng.normal(scale=0.25, size=n)
    values = {
        "space": "toy",
        "dataset": "toy10",
        "target": "toy10",
        "arch_ids": np.arange(n),
        "network_ids": np.arange(n),
        "proxies": list(PROXIES),
        "layerwise": layerwise,
        "layerwise_raw": raw,
        "aggregate_names": [*PROXIES, "net:nwot"],
        "aggregates": aggregates,
        "onehot": rng.integers(0, 2, size=(n, 5)).astype(np.float32) if onehot else None,
        "val_acc": acc,
        "test_acc": acc + rng.normal(scale=0.1, size=n),
    }
    names = {f.name for f in dataclasses.fields(FeatureMatrix)}
    fm = FeatureMatrix(**{k: v for k, v in values.items() if k in names})
    if "layerwise_raw" not in names:
        fm.layerwise_raw = raw
    return fm


def small_mabn(**params) -> MABNPredictor:
    return create_predictor("mabn", **{"device": "cpu", **SMALL_MABN, **params})


# --- MABN building blocks ------------------------------------------------------------------


def test_bayesian_linear_is_stochastic_with_initial_sigma():
    torch.manual_seed(0)
    layer = BayesianLinear(4, 3)
    x = torch.ones(2, 4)
    assert not torch.equal(layer(x), layer(x))
    expected = F.softplus(torch.tensor(-5.0))
    assert torch.allclose(layer.weight_sigma, expected.expand(3, 4))
    assert torch.allclose(layer.bias_sigma, expected.expand(3))
    assert layer.kl().item() > 0
    # KL vanishes when the posterior equals the prior N(0, prior_sigma^2).
    with torch.no_grad():
        layer.weight_mu.zero_()
        layer.bias_mu.zero_()
        rho = torch.log(torch.expm1(torch.tensor(layer.prior_sigma)))
        layer.weight_rho.fill_(rho)
        layer.bias_rho.fill_(rho)
    assert layer.kl().item() == pytest.approx(0.0, abs=1e-5)


def test_mabn_output_shapes_and_token_mixing_switch():
    mixed = MABN(30, onehot_dim=5, **SMALL_MABN)
    assert mixed(torch.rand(7, 30), torch.rand(7, 5)).shape == (7,)
    assert any("token_mlp" in name for name, _ in mixed.named_parameters())
    channel_only = MABN(30, token_mixing=False, **SMALL_MABN)
    assert channel_only(torch.rand(7, 30)).shape == (7,)
    assert not any("token" in name for name, _ in channel_only.named_parameters())
    with pytest.raises(ValueError, match="multiple of patch_size"):
        MABN(30, embed_dim=60, patch_size=16)


def test_token_mixing_mixes_tokens():
    torch.manual_seed(0)
    model = MABN(30, **SMALL_MABN).eval()
    block = model.blocks[0]
    x = torch.randn(1, 4, 32)
    y_before = block(x)
    x[0, 0] = torch.randn(32)  # perturb token 0 only: other tokens change through token mixing
    assert not torch.allclose(block(x)[0, 1:], y_before[0, 1:])


# --- MABN predictor ------------------------------------------------------------------------


def test_mabn_learns_synthetic_problem():
    data = make_features(n=240, seed=1)
    train, test = data.subset(np.arange(200)), data.subset(np.arange(200, 240))
    model = small_mabn(epochs=30, lr=1e-3)
    report = model.fit(train, seed=0)
    assert report["epochs"] == 30 and np.isfinite(report["final_loss"])
    score, std = model.predict(test)
    assert score.shape == std.shape == (40,)
    assert (std >= 0).all()
    assert rank_metrics(score, test.val_acc)["kendall"] > 0.6


def test_mabn_same_seed_identical_and_save_load_roundtrip(tmp_path):
    data = make_features(n=50)
    first = small_mabn(epochs=2, use_onehot=False, kl_weight=1.0)
    first.fit(data, seed=3)
    second = small_mabn(epochs=2, use_onehot=False, kl_weight=1.0)
    second.fit(data, seed=3)
    score, std = first.predict(data)
    np.testing.assert_array_equal(score, second.predict(data)[0])
    np.testing.assert_array_equal(score, first.predict(data)[0])  # eval_seed fixes MC draws
    other = small_mabn(epochs=2, kl_weight=1.0)
    other.fit(data, seed=4)
    assert not np.array_equal(score, other.predict(data)[0])

    path = tmp_path / "mabn.pkl"
    first.save(path)
    loaded = Predictor.load(path)
    assert isinstance(loaded, MABNPredictor) and loaded.params == first.params
    loaded_score, loaded_std = loaded.predict(data)
    np.testing.assert_array_equal(score, loaded_score)
    np.testing.assert_array_equal(std, loaded_std)
    assert [p.name for p in tmp_path.iterdir()] == ["mabn.pkl"]  # no temporary left behind
    with pytest.raises(ValueError, match="not GBDTPredictor"):
        GBDTPredictor.load(path)


def test_mabn_with_onehot_and_single_mc_sample():
    data = make_features(n=30, onehot=True)
    model = small_mabn(epochs=1, use_onehot=True, mc_samples=1, loss=["mse", "diffkendall"])
    model.fit(data, seed=0)
    score, std = model.predict(data)
    assert score.shape == (30,) and std is None
    no_onehot = make_features(n=30)
    with pytest.raises(ValueError, match="no onehot"):
        model.predict(no_onehot)


def magnitude_problem(n: int = 120, seed: int = 0) -> FeatureMatrix:
    """Every arch has the same layer profile times a scale factor; accuracy follows the scale.

    Within-arch min-max scaling maps all archs to the same vector, so only the global view of
    the layer values can rank them.
    """
    data = make_features(n=n, seed=seed)
    scale = np.random.default_rng(seed).lognormal(0.0, 2.0, size=n)
    raw = data.layerwise_raw[:1] * scale[:, None, None]
    lo, hi = raw.min(axis=2, keepdims=True), raw.max(axis=2, keepdims=True)
    return dataclasses.replace(
        data,
        layerwise=((raw - lo) / (hi - lo)).astype(np.float32),
        layerwise_raw=raw,
        val_acc=np.log(scale),
        test_acc=np.log(scale),
    )


@pytest.mark.parametrize("model", ["mabn", "mlp"])
def test_global_log_scaling_keeps_magnitudes_within_arch_loses_them(model, tmp_path):
    data = magnitude_problem()
    train, test = data.subset(np.arange(80)), data.subset(np.arange(80, 120))
    params = {"device": "cpu", "epochs": 15, "lr": 1e-3, **(SMALL_MABN if model == "mabn" else {})}
    taus = {}
    for scaling in ("within_arch", "global_log", "both"):
        predictor = create_predictor(model, scaling=scaling, **params)
        predictor.fit(train, seed=0)
        score = predictor.predict(test)[0]
        taus[scaling] = rank_metrics(score, test.test_acc)["kendall"]
        predictor.save(tmp_path / f"{scaling}.pkl")  # the training statistics travel along
        np.testing.assert_array_equal(
            Predictor.load(tmp_path / f"{scaling}.pkl").predict(test)[0], score
        )
    assert abs(np.nan_to_num(taus["within_arch"])) < 0.3  # constant scores have no tau (NaN)
    assert taus["global_log"] > 0.8 and taus["both"] > 0.8


def test_unknown_scaling_is_an_error():
    with pytest.raises(ValueError, match="unknown scaling 'zscore'.*within_arch"):
        create_predictor("mabn", scaling="zscore")


def test_nan_features_rejected_before_training():
    data = make_features(n=20)
    data.layerwise[3, 0, 0] = np.nan
    with pytest.raises(ValueError, match="layerwise features contain NaN"):
        small_mabn(epochs=1).fit(data, seed=0)


def test_training_diverged_names_epoch_and_loss():
    model = torch.nn.Linear(3, 1)
    x, y = torch.rand(8, 3), torch.rand(8)
    calls = {"n": 0}

    def loss_fn(pred, target):  # finite in epoch 1, NaN from epoch 2 on (2 batches/epoch)
        calls["n"] += 1
        loss = F.mse_loss(pred.squeeze(-1), target)
        return loss if calls["n"] <= 2 else loss * float("nan")

    with pytest.raises(TrainingDiverged, match=r"epoch 2/5: mean batch loss is nan"):
        train_torch_model(
            model,
            [x],
            y,
            loss_fn=loss_fn,
            epochs=5,
            batch_size=4,
            lr=1e-3,
            weight_decay=0.0,
            seed=0,
        )


def test_predict_checks_columns_and_fit_state():
    data = make_features(n=20)
    with pytest.raises(NotFittedError):
        small_mabn().predict(data)
    model = small_mabn(epochs=1)
    model.fit(data, seed=0)
    data.proxies = list(reversed(data.proxies))
    with pytest.raises(ValueError, match="proxies differ from training"):
        model.predict(data)


# --- baselines -----------------------------------------------------------------------------


def test_mlp_trains_without_uncertainty():
    data = make_features(n=120, seed=2, onehot=True)
    model = create_predictor("mlp", epochs=20, lr=1e-3, device="cpu", use_onehot=True)
    report = model.fit(data.subset(np.arange(100)), seed=0)
    assert report["epochs"] == 20
    score, std = model.predict(data.subset(np.arange(100, 120)))
    assert score.shape == (20,) and std is None
    assert rank_metrics(score, data.val_acc[100:])["kendall"] > 0.4


def test_gbdt_handles_nan_and_roundtrips(tmp_path):
    data = make_features(n=200, seed=3, onehot=True)
    data.val_acc = np.log(data.aggregates[:, 0]) + np.random.default_rng(0).normal(0, 0.1, 200)
    model = create_predictor("gbdt", max_iter=100, use_onehot=True)
    report = model.fit(data.subset(np.arange(150)), seed=0)
    assert report["epochs"] == 100
    test = data.subset(np.arange(150, 200))
    score, std = model.predict(test)
    assert score.shape == (50,) and std is None
    assert rank_metrics(score, test.val_acc)["kendall"] > 0.4
    model.save(tmp_path / "gbdt.pkl")
    np.testing.assert_array_equal(Predictor.load(tmp_path / "gbdt.pkl").predict(test)[0], score)
    test.aggregate_names = ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="aggregate columns differ"):
        model.predict(test)


def test_gbdt_onehot_alone_ignores_the_proxies():
    data = make_features(n=120, seed=4, onehot=True)
    data.val_acc = data.onehot @ np.array([3.0, -2.0, 1.0, 0.5, 0.0]) + data.aggregates[:, 0]
    train, test = data.subset(np.arange(90)), data.subset(np.arange(90, 120))
    alone = create_predictor("gbdt", max_iter=50, use_onehot=True, use_proxies=False)
    alone.fit(train, seed=0)
    score, _ = alone.predict(test)
    # the same trees as on a matrix without aggregate columns, whatever the proxies hold
    no_proxies = dataclasses.replace(data, aggregate_names=[], aggregates=np.zeros((len(data), 0)))
    reference = create_predictor("gbdt", max_iter=50, use_onehot=True)
    reference.fit(no_proxies.subset(np.arange(90)), seed=0)
    np.testing.assert_array_equal(
        score, reference.predict(no_proxies.subset(np.arange(90, 120)))[0]
    )
    test.aggregates = test.aggregates * 0 + 7.0
    test.aggregate_names = ["a", "b", "c", "d"]
    np.testing.assert_array_equal(alone.predict(test)[0], score)
    with pytest.raises(
        ValueError, match="use_proxies=False, use_onehot=False and use_graph_features=False"
    ):
        create_predictor("gbdt", use_proxies=False)


def test_gbdt_rank_target_sees_only_the_order_of_the_labels():
    data = make_features(n=120, seed=5, onehot=True)
    data.val_acc = np.log(data.aggregates[:, 0]) + np.random.default_rng(1).normal(0, 0.1, 120)
    train, test = data.subset(np.arange(90)), data.subset(np.arange(90, 120))
    stretched = dataclasses.replace(train, val_acc=np.exp(train.val_acc))  # same order

    def scores(matrix: FeatureMatrix, target: str) -> np.ndarray:
        model = create_predictor("gbdt", max_iter=50, use_onehot=True, target=target)
        model.fit(matrix, seed=0)
        return model.predict(test)[0]

    ranked = scores(train, "rank")
    np.testing.assert_array_equal(ranked, scores(stretched, "rank"))
    assert not np.allclose(scores(train, "accuracy"), scores(stretched, "accuracy"))
    assert rank_metrics(ranked, test.val_acc)["kendall"] > 0.4
    with pytest.raises(UnknownNameError, match="unknown target transform 'order'"):
        create_predictor("gbdt", target="order")


def test_single_proxy_returns_the_column():
    data = make_features(n=10)
    model = create_predictor("single_proxy", proxy="net:nwot")
    assert model.fit(data, seed=0)["epochs"] == 0
    score, std = model.predict(data)
    np.testing.assert_array_equal(score, data.aggregates[:, 3])
    assert std is None
    with pytest.raises(ValueError, match=r"'zen'; available: synflow, snip, grad_norm, net:nwot"):
        create_predictor("single_proxy", proxy="zen").fit(data, seed=0)


def test_parzc_dagger_weighted_sum_of_raw_layers():
    data = make_features(n=10)
    w = dagger_weights(N_LAYERS)
    assert w[0] == 0.5 and w[1] == pytest.approx((np.sin(0.1) + 1) / 2)
    score, std = create_predictor("parzc_dagger").predict(data)  # default: the first proxy
    np.testing.assert_allclose(score, data.layerwise_raw[:, 0, :] @ w)
    assert std is None
    snip, _ = create_predictor("parzc_dagger", proxy="snip").predict(data)
    np.testing.assert_allclose(snip, data.layerwise_raw[:, 1, :] @ w)
    with pytest.raises(ValueError, match="unknown proxy 'zen'"):
        create_predictor("parzc_dagger", proxy="zen").predict(data)


def test_create_predictor_errors():
    with pytest.raises(UnknownNameError, match="unknown predictor 'xgb'.*gbdt, mabn, mlp"):
        create_predictor("xgb")
    with pytest.raises(TypeError, match="unknown parameter.*hidden_size.*accepted:.*hidden_dim"):
        create_predictor("mabn", hidden_size=3)
    with pytest.raises(UnknownNameError, match="unknown loss"):
        create_predictor("mlp", loss="hinge")
    with pytest.raises(ValueError, match="mc_samples"):
        create_predictor("mabn", mc_samples=0)


def test_single_proxy_ranks_failed_archs_last():
    from parzc.predictors.training_free import rank_failures_last

    scores = rank_failures_last(np.array([2.0, np.nan, -1.0, np.inf]))
    np.testing.assert_array_equal(scores, [2.0, -2.0, -1.0, -2.0])
    assert np.all(np.isfinite(rank_failures_last(np.array([np.nan, np.nan]))))
