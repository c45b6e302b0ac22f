"""NAS-Bench-101 (Ying et al., ICML 2019): cell DAGs of up to 7 vertices in a fixed skeleton.

The network follows `nasbench/lib/model_builder.py`: a 3x3 conv-BN-ReLU stem with 128 channels,
three stacks of three cells with a 2x2 max-pool (stride 2) and channel doubling before stacks 2
and 3, global average pooling and a linear classifier. In a cell, every vertex fed by the cell
input gets its own 1x1 conv-BN-ReLU projection of it, the output channels are split among the
vertices feeding the output (`compute_vertex_channels`), interior edges add (truncating the one
surplus channel where splits are uneven), the output concatenates its fan-in and adds a projection
of the input when input and output are joined directly.

Arch strings are canonical JSON `{"matrix": [[...]], "ops": [...]}` of the *pruned* cell
(vertices off every input->output path removed, as `nasbench.lib.model_spec.ModelSpec` does), so
raw specs that build the same network share one string.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from parzc.resources import resource
from parzc.spaces import SPACES
from parzc.spaces.base import DatasetInfo, InvalidArchError, SearchSpace, single_accuracy_table
from parzc.spaces.graph import PAD, CellGraph, make_graph

if TYPE_CHECKING:
    from torch import nn

INPUT, OUTPUT = "input", "output"
CONV1X1, CONV3X3, MAXPOOL3X3 = "conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3"
OPS = (CONV1X1, CONV3X3, MAXPOOL3X3)
MAX_VERTICES = 7
GRAPH_VOCABULARY = (PAD, INPUT, OUTPUT, *OPS)
MAX_EDGES = 9
STEM_CHANNELS = 128
NUM_STACKS = 3
CELLS_PER_STACK = 3
# nasbench/lib/base_ops.py: BN_MOMENTUM = 0.997 (TF decay), BN_EPSILON = 1e-5
BN_MOMENTUM = 1.0 - 0.997
BN_EPS = 1e-5


@dataclass(frozen=True)
class CellSpec:
    """A pruned, validated cell: strictly upper-triangular 0/1 matrix and one op per vertex."""

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    @property
    def num_vertices(self) -> int:
        return len(self.ops)

    def edge(self, src: int, dst: int) -> bool:
        return bool(self.matrix[src][dst])

    def to_arch(self) -> str:
        spec = {"matrix": [list(row) for row in self.matrix], "ops": list(self.ops)}
        return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def _fail(msg: str) -> InvalidArchError:
    return InvalidArchError(f"NB101 arch: {msg}")


def prune(matrix: np.ndarray, ops: list[str]) -> CellSpec:
    """Drop vertices not on an input->output path; raise if the output is unreachable."""
    n = len(ops)
    from_input, to_output = {0}, {n - 1}
    for src in range(n):
        if src in from_input:
            from_input.update(int(d) for d in np.flatnonzero(matrix[src]))
    for dst in range(n - 1, -1, -1):
        if dst in to_output:
            to_output.update(int(s) for s in np.flatnonzero(matrix[:, dst]))
    if n - 1 not in from_input:
        raise _fail("graph is disconnected: no path from input to output")
    keep = sorted(from_input & to_output)
    kept = matrix[np.ix_(keep, keep)]
    return CellSpec(tuple(tuple(int(v) for v in row) for row in kept), tuple(ops[i] for i in keep))


def parse_spec(matrix: Any, ops: Any) -> CellSpec:
    """Validate a raw (matrix, ops) pair like nasbench's `NASBench.is_valid` and prune it."""
    if not isinstance(matrix, list) or not all(isinstance(row, list) for row in matrix):
        raise _fail(f"matrix must be a list of lists, got {matrix!r}")
    n = len(matrix)
    if not 2 <= n <= MAX_VERTICES:
        raise _fail(f"matrix has {n} vertices, expected 2..{MAX_VERTICES}")
    for i, row in enumerate(matrix):
        if len(row) != n:
            raise _fail(f"matrix is not square: row {i} has {len(row)} entries, expected {n}")
        for j, v in enumerate(row):
            if type(v) is not int or v not in (0, 1):
                raise _fail(f"matrix entry ({i},{j}) is {v!r}, expected 0 or 1")
            if v and i >= j:
                raise _fail(f"matrix is not upper triangular at ({i},{j})")
    if not isinstance(ops, list) or len(ops) != n:
        raise _fail(f"ops {ops!r} must be a list of {n} labels, one per matrix vertex")
    if ops[0] != INPUT:
        raise _fail(f"ops[0] is {ops[0]!r}, expected {INPUT!r}")
    if ops[-1] != OUTPUT:
        raise _fail(f"ops[{n - 1}] is {ops[-1]!r}, expected {OUTPUT!r}")
    for i, op in enumerate(ops[1:-1], start=1):
        if op not in OPS:
            raise _fail(f"ops[{i}] is {op!r}, expected one of {', '.join(OPS)}")
    spec = prune(np.array(matrix, dtype=np.int64), ops)
    edges = sum(map(sum, spec.matrix))
    if edges > MAX_EDGES:
        raise _fail(f"{edges} edges > {MAX_EDGES} (after pruning)")
    return spec


