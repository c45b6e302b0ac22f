"""The digits data: scikit-learn's bundled 1,797 8x8 handwritten digits, no download.

A stratified split with a fixed seed (independent of any training seed): 1,000 training,
397 validation and 400 test images. Pixels are scaled from 0-16 to [0, 1], then standardised
with the training split's mean and standard deviation (one scalar each, grayscale).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

NUM_CLASSES = 10
TRAIN_SIZE = 1000
VAL_SIZE = 397
TEST_SIZE = 400


class DigitsSplit(NamedTuple):
    """Images float32 (N, 1, 8, 8), standardised; labels int64 (N,). Treat as read-only."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@functools.cache
def load_split(seed: int = 0) -> DigitsSplit:
    """The train/validation/test split drawn with `seed` (stratified by class)."""
    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    labels = digits.target.astype(np.int64)
    if len(images) != TRAIN_SIZE + VAL_SIZE + TEST_SIZE:
        raise RuntimeError(f"expected 1,797 digits from scikit-learn, got {len(images)}")
    x_rest, x_test, y_rest, y_test = train_test_split(
        images, labels, test_size=TEST_SIZE, stratify=labels, random_state=seed
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=VAL_SIZE, stratify=y_rest, random_state=seed
    )
    mean, std = float(x_train.mean()), float(x_train.std())

    def images_(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((x - mean) / std).float().unsqueeze(1).contiguous()

    def labels_(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(y).long()

    return DigitsSplit(
        images_(x_train),
        labels_(y_train),
        images_(x_val),
        labels_(y_val),
        images_(x_test),
        labels_(y_test),
    )


@functools.cache
def proxy_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """The zero-cost proxies' input: the training split's images and labels (no val/test)."""
    split = load_split()
    return split.x_train, split.y_train
