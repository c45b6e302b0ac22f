"""The proxies' input: a fixed mini-batch of the shipped real CIFAR-10 images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from parzc.resources import resource

# CIFAR-10 per-channel statistics (the standard normalisation used by NAS-Bench-201 training).
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
IMAGES_FILE = "images/cifar10_320.npz"


@dataclass(frozen=True)
class Batch:
    """A fixed mini-batch of real images, normalised, with the seed and indices that chose it."""

    images: torch.Tensor  # float32 (N, 3, H, W)
    labels: torch.Tensor  # int64 (N,)
    seed: int
    indices: tuple[int, ...]

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.images.to(device), self.labels.to(device), self.seed, self.indices)


def load_batch(size: int, seed: int, input_size: int = 32, num_classes: int = 10) -> Batch:
    """Draw `size` shipped CIFAR-10 images with `seed`, resize to `input_size`, normalise.

    Labels are CIFAR-10 labels; for heads with more classes they stay valid class indices.
    """
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    with np.load(resource(IMAGES_FILE)) as z:
        images, labels = z["images"], z["labels"]
    if size > len(images):
        raise ValueError(f"batch size {size} exceeds the {len(images)} shipped images")
    if num_classes < int(labels.max()) + 1:
        raise ValueError(f"num_classes {num_classes} is smaller than the CIFAR-10 label range")
    idx = np.sort(np.random.default_rng(seed).choice(len(images), size=size, replace=False))
    x = torch.from_numpy(images[idx]).float().div_(255.0)
    if input_size != x.shape[-1]:
        x = torch.nn.functional.interpolate(
            x, size=(input_size, input_size), mode="bilinear", antialias=True, align_corners=False
        )
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    x = (x - mean) / std
    return Batch(
        x.contiguous(), torch.from_numpy(labels[idx]).long(), seed, tuple(int(i) for i in idx)
    )
