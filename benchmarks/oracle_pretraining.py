"""Fit `fusion` pretrained on a target closer to the scored label than its proxy ensemble.

A diagnostic of how much a better pretraining target could give. Column 0 of pretraining's
target (the ensemble's ranking, which the score learns before it sees a label) is replaced by
one whose Kendall tau with the run's target's test accuracy over the pool is about `--kendall`:
with `--mode noise`, the accuracy's normal scores blurred by independent Gaussian noise (a
bivariate normal of correlation rho has tau = 2 / pi * asin(rho)), drawn per fit seed; with
`--mode mix`, the normal scores of the ensemble's ranking mixed with the accuracy's at the weight
that reaches `--kendall`, so the target keeps the proxies' errors, only smaller. The heads keep
learning their proxies; fine-tuning, trees, probes and the blend are `fusion`'s. Each fit prints
the Kendall tau its target reached, and is written as `fusion_protocol.py` writes fits, under
LABEL.

    python benchmarks/oracle_pretraining.py RESULTS TARGET LABEL PARAMS_JSON SIZES SEEDS \
        --kendall K [--mode noise|mix]
e.g. python benchmarks/oracle_pretraining.py results/nb201_swap imagenet16-120 oracle80 \
        "$PARAMS" 78,156 0,1,2 --kendall 0.8
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from fusion_protocol import fit_all, run_matrix
from scipy.stats import kendalltau, norm, rankdata
from torch import Tensor

from parzc.allocator import retain_freed_memory
from parzc.predictors import PREDICTORS
from parzc.predictors.fusion import FusionPredictor
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


@PREDICTORS.register("fusion_oracle_target")
@dataclass(kw_only=True, eq=False)
class OracleTargetFusion(FusionPredictor):
    """`fusion` whose pretraining score target is `noisy_copy` of `pretrain_oracle_target`'s
    test accuracy (both settings start with `pretrain_`, so the pretraining cache keeps them
    apart from the proxy-pretrained fits)."""

    name: ClassVar[str] = "fusion_oracle_target"
    pretrain_oracle_target: str = ""
    pretrain_oracle_kendall: float = 1.0
    pretrain_oracle_mode: str = "noise"

    def fit(
        self, train: FeatureMatrix, seed: int, pool: FeatureMatrix | None = None
    ) -> dict[str, float]:
        self._oracle_seed = seed
        return super().fit(train, seed, pool)

    def _pretraining_targets(
        self, pool: FeatureMatrix, reconstructions: list, device: torch.device
    ) -> dict[tuple[str, ...], Tensor]:
        targets = super()._pretraining_targets(pool, reconstructions, device)
        by_arch = TEST_ACCURACY[self.pretrain_oracle_target]
        accuracy = np.array([by_arch[int(a)] for a in pool.arch_ids])
        for target in targets.values():
            if self.pretrain_oracle_mode == "mix":
                base = target[:, 0].cpu().numpy()
                oracle = mixed_towards(base, accuracy, self.pretrain_oracle_kendall)
            else:
                oracle = noisy_copy(accuracy, self.pretrain_oracle_kendall, self._oracle_seed)
            reached = kendalltau(oracle, accuracy).statistic
            print(f"oracle target: Kendall {reached:.4f} over {len(accuracy)} networks", flush=True)
            target[:, 0] = torch.tensor(
                rankdata(oracle) / len(oracle), dtype=torch.float32, device=device
            )
        return targets


def main() -> None:
    retain_freed_memory()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("results", "target", "label", "params", "sizes", "seeds"):
        parser.add_argument(name)
    parser.add_argument("--kendall", type=float, required=True)
    parser.add_argument("--mode", choices=("noise", "mix"), default="noise")
    args = parser.parse_args()
    data = run_matrix(args.results, args.target)
    accuracy = zip(data.arch_ids.tolist(), data.test_acc.tolist(), strict=True)
    TEST_ACCURACY[args.target] = dict(accuracy)
    params = json.loads(args.params) | {
        "pretrain_oracle_target": args.target,
        "pretrain_oracle_kendall": args.kendall,
        "pretrain_oracle_mode": args.mode,
    }
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