def parse_arch(arch: str) -> CellSpec:
    """Decode `{"matrix": [[...]], "ops": [...]}` (pruned or not), naming the bad value on error."""
    try:
        obj = json.loads(arch)
    except (TypeError, json.JSONDecodeError) as exc:
        raise _fail(f"not JSON: {arch!r} ({exc})") from None
    if not isinstance(obj, dict) or set(obj) != {"matrix", "ops"}:
        keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise _fail(f"expected an object with keys 'matrix' and 'ops', got {keys}")
    return parse_spec(obj["matrix"], obj["ops"])


def vertex_channels(spec: CellSpec, c_in: int, c_out: int) -> list[int]:
    """Channels of every vertex, as `compute_vertex_channels` in nasbench's model_builder."""
    n = spec.num_vertices
    channels = [c_in] + [0] * (n - 2) + [c_out]
    if n == 2:
        return channels
    fan_in = sum(spec.edge(v, n - 1) for v in range(1, n - 1))
    base, extra = divmod(c_out, fan_in)
    for v in range(1, n - 1):
        if spec.edge(v, n - 1):
            channels[v] = base + (1 if extra else 0)
            extra -= 1 if extra else 0
    for v in range(n - 3, 0, -1):
        if not spec.edge(v, n - 1):
            channels[v] = max(channels[d] for d in range(v + 1, n - 1) if spec.edge(v, d))
    return channels


def onehot(spec: CellSpec) -> np.ndarray:
    """Upper-triangular 7x7 adjacency (21) + 5 interior vertices x 3 ops (15) = 36 floats.

    A pruned cell with fewer vertices keeps its input and interior vertices at the front and its
    output at index 6; the missing vertices are all-zero rows, columns and op slots.
    """
    n = spec.num_vertices
    slot = list(range(n - 1)) + [MAX_VERTICES - 1]
    adj = np.zeros((MAX_VERTICES, MAX_VERTICES), dtype=np.float32)
    for i in range(n):
        for j in range(i + 1, n):
            adj[slot[i], slot[j]] = spec.matrix[i][j]
    ops = np.zeros((MAX_VERTICES - 2, len(OPS)), dtype=np.float32)
    for v in range(1, n - 1):
        ops[v - 1, OPS.index(spec.ops[v])] = 1.0
    return np.concatenate([adj[np.triu_indices(MAX_VERTICES, k=1)], ops.ravel()])


@SPACES.register("nb101")
class NB101(SearchSpace):
    """500 NB101 cells (NASLib sample) with 108-epoch CIFAR-10 validation accuracy.

    Only the validation accuracy is shipped, so `val_acc` and `test_acc` both hold it;
    `train_time_s` is null.
    """

    name = "nb101"
    datasets = {"cifar10": DatasetInfo("cifar10", 10, 32, "CIFAR-10 images")}
    # Theoretical maximum, reached e.g. by 4 input-fed conv vertices plus a conv chained behind
    # one of them: a cell has (#input-fed vertices + #conv vertices + input->output projection)
    # Conv2d layers, and each counts against its own edge of the <= 9 allowed, so <= 9 per cell.
    # stem + 9 cells x 9 + classifier.
    max_layers = 1 + NUM_STACKS * CELLS_PER_STACK * MAX_EDGES + 1
    graph_vocabulary = GRAPH_VOCABULARY
    graph_nodes = MAX_VERTICES

    def accuracy_table(self) -> pl.DataFrame:
        return _accuracy_table()

    def decode(self, arch: str) -> CellSpec:
        return parse_arch(arch)

    def build(self, arch: str, dataset: str) -> nn.Module:
        from parzc.spaces.nets.nb101 import NB101Network

        return NB101Network(parse_arch(arch), self.dataset(dataset).num_classes)

    def onehot(self, arch: str) -> np.ndarray:
        return onehot(parse_arch(arch))

    def cell_graph(self, arch: str) -> CellGraph:
        spec = parse_arch(arch)
        n = spec.num_vertices
        links = [(i, j) for i in range(n) for j in range(n) if spec.edge(i, j)]
        return make_graph(spec.ops, links, GRAPH_VOCABULARY, MAX_VERTICES)


@cache
def _accuracy_table() -> pl.DataFrame:
    raw = pl.read_parquet(resource("nb101/nb101_naslib500.parquet"))
    archs = [
        parse_spec(json.loads(m), json.loads(o)).to_arch()
        for m, o in zip(raw["adjacency"], raw["ops"], strict=True)
    ]
    return single_accuracy_table(raw["arch_id"], archs, "cifar10", raw["val_accuracy"])
