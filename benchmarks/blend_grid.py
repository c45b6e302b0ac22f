"""The grid of blends the re-blending benchmarks walk (`blend_weights.py`,
`holdout_selection.py`): its command-line parser and the re-blended models."""

from __future__ import annotations

from collections.abc import Iterator

from parzc.predictors.fusion import FusionPredictor
from parzc.store.matrix import FeatureMatrix


def floats(text: str) -> list[float]:
    """Comma-separated numbers, e.g. "0,0.25,0.5"."""
    return [float(x) for x in text.split(",")]


def blends(
    fitted: FusionPredictor,
    pool: FeatureMatrix,
    tree_weights: list[float],
    smoothing: list[float],
    fit_name: str,
    probe_weight: float | None = None,
    prior: tuple[list[str], float] | None = None,
) -> Iterator[tuple[float, float, FusionPredictor]]:
    """(tree weight, smoothing, `fitted` re-blended at them, at `probe_weight` and with the
    proxy prior `prior` (proxies, weight); None: the fit's own) for every pair of the grid; tree
    weights above 0 are skipped, saying so under `fit_name`, for a fit without trees."""
    proxies, prior_weight = prior if prior is not None else (None, None)
    for tree_weight in tree_weights:
        if tree_weight > 0 and not fitted.has_trees:
            print(f"{fit_name} tree_weight={tree_weight}: skipped, no trees", flush=True)
            continue
        for weight in smoothing:
            yield (
                tree_weight,
                weight,
                fitted.reweighted(
                    pool,
                    tree_weight=tree_weight,
                    neighbour_smoothing=weight,
                    probe_weight=probe_weight,
                    prior_weight=prior_weight,
                    prior_proxies=proxies,
                ),
            )
