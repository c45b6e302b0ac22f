"""Ranking metrics comparing predicted scores with ground-truth accuracies.

Higher is better for both the prediction and the ground truth. `rank_metrics` returns:

- kendall, spearman, pearson: Kendall tau-b, Spearman rho and Pearson r over all architectures.
- kendall_top20, spearman_top20, kendall_top50, spearman_top50: the same correlations computed
  only over the architectures in the top 20 % / 50 % of the ground truth.
- precision_at_1pct, precision_at_5pct, precision_at_10pct: with k = max(1, round(frac * n)),
  the fraction of the predicted top-k that is in the true top-k.
- best_pred_true_rank: the 1-based ground-truth rank (1 = best) of the architecture with the
  highest prediction; its rank is 1 + the number of architectures with a strictly higher truth.
- best_pred_true_acc: the ground-truth value of that architecture.

Ties are broken deterministically by the lower index (for top-k sets and the best prediction).
A correlation that is undefined (constant input, fewer than two points) is NaN.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

TOP_FRACTIONS = {"top20": 0.2, "top50": 0.5}
PRECISION_FRACTIONS = {"1pct": 0.01, "5pct": 0.05, "10pct": 0.10}


def _top_k(frac: float, n: int) -> int:
    return max(1, round(frac * n))


def _order_desc(x: np.ndarray) -> np.ndarray:
    """Indices from the highest to the lowest value; ties keep the lower index first."""
    return np.argsort(-x, kind="stable")


def _correlations(pred: np.ndarray, true: np.ndarray) -> tuple[float, float, float]:
    """(kendall, spearman, pearson), NaN where undefined."""
    if len(pred) < 2:
        return float("nan"), float("nan"), float("nan")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # constant-input warnings: the result is NaN
        kendall = stats.kendalltau(pred, true).statistic
        spearman = stats.spearmanr(pred, true).statistic
        pearson = stats.pearsonr(pred, true).statistic
    return float(kendall), float(spearman), float(pearson)


def rank_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Correlation, top-k and best-architecture metrics of `pred` against `true` (module doc)."""
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.ndim != 1 or pred.shape != true.shape:
        raise ValueError(
            f"pred and true must be 1-D arrays of equal length, got {pred.shape} and {true.shape}"
        )
    if len(pred) == 0:
        raise ValueError("rank_metrics needs at least one architecture")
    for label, arr in (("pred", pred), ("true", true)):
        n_nan = int(np.isnan(arr).sum())
        if n_nan:
            raise ValueError(
                f"{label} contains {n_nan} NaN value(s) of {len(arr)}; "
                "drop or impute them before computing rank metrics"
            )
    n = len(pred)
    out: dict[str, float] = {}
    out["kendall"], out["spearman"], out["pearson"] = _correlations(pred, true)

    true_order = _order_desc(true)
    for tag, frac in TOP_FRACTIONS.items():
        top = true_order[: _top_k(frac, n)]
        kendall, spearman, _ = _correlations(pred[top], true[top])
        out[f"kendall_{tag}"] = kendall
        out[f"spearman_{tag}"] = spearman

    pred_order = _order_desc(pred)
    for tag, frac in PRECISION_FRACTIONS.items():
        k = _top_k(frac, n)
        hits = np.intersect1d(pred_order[:k], true_order[:k]).size
        out[f"precision_at_{tag}"] = hits / k

    best = int(pred_order[0])
    out["best_pred_true_rank"] = float(1 + np.sum(true > true[best]))
    out["best_pred_true_acc"] = float(true[best])
    return out
