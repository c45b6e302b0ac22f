"""The DARTS cell space (Liu et al., ICLR 2019) with NAS-Bench-301 ground truth (Siems et al.).

A genotype gives each of a normal and a reduction cell 8 edges `[op, input]`: intermediate node k
(0-based, 4 per cell) sums the ops on edges 2k and 2k+1, applied to state `input` (0 and 1 are
the two preprocessed cell inputs, 2 + j is intermediate node j, so `input < k + 2`); the cell
outputs the channel concatenation of its `*_concat` nodes. The network is DARTS'
`NetworkCIFAR` (cnn/model.py, ops from cnn/operations.py) without the auxiliary head and without
drop path, both training-only.

Arch strings are canonical JSON of the genotype:
`{"normal": [[op, input] x 8], "normal_concat": [...], "reduce": [...], "reduce_concat": [...]}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from parzc.resources import resource
from parzc.spaces import SPACES
from parzc.spaces.base import (
    ACCURACY_COLUMNS,
    DatasetInfo,
    InvalidArchError,
    SearchSpace,
    single_accuracy_table,
)
from parzc.spaces.graph import PAD, CellGraph, make_graph

if TYPE_CHECKING:
    from torch import nn

OPS = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
CELL_TYPES = ("normal", "reduce")
STEPS = 4  # intermediate nodes per cell
EDGES = 2 * STEPS
NUM_STATES = STEPS + 2
STEM_MULTIPLIER = 3
# NAS-Bench-301 training (automl/nasbench301, nasbench301/data_generation/configs/config_*.json)
NB301_CHANNELS = 32
NB301_LAYERS = 8

Cell = tuple[tuple[str, int], ...]
# cell graph: per cell type 2 inputs, EDGES operations, STEPS sums and the concatenated output
CELL_NODES = 2 + EDGES + STEPS + 1
GRAPH_VOCABULARY = (
    PAD,
    "input",
    "sum",
    "output",
    *(f"{kind}:{op}" for kind in CELL_TYPES for op in OPS),
)


@dataclass(frozen=True)
class Genotype:
    normal: Cell
    normal_concat: tuple[int, ...]
    reduce: Cell
    reduce_concat: tuple[int, ...]

    def to_arch(self) -> str:
        spec = {
            "normal": [list(e) for e in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [list(e) for e in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }
        return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def _fail(msg: str) -> InvalidArchError:
    return InvalidArchError(f"DARTS genotype: {msg}")


def _parse_cell(kind: str, edges: Any) -> Cell:
    if not isinstance(edges, list) or len(edges) != EDGES:
        got = len(edges) if isinstance(edges, list) else type(edges).__name__
        raise _fail(f"{kind!r} must list {EDGES} [op, input] edges, got {got}")
    out = []
    for e, edge in enumerate(edges):
        if not isinstance(edge, list | tuple) or len(edge) != 2:
            raise _fail(f"{kind}[{e}] is {edge!r}, expected [op, input]")
        op, src = edge
        if op not in OPS:
            raise _fail(f"{kind}[{e}] op {op!r} is not one of {', '.join(OPS)}")
        node = e // 2
        if type(src) is not int or not 0 <= src < node + 2:
            raise _fail(
                f"{kind}[{e}] input {src!r} is invalid for intermediate node {node} "
                f"(expected 0..{node + 1})"
            )
        out.append((op, src))
    return tuple(out)


def _parse_concat(kind: str, concat: Any) -> tuple[int, ...]:
    valid = list(range(2, NUM_STATES))
    if (
        not isinstance(concat, list)
        or not concat
        or any(type(c) is not int or c not in valid for c in concat)
        or concat != sorted(set(concat))
    ):
        raise _fail(f"{kind!r} is {concat!r}, expected increasing distinct nodes from {valid}")
    return tuple(concat)


def parse_genotype(obj: Any) -> Genotype:
    """Validate a genotype mapping (as in the NB301 / NDS JSON), naming the bad value."""
    keys = {"normal", "normal_concat", "reduce", "reduce_concat"}
    if not isinstance(obj, dict) or set(obj) != keys:
        got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise _fail(f"expected an object with keys {sorted(keys)}, got {got}")
    return Genotype(
        normal=_parse_cell("normal", obj["normal"]),
        normal_concat=_parse_concat("normal_concat", obj["normal_concat"]),
        reduce=_parse_cell("reduce", obj["reduce"]),
        reduce_concat=_parse_concat("reduce_concat", obj["reduce_concat"]),
    )


def parse_arch(arch: str) -> Genotype:
    try:
        obj = json.loads(arch)
    except (TypeError, json.JSONDecodeError) as exc:
        raise _fail(f"not JSON: {arch!r} ({exc})") from None
    return parse_genotype(obj)


def onehot(genotype: Genotype) -> np.ndarray:
    """Per cell type: 8 edges x (7 ops + 5 inputs) then a 4-node concat mask; 200 floats."""
    parts = []
    for edges, concat in (
        (genotype.normal, genotype.normal_concat),
        (genotype.reduce, genotype.reduce_concat),
    ):
        ops = np.zeros((EDGES, len(OPS)), dtype=np.float32)
        inputs = np.zeros((EDGES, NUM_STATES - 1), dtype=np.float32)
        for e, (op, src) in enumerate(edges):
            ops[e, OPS.index(op)] = 1.0
            inputs[e, src] = 1.0
        mask = np.zeros(STEPS, dtype=np.float32)
        mask[[c - 2 for c in concat]] = 1.0
        parts += [np.concatenate([ops, inputs], axis=1).ravel(), mask]
    return np.concatenate(parts)


def cell_graph(genotype: Genotype) -> CellGraph:
    """The normal then the reduction cell, each: inputs c_{k-2}, c_{k-1}, one node per edge
    operation, one sum node per intermediate state, and the output concatenating `concat`."""
    labels: list[str] = []
    links: list[tuple[int, int]] = []
    for kind, edges, concat in (
        ("normal", genotype.normal, genotype.normal_concat),
        ("reduce", genotype.reduce, genotype.reduce_concat),
    ):
        base = len(labels)
        first_sum, output = base + 2 + EDGES, base + CELL_NODES - 1
        labels += ["input", "input", *(f"{kind}:{op}" for op, _ in edges)]
        labels += ["sum"] * STEPS + ["output"]
        for e, (_, src) in enumerate(edges):
            node = base + 2 + e
            links.append((base + src if src < 2 else first_sum + src - 2, node))
            links.append((node, first_sum + e // 2))
        links += [(first_sum + c - 2, output) for c in concat]
    return make_graph(labels, links, GRAPH_VOCABULARY, 2 * CELL_NODES)


@SPACES.register("nb301")
class NB301(SearchSpace):
    """500 DARTS genotypes (NASLib sample) with NAS-Bench-301 CIFAR-10 validation accuracy.

    NB301 trained every genotype as DARTS' NetworkCIFAR with 32 initial channels and 8 cells
    (automl/nasbench301 `data_generation/configs/config_*.json`: init_channels 32, layers 8, plus
    auxiliary head, drop path 0.2, cutout, mixup 0.2, SGD lr 0.025, cosine over 100 epochs, batch
    96); `build` uses the same C=32, 8 cells, 10 classes. Only the validation accuracy is shipped,
    so `val_acc` and `test_acc` both hold it; `train_time_s` is null.
    """

    name = "nb301"
    datasets = {"cifar10": DatasetInfo("cifar10", 10, 32, "CIFAR-10 images")}
    # Theoretical maximum (all 16 edges sep_conv, 4 convs each): stem + 8 cells x (32 op convs +
    # 2 preprocess convs) + 1 extra conv in each FactorizedReduce preprocess after the 2
    # reductions + classifier.
    max_layers = 1 + NB301_LAYERS * (EDGES * 4 + 2) + 2 + 1
    graph_vocabulary = GRAPH_VOCABULARY
    graph_nodes = 2 * CELL_NODES

    def accuracy_table(self) -> pl.DataFrame:
        return _accuracy_table()

    def decode(self, arch: str) -> Genotype:
        return parse_arch(arch)

    def build(self, arch: str, dataset: str) -> nn.Module:
        from parzc.spaces.nets.darts import NetworkCIFAR

        num_classes = self.dataset(dataset).num_classes
        return NetworkCIFAR(parse_arch(arch), NB301_CHANNELS, NB301_LAYERS, num_classes)

    def onehot(self, arch: str) -> np.ndarray:
        return onehot(parse_arch(arch))

    def cell_graph(self, arch: str) -> CellGraph:
        return cell_graph(parse_arch(arch))


@cache
def _accuracy_table() -> pl.DataFrame:
    raw = pl.read_parquet(resource("nb301/nb301_naslib500.parquet"))
    archs = [parse_genotype(json.loads(g)).to_arch() for g in raw["genotype"]]
    return single_accuracy_table(raw["arch_id"], archs, "cifar10", raw["val_accuracy"])


def read_nds_json(path: str | Path, dataset: str = "cifar10") -> pl.DataFrame:
    """Read an NDS (Radosavovic et al., 2019) DARTS-space JSON into an accuracy-like table.

    Records carry `net.genotype`, `net.width` (C), `net.depth` (cells) and `test_ep_top1`, the
    per-epoch top-1 *error* in %; accuracy is `100 - test_ep_top1[-1]` and fills both `val_acc`
    and `test_acc`. Columns: ACCURACY_COLUMNS (arch_id = record index), then `width`, `depth`.
    A file holding `{"top": [...], "mid": [...]}` is read as top + mid, like NDS' own loader.
    """
    data = json.loads(Path(path).read_text())
    if isinstance(data, dict):
        data = data["top"] + data["mid"]
    rows: dict[str, list] = {k: [] for k in [*ACCURACY_COLUMNS, "width", "depth"]}
    for i, record in enumerate(data):
        net = record["net"]
        try:
            arch = parse_genotype(net["genotype"]).to_arch()
        except InvalidArchError as exc:
            raise InvalidArchError(f"{path}: record {i}: {exc}") from None
        acc = 100.0 - float(record["test_ep_top1"][-1])
        for key, value in zip(
            rows,
            (i, arch, dataset, acc, acc, None, net["width"], net["depth"]),
            strict=True,
        ):
            rows[key].append(value)
    return pl.DataFrame(rows, schema={**ACCURACY_COLUMNS, "width": pl.Int32, "depth": pl.Int32})
