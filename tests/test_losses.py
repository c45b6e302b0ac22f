import numpy as np
import pytest
import torch
from scipy import stats

from parzc.predictors.losses import (
    diff_kendall,
    list_mle,
    make_loss,
    mse,
    pairwise_gap,
    pairwise_logistic,
)
from parzc.registry import UnknownNameError


def _data(n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    target = rng.normal(size=n)
    pred = target + rng.normal(scale=1.0, size=n)
    return torch.tensor(pred), torch.tensor(target)


def test_diff_kendall_approaches_kendall_tau():
    pred, target = _data()
    tau = stats.kendalltau(pred.numpy(), target.numpy()).statistic  # no ties: tau-b == tau-a
    assert abs(-diff_kendall(pred, target, alpha=1e3).item() - tau) < 1e-3


def _unit_gap(x: torch.Tensor) -> torch.Tensor:
    """x scaled so that its smallest pairwise gap is 1."""
    gaps = (x.unsqueeze(0) - x.unsqueeze(1)).abs()
    return x / gaps[gaps > 0].min()


def test_diff_kendall_error_decreases_with_alpha():
    # All pairs concordant: every smooth-sign product grows towards 1 with alpha.
    _, target = _data(seed=2)
    target = _unit_gap(target) * 0.01
    errors = [1.0 + diff_kendall(2 * target, target, alpha=a).item() for a in (1, 10, 100, 1000)]
    assert all(later < earlier for earlier, later in zip(errors, errors[1:], strict=False))
    assert errors[-1] < 1e-3
    # Mixed pairs, scaled to unit gaps: the limit is reached to high precision.
    pred, target = _data(seed=3)
    tau = stats.kendalltau(pred.numpy(), target.numpy()).statistic
    loss = diff_kendall(_unit_gap(pred), _unit_gap(target), alpha=1e3)
    assert abs(-loss.item() - tau) < 1e-9


def test_diff_kendall_sign_and_range():
    x = torch.arange(10.0)
    assert diff_kendall(x, x, alpha=1e4).item() == pytest.approx(-1.0)
    assert diff_kendall(-x, x, alpha=1e4).item() == pytest.approx(1.0)


@pytest.mark.parametrize("loss", [diff_kendall, mse, pairwise_logistic, pairwise_gap, list_mle])
def test_gradients_finite_with_ties_and_identical_preds(loss):
    target = torch.tensor([1.0, 1.0, 2.0, 2.0, 3.0])
    for pred_values in ([0.5, 0.5, 0.5, 0.5, 0.5], [0.1, 0.1, 0.3, 0.2, 0.9]):
        pred = torch.tensor(pred_values, requires_grad=True)
        value = loss(pred, target)
        value.backward()
        assert torch.isfinite(value)
        assert torch.isfinite(pred.grad).all()


def test_degenerate_batches_give_zero_with_graph():
    pred = torch.tensor([0.3], requires_grad=True)
    for loss in (diff_kendall, pairwise_logistic, pairwise_gap):
        value = loss(pred, torch.tensor([1.0]))
        assert value.item() == 0.0
        value.backward()
    constant = pairwise_logistic(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 1.0]))
    assert constant.item() == 0.0


def test_pairwise_logistic_value():
    # One pair with target_0 > target_1: softplus(-(2 - 1)) = log(1 + e^-1).
    value = pairwise_logistic(torch.tensor([2.0, 1.0]), torch.tensor([1.0, 0.0]))
    assert value.item() == pytest.approx(np.log1p(np.exp(-1.0)))


def test_pairwise_gap_weighs_each_pair_by_its_target_gap():
    # pairs (0>1, gap 1), (0>2, gap 3), (1>2, gap 2); weights 1, 3, 2 over their sum 6
    pred, target = torch.tensor([0.0, 1.0, -1.0]), torch.tensor([3.0, 2.0, 0.0])
    terms = {(0, 1): 1.0, (0, 2): 3.0, (1, 2): 2.0}
    softplus = {k: np.log1p(np.exp(-(pred[k[0]] - pred[k[1]]).item())) for k in terms}
    expected = sum(w * softplus[k] for k, w in terms.items()) / 6.0
    assert pairwise_gap(pred, target).item() == pytest.approx(expected)


def test_list_mle_is_the_plackett_luce_likelihood_of_the_target_order():
    # target order 2, 0, 1: picks s2 of {s0, s1, s2}, then s0 of {s0, s1}, then s1 of {s1}
    pred, target = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([1.0, 0.0, 3.0])
    s0, s1, s2 = pred.tolist()
    log_likelihood = (
        s2 - np.log(np.exp(s0) + np.exp(s1) + np.exp(s2)) + s0 - np.log(np.exp(s0) + np.exp(s1))
    )  # the last pick is certain
    assert list_mle(pred, target).item() == pytest.approx(-log_likelihood / 3)
    # scores in the target's order are more likely than reversed ones; a shift changes nothing
    ordered = torch.arange(5.0)
    assert list_mle(ordered, ordered) < list_mle(-ordered, ordered)
    assert list_mle(ordered + 7.0, ordered).item() == pytest.approx(
        list_mle(ordered, ordered).item()
    )


def test_make_loss_combinations():
    pred, target = _data(seed=1)
    dk, sq, pw = diff_kendall(pred, target), mse(pred, target), pairwise_logistic(pred, target)
    assert make_loss("diffkendall")(pred, target).item() == pytest.approx(dk.item())
    assert make_loss(["mse", "diffkendall"])(pred, target).item() == pytest.approx((sq + dk).item())
    combo = make_loss({"pairwise": 1.0, "diffkendall": 0.5})
    assert combo(pred, target).item() == pytest.approx((pw + 0.5 * dk).item())


def test_make_loss_errors():
    with pytest.raises(
        UnknownNameError, match="unknown loss 'huber'.*diffkendall, listmle, mse, pairwise"
    ):
        make_loss("huber")
    with pytest.raises(UnknownNameError):
        make_loss({"mse": 1.0, "nope": 1.0})
    with pytest.raises(ValueError, match="empty"):
        make_loss([])
    with pytest.raises(ValueError, match="twice"):
        make_loss(["mse", "mse"])
    with pytest.raises(ValueError, match="finite"):
        make_loss({"mse": float("nan")})
