"""Fit `fusion` pretrained on a target closer to the scored label than its proxy ensemble.

A diagnostic of how much a better pretraining target could give. Column 0 of pretraining's
target (the ensemble's ranking, which the score learns before it sees a label) is replaced by an
oracle built from the run's target's test accuracy over the pool (`--mode`):

- `noise`: the accuracy's normal scores blurred by independent Gaussian noise, drawn per fit
  seed, to a Kendall tau of about `--kendall` with the accuracy (a bivariate normal of
  correlation rho has tau = 2 / pi * asin(rho));
- `mix`: the normal scores of the ensemble's ranking mixed with the accuracy's at the weight that
  reaches `--kendall`, so the target keeps the proxies' errors, only smaller;
- `span`: the best the head proxies can say, the least-squares fit of the accuracy's normal
  scores on the normal scores of their ranks (`pretrain_head_proxies`, or `pretrain_proxies`
  without heads), over the pool.

The heads keep learning their proxies; fine-tuning, trees, probes and the blend are `fusion`'s.
Each fit prints the Kendall tau its target reached, and is written as `fusion_protocol.py`
writes fits, under LABEL.

    python benchmarks/oracle_pretraining.py RESULTS TARGET LABEL PARAMS_JSON SIZES SEEDS \
        --mode noise|mix --kendall K | --mode span
e.g. python benchmarks/oracle_pretraining.py results/nb201_swap imagenet16-120 mix85 \
        "$PARAMS" 78,156 0,1,2 --mode mix --kendall 0.85
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from fusion_protocol import fit_all, run_matrix
from scipy.stats import kendalltau, norm, rankdata
from torch import Tensor

from parzc.allocator import retain_freed_memory
from parzc.predictors import PREDICTORS
from parzc.predictors.fusion import FusionPredictor
from parzc.predictors.proxy_ensembles import proxy_ranks
from parzc.store.matrix import FeatureMatrix

# each target's test accuracy by arch id, filled by `main` from the run's matrix
TEST_ACCURACY: dict[str, dict[int, float]] = {}


def normal_scores(values: np.ndarray) -> np.ndarray:
    """Each value's rank mapped to the standard normal quantile."""
    return norm.ppf((rankdata(values) - 0.5) / len(values))


def noisy_copy(accuracy: np.ndarray, kendall: float, seed: int) -> np.ndarray:
    """`accuracy`'s normal scores mixed with standard normal noise so that the result's
    Kendall tau with `accuracy` is about `kendall`."""
    rho = math.sin(math.pi * kendall / 2)
    noise = np.random.default_rng(seed).standard_normal(len(accuracy))
    return rho * normal_scores(accuracy) + math.sqrt(1 - rho**2) * noise


def mixed_towards(base: np.ndarray, accuracy: np.ndarray, kendall: float) -> np.ndarray:
    """The normal scores of `base` and `accuracy` mixed at the weight (found by bisection) at
    which the mix's Kendall tau with `accuracy` is `kendall`."""
    base_scores, truth = normal_scores(base), normal_scores(accuracy)
    low, high = 0.0, 1.0
    for _ in range(30):
        weight = (low + high) / 2
        mix = weight * truth + (1 - weight) * base_scores
        if kendalltau(mix, accuracy).statistic < kendall:
            low = weight
        else:
            high = weight
    return mix


def span_fit(pool: FeatureMatrix, proxies: list[str], accuracy: np.ndarray) -> np.ndarray:
    """The least-squares fit of `accuracy`'s normal scores on the normal scores of `proxies`'
    ranks over `pool`, with an intercept."""
    columns = [normal_scores(ranks) for ranks in proxy_ranks(pool, proxies)]
    design = np.column_stack([*columns, np.ones(len(pool))])
    coefficients, *_ = np.linalg.lstsq(design, normal_scores(accuracy), rcond=None)
    return design @ coefficients


@PREDICTORS.register("fusion_oracle_target")
@dataclass(kw_only=True, eq=False)
class OracleTargetFusion(FusionPredictor):
    """`fusion` whose pretraining score target is an oracle (`pretrain_oracle_mode`) from
    `pretrain_oracle_target`'s test accuracy (the settings start with `pretrain_`, so the
    pretraining cache keeps them apart from the proxy-pretrained fits)."""

    name: ClassVar[str] = "fusion_oracle_target"
    pretrain_oracle_target: str = ""
    pretrain_oracle_mode: str = "noise"
    pretrain_oracle_kendall: float | None = None

    def fit(
        self, train: FeatureMatrix, seed: int, pool: FeatureMatrix | None = None
    ) -> dict[str, Any]:
        self._oracle_seed = seed
        return super().fit(train, seed, pool)

    def _pretraining_targets(
        self, pool: FeatureMatrix, reconstructions: list, device: torch.device
    ) -> dict[tuple[str, ...], Tensor]:
        targets = super()._pretraining_targets(pool, reconstructions, device)
        by_arch = TEST_ACCURACY[self.pretrain_oracle_target]
        accuracy = np.array([by_arch[int(a)] for a in pool.arch_ids])
        for target in targets.values():
            base = target[:, 0].cpu().numpy()
            oracle = ORACLES[self.pretrain_oracle_mode](self, base, accuracy, pool)
            reached = kendalltau(oracle, accuracy).statistic
            print(f"oracle target: Kendall {reached:.4f} over {len(accuracy)} networks", flush=True)
            target[:, 0] = torch.tensor(
                rankdata(oracle) / len(oracle), dtype=torch.float32, device=device
            )
        return targets


# each mode's oracle from (the fit, the ensemble's ranking, the accuracy, the pool)
ORACLES: dict[
    str, Callable[[OracleTargetFusion, np.ndarray, np.ndarray, FeatureMatrix], np.ndarray]
] = {
    "noise": lambda fit, base, accuracy, pool: noisy_copy(
        accuracy, fit.pretrain_oracle_kendall, fit._oracle_seed
    ),
    "mix": lambda fit, base, accuracy, pool: mixed_towards(
        base, accuracy, fit.pretrain_oracle_kendall
    ),
    "span": lambda fit, base, accuracy, pool: span_fit(pool, fit._head_proxies, accuracy),
}


def main() -> None:
    retain_freed_memory()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("results", "target", "label", "params", "sizes", "seeds"):
        parser.add_argument(name)
    parser.add_argument("--mode", choices=sorted(ORACLES), required=True)
    parser.add_argument("--kendall", type=float)
    args = parser.parse_args()
    if (args.kendall is None) != (args.mode == "span"):
        parser.error("--kendall is needed with --mode noise or mix, and only with them")
    data = run_matrix(args.results, args.target)
    accuracy = zip(data.arch_ids.tolist(), data.test_acc.tolist(), strict=True)
    TEST_ACCURACY[args.target] = dict(accuracy)
    params = (
        json.loads(args.params)
        | {
            "pretrain_oracle_target": args.target,
            "pretrain_oracle_mode": args.mode,
        }
        | ({} if args.kendall is None else {"pretrain_oracle_kendall": args.kendall})
    )
    fit_all(
        args.results,
        args.target,
        args.label,
        "fusion_oracle_target",
        params,
        [int(size) for size in args.sizes.split(",")],
        [int(seed) for seed in args.seeds.split(",")],
    )


if __name__ == "__main__":
    main()
