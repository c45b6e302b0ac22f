"""The torch network of an AutoFormer subnet: a ViT (see parzc.spaces.autoformer)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from parzc.spaces.autoformer import HEAD_DIM, IMAGE_SIZE, PATCH_SIZE, Subnet


class Attention(nn.Module):
    def __init__(self, embed_dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(embed_dim, 3 * num_heads * HEAD_DIM)
        self.proj = nn.Linear(num_heads * HEAD_DIM, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, HEAD_DIM).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, self.num_heads * HEAD_DIM))


class Mlp(nn.Module):
    def __init__(self, embed_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, embed_dim: int, mlp_ratio: float, num_heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dim)
        self.attn = Attention(embed_dim, num_heads)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.mlp = Mlp(embed_dim, int(embed_dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class AutoFormerViT(nn.Module):
    def __init__(
        self,
        subnet: Subnet,
        num_classes: int,
        image_size: int = IMAGE_SIZE,
        patch_size: int = PATCH_SIZE,
    ) -> None:
        super().__init__()
        e = subnet.embed_dim
        self.patch_embed = nn.Conv2d(3, e, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, e))
        self.pos_embed = nn.Parameter(torch.zeros(1, (image_size // patch_size) ** 2 + 1, e))
        self.blocks = nn.Sequential(
            *(Block(e, r, h) for r, h in zip(subnet.mlp_ratio, subnet.num_heads, strict=True))
        )
        self.norm = nn.LayerNorm(e)
        self.head = nn.Linear(e, num_classes)
        # timm's trunc_normal_(std=.02) cuts at +-2 absolute (100 std): a plain normal.
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def feature_blocks(self) -> list[nn.Module]:
        """Every transformer block (the blocks AZ-NAS compares)."""
        return list(self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])
