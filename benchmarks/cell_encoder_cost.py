"""Milliseconds of one training step (forward + backward) of fusion's cell encoder, per cell
attention, with and without flow passes, side by side.

    python benchmarks/cell_encoder_cost.py --cells 256 --steps 20 --rounds 3

Encodes the first `--cells` NB201 cells (the fixed 8-node graphs of `parzc.spaces`) with
fusion's default width and depth (64, 2), one thread; the variants alternate over `--rounds`,
each timed over `--steps` steps after two untimed ones. Prints each variant's median and its
ratio to `links` attention without flow passes.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from parzc.predictors.cell_encoder import CELL_ATTENTION, GraphEncoder
from parzc.spaces import get_space


def nb201_cells(count: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Operation ids, adjacency and vocabulary size of the first `count` NB201 cells."""
    space = get_space("nb201")
    graphs = [space.cell_graph(arch) for arch in space.archs()["arch"].head(count)]
    ops = torch.as_tensor(np.stack([g.ops for g in graphs]), dtype=torch.long)
    adjacency = torch.as_tensor(np.stack([g.adjacency for g in graphs]), dtype=torch.float32)
    return ops, adjacency, len(space.graph_vocabulary)


def step_ms(encoder: GraphEncoder, ops: torch.Tensor, adjacency: torch.Tensor, steps: int) -> float:
    for _ in range(2):
        encoder(ops, adjacency).sum().backward()
    started = time.perf_counter()
    for _ in range(steps):
        encoder(ops, adjacency).sum().backward()
    return (time.perf_counter() - started) / steps * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ops, adjacency, vocabulary = nb201_cells(args.cells)
    variants = [(a, f) for a in CELL_ATTENTION.names() for f in (False, True)]
    times: dict[tuple[str, bool], list[float]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for attention, flow in variants:
            torch.manual_seed(0)
            encoder = GraphEncoder(
                vocabulary, ops.shape[1], 64, 2, attention=attention, flow_passes=flow
            )
            times[attention, flow].append(step_ms(encoder, ops, adjacency, args.steps))
    base = statistics.median(times["links", False])
    print(f"{args.cells} NB201 cells, dim 64, depth 2, one thread; median of {args.rounds} rounds")
    print("| attention | flow passes | ms per step | ratio |\n|---|---|---|---|")
    for attention, flow in variants:
        ms = statistics.median(times[attention, flow])
        print(f"| {attention} | {'yes' if flow else 'no'} | {ms:.1f} | {ms / base:.2f}x |")


if __name__ == "__main__":
    main()
