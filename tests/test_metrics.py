import math

import numpy as np
import pytest
from scipy import stats

from parzc.evaluation.metrics import rank_metrics

KEYS = {
    "kendall",
    "spearman",
    "pearson",
    "kendall_top20",
    "spearman_top20",
    "kendall_top50",
    "spearman_top50",
    "precision_at_1pct",
    "precision_at_5pct",
    "precision_at_10pct",
    "best_pred_true_rank",
    "best_pred_true_acc",
}


def test_keys_and_perfect_ranking():
    true = np.arange(20, dtype=float)
    m = rank_metrics(true * 3 + 1, true)
    assert set(m) == KEYS
    for key in KEYS - {"best_pred_true_acc", "best_pred_true_rank"}:
        assert m[key] == pytest.approx(1.0), key
    assert m["best_pred_true_rank"] == 1
    assert m["best_pred_true_acc"] == 19


def test_known_kendall_and_spearman():
    # One discordant pair of six: tau = (5 - 1) / 6; rho = 1 - 6 * 2 / (4 * 15) = 0.8.
    m = rank_metrics(np.array([1.0, 2.0, 4.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert m["kendall"] == pytest.approx(4 / 6)
    assert m["spearman"] == pytest.approx(0.8)
    # Reversed order: -1 everywhere.
    r = rank_metrics(-np.arange(10.0), np.arange(10.0))
    assert r["kendall"] == pytest.approx(-1.0)
    assert r["spearman"] == pytest.approx(-1.0)
    assert r["best_pred_true_rank"] == 10
    assert r["best_pred_true_acc"] == 0


def test_top_fraction_correlations_use_true_top_archs():
    # 10 archs; true top 50 % are indices 5..9 (true 5..9); pred ranks them in reverse.
    true = np.arange(10.0)
    pred = np.array([0, 1, 2, 3, 4, 9, 8, 7, 6, 5], dtype=float)
    m = rank_metrics(pred, true)
    assert m["kendall_top50"] == pytest.approx(-1.0)
    assert m["spearman_top50"] == pytest.approx(-1.0)
    # Top 20 %: indices 8, 9 with preds 6, 5 -> discordant.
    assert m["kendall_top20"] == pytest.approx(-1.0)
    assert m["kendall"] == pytest.approx(stats.kendalltau(pred, true).statistic)


def test_precision_at_k():
    n = 100
    true = np.arange(n, dtype=float)
    pred = true.copy()
    pred[99], pred[0] = pred[0], pred[99]  # the best arch is predicted worst and vice versa
    m = rank_metrics(pred, true)
    assert m["precision_at_1pct"] == 0.0  # k = 1: predicted top is arch 0
    assert m["precision_at_5pct"] == pytest.approx(4 / 5)
    assert m["precision_at_10pct"] == pytest.approx(9 / 10)
    assert m["best_pred_true_rank"] == 100
    assert m["best_pred_true_acc"] == 0.0


def test_precision_k_is_at_least_one():
    m = rank_metrics(np.array([0.1, 0.9, 0.5]), np.array([1.0, 3.0, 2.0]))
    assert m["precision_at_1pct"] == 1.0


def test_best_pred_ties_are_deterministic():
    # Tied top predictions: the lower index (0, true 5) wins; rank counts strictly better archs.
    pred = np.array([1.0, 1.0, 0.0, 0.0])
    true = np.array([5.0, 9.0, 7.0, 5.0])
    m = rank_metrics(pred, true)
    assert m["best_pred_true_acc"] == 5.0
    assert m["best_pred_true_rank"] == 3


def test_constant_predictions_give_nan_not_crash():
    m = rank_metrics(np.ones(10), np.arange(10.0))
    assert math.isnan(m["kendall"]) and math.isnan(m["spearman"]) and math.isnan(m["pearson"])
    assert m["best_pred_true_rank"] == 10  # index 0 holds the worst truth


def test_nan_predictions_raise():
    with pytest.raises(ValueError, match="pred contains 1 NaN"):
        rank_metrics(np.array([1.0, np.nan, 2.0]), np.arange(3.0))


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="equal length"):
        rank_metrics(np.arange(3.0), np.arange(4.0))


def test_uncertainty_metric_ranks_errors():
    import polars as pl

    from parzc.evaluation.predictions import uncertainty_metrics

    rng = np.random.default_rng(0)
    target = rng.normal(size=200)
    score = target + rng.normal(size=200)
    error = np.abs((score - score.mean()) / score.std() - (target - target.mean()) / target.std())
    frame = pl.DataFrame({"score": score, "target": target, "uncertainty": error})
    assert uncertainty_metrics(frame)["uncertainty_error_spearman"] == pytest.approx(1.0)
    frame = frame.with_columns(uncertainty=-pl.col("uncertainty"))
    assert uncertainty_metrics(frame)["uncertainty_error_spearman"] == pytest.approx(-1.0)
    none = frame.with_columns(uncertainty=pl.lit(float("nan")))
    assert np.isnan(uncertainty_metrics(none)["uncertainty_error_spearman"])


def test_strict_ceiling_on_nb201_cifar10():
    """CIFAR-10's validation and test accuracies come from different NB201 training runs: over
    the 9,445 canonical networks their Kendall tau is 0.874, the strict protocol's ceiling."""
    import polars as pl

    from parzc.evaluation.protocols import ceiling
    from parzc.spaces import get_space

    space = get_space("nb201")
    truth = space.accuracy_table().filter(pl.col("dataset") == "cifar10")
    truth = truth.with_columns(
        network=pl.col("arch").map_elements(space.canonical, return_dtype=pl.Utf8)
    ).unique("network", keep="first", maintain_order=True)
    assert len(truth) == 9445
    frame = truth.select(train_target="val_acc", target="test_acc")
    assert ceiling(frame, "target") == pytest.approx(0.874, abs=5e-4)
    assert ceiling(frame, "train_target") == pytest.approx(1.0)
    assert np.isnan(ceiling(frame.with_columns(target=pl.lit(float("nan"))), "target"))
