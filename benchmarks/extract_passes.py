"""Milliseconds of each extraction pass on NB201 canonical networks, one thread.

    python benchmarks/extract_passes.py --networks 30

Times, per network and averaged: building the torch network, the data pass with what each
proxy family needs (weight gradients; + fisher; + Hessian-gradient product for grasp; input
Jacobian + ReLU codes), the synflow, zen, meco and split-gradient (zico) passes, and all proxies of
config/nb201_full.yaml's feature set and of every registered proxy in one `compute_proxies`.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import yaml

from parzc.proxies import LAYER_PROXIES, NETWORK_PROXIES
from parzc.proxies.batch import load_batch
from parzc.proxies.compute import compute_proxies
from parzc.proxies.passes import (
    PassData,
    data_pass,
    find_layers,
    meco_pass,
    split_gradient_pass,
    synflow_pass,
    zen_pass,
)
from parzc.spaces import get_space

PASSES = {
    "data: weight gradients": (data_pass, {"grad", "shapes"}),
    "data: + fisher": (data_pass, {"grad", "fisher", "shapes"}),
    "data: + Hessian-gradient (grasp)": (data_pass, {"grad", "hessian", "shapes"}),
    "data: input Jacobian + ReLU codes": (data_pass, {"jacobian", "codes"}),
    "synflow": (synflow_pass, {"synflow"}),
    "zen": (zen_pass, {"zen"}),
    "meco": (meco_pass, {"meco"}),
    "split gradients (zico)": (split_gradient_pass, {"split_grads"}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--networks", type=int, default=30)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--config", default="config/nb201_full.yaml")
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = get_space("nb201")
    arch = dict(space.archs().select("arch_id", "arch").iter_rows())
    nets = np.random.default_rng(0).permutation(space.networks())[: args.networks]
    batch = load_batch(args.batch, 0)
    feature_set = next(iter(yaml.safe_load(open(args.config))["feature_sets"].values()))
    every = (LAYER_PROXIES.names(), NETWORK_PROXIES.names())
    sets = {
        f"all proxies of {args.config}": (feature_set["layer"], feature_set["network"]),
        f"every registered proxy ({len(every[0]) + len(every[1])})": every,
    }
    ms: dict[str, float] = {}
    for arch_id in nets:
        started = time.perf_counter()
        model = space.build(arch[int(arch_id)], "cifar10")
        ms["build the network"] = ms.get("build the network", 0) + time.perf_counter() - started
        layers = find_layers(model)
        for name, (fn, wanted) in PASSES.items():
            data = PassData(model, layers, batch.images, batch.labels, 10, 0)
            started = time.perf_counter()
            fn(data, frozenset(wanted))
            ms[name] = ms.get(name, 0) + time.perf_counter() - started
        for name, (layer, network) in sets.items():
            started = time.perf_counter()
            compute_proxies(model, batch.images, batch.labels, layer, network, 10)
            ms[name] = ms.get(name, 0) + time.perf_counter() - started
    print(f"{len(nets)} canonical NB201 networks, batch {args.batch}, one thread")
    for name, total in ms.items():
        print(f"{name:45} {1e3 * total / len(nets):7.1f} ms")


if __name__ == "__main__":
    main()
