"""DigitsCNN: a small CNN family for scikit-learn's 8x8 handwritten digits.

Every candidate is a stack of `depth` conv blocks (conv -> optional batch norm -> activation ->
2x2 pooling), each halving the 8x8 input, and a linear classifier on the flattened features:

    depth=2,width=16,kernel=3,activation=relu,pool=max,batchnorm=true
    (N, 1, 8, 8) -> ConvBlock(1->16) -> (N, 16, 4, 4) -> ConvBlock(16->16) -> (N, 16, 2, 2)
                 -> Linear(64 -> num_classes)

3 depths x 3 widths x 2 kernels x 3 activations x 2 poolings x 2 batch-norm settings = 216
candidates. Weight layers are Conv2d and Linear only.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from parzc.spaces.choice import Choices, ChoiceSpace

IMAGE_SIZE = 8
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}
POOLS: dict[str, type[nn.Module]] = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


class ConvBlock(nn.Module):
    """Conv (same padding) -> batch norm or identity -> activation -> 2x2 pooling."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int,
        act_layer: type[nn.Module],
        pool_layer: type[nn.Module],
        batchnorm: bool,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_chs, out_chs, kernel_size, padding=kernel_size // 2, bias=not batchnorm
        )
        self.bn = nn.BatchNorm2d(out_chs) if batchnorm else nn.Identity()
        self.act = act_layer()
        self.pool = pool_layer(kernel_size=2, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.act(self.bn(self.conv(x))))


class DigitsNet(nn.Module):
    """`depth` conv blocks of `width` channels, then a linear classifier on flat features."""

    def __init__(
        self,
        depth: int,
        width: int,
        kernel_size: int,
        act_layer: type[nn.Module],
        pool_layer: type[nn.Module],
        batchnorm: bool,
        num_classes: int = 10,
        in_chans: int = 1,
    ) -> None:
        super().__init__()
        if not 1 <= depth <= 3:
            raise ValueError(f"depth must be 1, 2 or 3 for {IMAGE_SIZE}x{IMAGE_SIZE} inputs")
        blocks = []
        for i in range(depth):
            chs = in_chans if i == 0 else width
            blocks.append(ConvBlock(chs, width, kernel_size, act_layer, pool_layer, batchnorm))
        self.features = nn.Sequential(*blocks)
        side = IMAGE_SIZE >> depth
        self.flatten = nn.Flatten()
        self.head = nn.Linear(width * side * side, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.flatten(self.features(x)))


class DigitsCNN(ChoiceSpace):
    """The choice space of `DigitsNet`s: input (N, 1, 8, 8), logits (N, num_classes)."""

    choices = {
        "depth": [1, 2, 3],
        "width": [8, 16, 32],
        "kernel": [3, 5],
        "activation": ["relu", "gelu", "tanh"],
        "pool": ["max", "avg"],
        "batchnorm": [True, False],
    }

    def build(self, choices: dict[str, Any], num_classes: int) -> nn.Module:
        # Validated and mapped to the declared options, so "false" or "16" work as well.
        space = Choices(self.choices)
        c = space.choices_of(space.indices(choices))
        return DigitsNet(
            depth=int(c["depth"]),
            width=int(c["width"]),
            kernel_size=int(c["kernel"]),
            act_layer=ACTIVATIONS[str(c["activation"])],
            pool_layer=POOLS[str(c["pool"])],
            batchnorm=bool(c["batchnorm"]),
            num_classes=num_classes,
        )
