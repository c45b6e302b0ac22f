"""AutoFormer-Tiny ViT subnets (Chen et al., ICCV 2021) with CIFAR-100 accuracy.

A subnet fixes the embedding width, the depth and, per block, the MLP ratio and the number of
heads. The network is a pre-norm ViT shaped like AutoFormer's `Vision_TransformerSuper` subnet:
Conv2d patch embedding, cls token and learned position embedding, `depth` blocks of
LN -> MHSA (`heads` x 64-dim heads, qkv Linear embed -> 3*heads*64, proj back to embed) and
LN -> MLP (fc1 embed -> int(embed*mlp_ratio), GELU, fc2), a final LN and a Linear head on the
cls token. Weights start as in timm/AutoFormer: Linear weights and the two embeddings normal
(std 0.02), zero biases, unit LayerNorms, default Conv2d init for the patch embedding.

Input size: 32x32 images with 4x4 patches (64 tokens + cls). The benchmark trained at 224/16
(196 tokens), which makes per-arch CPU proxy extraction several times slower; the shipped proxy
images are 32x32 CIFAR-10 anyway. The position embedding therefore has 65 rows instead of 197.

Arch strings are canonical JSON `{"depth":..,"embed_dim":..,"mlp_ratio":[..],"num_heads":[..]}`.
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

if TYPE_CHECKING:
    from torch import nn

# AutoFormer-Tiny search space (AutoFormer paper, Table 1; also every value in the shipped table).
EMBED_DIMS = (192, 216, 240)
DEPTHS = (12, 13, 14)
MLP_RATIOS = (3.5, 4.0)
NUM_HEADS = (3, 4)
HEAD_DIM = 64
IMAGE_SIZE = 32
PATCH_SIZE = 4
MAX_DEPTH = max(DEPTHS)


@dataclass(frozen=True)
class Subnet:
    embed_dim: int
    depth: int
    mlp_ratio: tuple[float, ...]
    num_heads: tuple[int, ...]

    def to_arch(self) -> str:
        spec = {
            "embed_dim": self.embed_dim,
            "depth": self.depth,
            "mlp_ratio": list(self.mlp_ratio),
            "num_heads": list(self.num_heads),
        }
        return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def _fail(msg: str) -> InvalidArchError:
    return InvalidArchError(f"AutoFormer arch: {msg}")


def _choice(key: str, value: Any, options: tuple) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or value not in options:
        raise _fail(f"{key} is {value!r}, expected one of {', '.join(map(str, options))}")
    return type(options[0])(value)


def parse_subnet(obj: Any) -> Subnet:
    """Validate a subnet mapping, naming the bad value."""
    keys = {"embed_dim", "depth", "mlp_ratio", "num_heads"}
    if not isinstance(obj, dict) or set(obj) != keys:
        got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise _fail(f"expected an object with keys {sorted(keys)}, got {got}")
    embed_dim = _choice("embed_dim", obj["embed_dim"], EMBED_DIMS)
    depth = _choice("depth", obj["depth"], DEPTHS)
    per_block = {}
    for key, options in (("mlp_ratio", MLP_RATIOS), ("num_heads", NUM_HEADS)):
        values = obj[key]
        if not isinstance(values, list) or len(values) != depth:
            got = f"{len(values)} entries" if isinstance(values, list) else repr(values)
            raise _fail(f"{key} has {got}, expected one per block (depth {depth})")
        per_block[key] = tuple(_choice(f"{key}[{i}]", v, options) for i, v in enumerate(values))
    return Subnet(embed_dim, depth, per_block["mlp_ratio"], per_block["num_heads"])


def parse_arch(arch: str) -> Subnet:
    try:
        obj = json.loads(arch)
    except (TypeError, json.JSONDecodeError) as exc:
        raise _fail(f"not JSON: {arch!r} ({exc})") from None
    return parse_subnet(obj)


def onehot(subnet: Subnet) -> np.ndarray:
    """embed_dim (3) + depth (3) + 14 blocks x (mlp_ratio 2 + heads 2), zeros past depth: 62."""
    embed = np.zeros(len(EMBED_DIMS), dtype=np.float32)
    embed[EMBED_DIMS.index(subnet.embed_dim)] = 1.0
    depth = np.zeros(len(DEPTHS), dtype=np.float32)
    depth[DEPTHS.index(subnet.depth)] = 1.0
    blocks = np.zeros((MAX_DEPTH, len(MLP_RATIOS) + len(NUM_HEADS)), dtype=np.float32)
    for i, (r, h) in enumerate(zip(subnet.mlp_ratio, subnet.num_heads, strict=True)):
        blocks[i, MLP_RATIOS.index(r)] = 1.0
        blocks[i, len(MLP_RATIOS) + NUM_HEADS.index(h)] = 1.0
    return np.concatenate([embed, depth, blocks.ravel()])


@SPACES.register("autoformer")
class AutoFormer(SearchSpace):
    """100 AutoFormer-Tiny subnets with their CIFAR-100 accuracy (`c100_base_acc`).

    The shipped table has a single accuracy per subnet and dataset, so `val_acc` and `test_acc`
    both hold it; `train_time_s` is null.
    """

    name = "autoformer"
    datasets = {
        "cifar100": DatasetInfo(
            "cifar100", 100, IMAGE_SIZE, "CIFAR-10 images (CIFAR-100 images not shipped)"
        ),
    }
    # Exact maximum: patch embed + 14 blocks x (qkv, proj, fc1, fc2) + head.
    max_layers = 1 + MAX_DEPTH * 4 + 1

    def accuracy_table(self) -> pl.DataFrame:
        return _accuracy_table()

    def decode(self, arch: str) -> Subnet:
        return parse_arch(arch)

    def build(self, arch: str, dataset: str) -> nn.Module:
        from parzc.spaces.nets.autoformer import AutoFormerViT

        return AutoFormerViT(parse_arch(arch), self.dataset(dataset).num_classes)

    def onehot(self, arch: str) -> np.ndarray:
        return onehot(parse_arch(arch))


@cache
def _accuracy_table() -> pl.DataFrame:
    raw = pl.read_parquet(resource("vit/autoformer100.parquet"))
    archs = [
        parse_subnet(
            {"embed_dim": e, "depth": d, "mlp_ratio": json.loads(r), "num_heads": json.loads(h)}
        ).to_arch()
        for e, d, r, h in raw.select("hidden_dim", "depth", "mlp_ratio", "num_heads").iter_rows()
    ]
    return single_accuracy_table(raw["arch_id"], archs, "cifar100", raw["c100_base_acc"])
