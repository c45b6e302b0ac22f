"""Gate: a few SGD steps on the shipped images as an NB201 proxy, before any extraction.

    python benchmarks/training_speed_gate.py results/nb201_swap --networks 100 --steps 20

Each of a seeded sample of a run's canonical networks, initialised as extraction initialises it
(`parzc.extract.network_seed`), takes `--steps` SGD steps (momentum 0.9, Nesterov, weight decay
5e-4, NB201's optimiser) on minibatches of `--batch` of the 320 shipped CIFAR-10 images, in
their shipped order. Two scores, higher for faster training: minus the sum of the steps' losses
(the training-speed estimate of Ru et al., "Speedy Performance Estimation for Neural Architecture
Search", NeurIPS 2021, over steps instead of epochs) and minus the mean loss of the last quarter
of the steps. Printed per target: each score's Kendall tau with the test accuracy over the
sample, and that of `fusion_swap`'s pretraining target (the mean rank of seven stored proxies)
without and with the score as an eighth. Also prints the seconds a network took (one thread).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from fusion_protocol import run_matrix
from scipy import stats

from parzc.extract import network_seed
from parzc.predictors.proxy_ensembles import column_ranks, mean_rank, proxy_ranks
from parzc.proxies.batch import load_batch
from parzc.spaces import get_space

SEVEN = ["net:nwot", "net:jacov", "synflow", "net:params", "net:flops", "net:meco", "net:swap"]
SHIPPED_IMAGES = 320


def training_losses(model: torch.nn.Module, steps: int, batch: int, lr: float) -> np.ndarray:
    """The loss of each of `steps` SGD steps on the shipped images, in the shipped order."""
    data = load_batch(SHIPPED_IMAGES, seed=0)  # every shipped image, in the shipped order
    optimiser = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    model.train()
    losses = []
    for step in range(steps):
        start = (step * batch) % SHIPPED_IMAGES
        images, labels = data.images[start : start + batch], data.labels[start : start + batch]
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return np.asarray(losses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--networks", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--targets", default="cifar10,cifar100,imagenet16-120")
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = get_space("nb201")
    arch_of = dict(space.archs().select("arch_id", "arch").iter_rows())
    targets = args.targets.split(",")
    first = run_matrix(args.results, targets[0])
    canonical = np.flatnonzero(first.arch_ids == first.network_ids)
    rows = np.random.default_rng(args.seed).permutation(canonical)[: args.networks]
    ids = first.arch_ids[rows]
    scores = {"speed": [], "late": []}
    start = time.perf_counter()
    for arch_id in ids:
        torch.manual_seed(network_seed(0, int(arch_id)))
        losses = training_losses(
            space.build(arch_of[int(arch_id)], "cifar10"), args.steps, args.batch, args.lr
        )
        scores["speed"].append(-losses.sum())
        scores["late"].append(-losses[-max(args.steps // 4, 1) :].mean())
    seconds = (time.perf_counter() - start) / len(ids)
    print(f"{len(ids)} networks, {args.steps} steps of {args.batch}: {seconds:.2f} s a network")
    print("| target | speed | late loss | seven | seven + speed |\n|---|---|---|---|---|")
    for target in targets:
        data = run_matrix(args.results, target)
        index = {int(a): i for i, a in enumerate(data.arch_ids)}
        sample = data.subset(np.array([index[int(a)] for a in ids]))
        seven = proxy_ranks(sample, SEVEN)
        speed = column_ranks([np.asarray(scores["speed"])])
        truth = sample.test_acc

        def tau(score: np.ndarray, truth: np.ndarray = truth) -> float:
            return stats.kendalltau(score, truth).statistic

        print(
            f"| {target} | {tau(np.asarray(scores['speed'])):.3f} "
            f"| {tau(np.asarray(scores['late'])):.3f} | {tau(mean_rank(seven)):.3f} "
            f"| {tau(mean_rank(np.vstack([seven, speed]))):.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
