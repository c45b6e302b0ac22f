"""The proxies' input for a user's dataset: images from an .npz, an image folder or a callable.

Settings (one `data:` entry of a space in the config):

    source        {npz: PATH} | {folder: PATH} | {callable: "pkg.module:function"} | cifar10
    num_classes   classes of the network's head (and range of the labels)
    input_size    images are resized to input_size x input_size (null: as stored)
    channels      1 (grayscale) or 3 (RGB) for folders; npz/callable keep theirs
    normalise     {mean: [...], std: [...]} per channel, `dataset` (statistics of all the
                  source's images, the default) or `none`
    loss          "pkg.module:function" (outputs, targets) -> scalar loss; null = cross-entropy

An .npz holds `images` (N, C, H, W) or (N, H, W), uint8 (scaled by 1/255) or float, and `labels`
(N,) integers. A folder holds one sub-folder of images per class (sorted names = class indices).
A callable returns (inputs, targets) tensors already prepared: no resizing or normalisation.
The batch is `size` of the source's samples drawn with the batch seed, as for CIFAR-10.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from parzc.proxies.batch import Batch, load_batch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class InputsError(ValueError):
    """Proxy input settings or data that cannot be used; the message names the field or file."""


def import_object(path: str, what: str) -> Any:
    """The object at "pkg.module:name", with an error naming `what` and the path."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise InputsError(f"{what} {path!r} is not of the form 'package.module:name'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputsError(f"{what} {path!r}: cannot import {module_name!r} ({exc})") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InputsError(f"{what} {path!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class ProxyInputs:
    """Where a dataset's proxy batch comes from and how it is prepared (hashed into shards)."""

    source: str  # canonical JSON of the `source` mapping, or "cifar10"
    num_classes: int
    input_size: int | None = None
    channels: int = 3
    normalise: str = "dataset"  # canonical JSON of {mean, std}, "dataset" or "none"
    loss: str | None = None

    @classmethod
    def from_config(cls, entry: Mapping[str, Any]) -> ProxyInputs:
        source = entry["source"]
        normalise = entry.get("normalise", "dataset")
        return cls(
            source=source if isinstance(source, str) else json.dumps(source, sort_keys=True),
            num_classes=int(entry["num_classes"]),
            input_size=entry.get("input_size"),
            channels=int(entry.get("channels", 3)),
            normalise=(
                normalise if isinstance(normalise, str) else json.dumps(normalise, sort_keys=True)
            ),
            loss=entry.get("loss"),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ProxyInputs:
        return cls(**json.loads(text))

    def source_spec(self) -> dict[str, str]:
        return {"cifar10": ""} if self.source == "cifar10" else json.loads(self.source)

    def files(self) -> list[str]:
        """Files the batch is read from (inputs of the extraction jobs): the .npz, or every
        image of the folder."""
        kind, value = next(iter(self.source_spec().items()))
        if kind == "npz":
            return [value]
        if kind == "folder":
            return sorted(
                str(f)
                for f in Path(value).glob("*/*")
                if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()
            )
        return []

    def loss_fn(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
        return None if self.loss is None else import_object(self.loss, "loss")

    def load(self, size: int, seed: int) -> Batch:
        """`size` samples drawn with `seed`, prepared as the settings say."""
        kind, value = next(iter(self.source_spec().items()))
        if kind == "cifar10":
            return load_batch(size, seed, self.input_size or 32, self.num_classes)
        if kind == "callable":
            inputs, targets = _call_source(value)
            return _draw(inputs, targets, size, seed, f"callable {value!r}")
        images, labels = _read_npz(value) if kind == "npz" else _read_folder(value, self.channels)
        _check_labels(labels, self.num_classes, value)
        x = _to_float(images)
        mean, std = self._statistics(x)
        batch = _draw(x, torch.from_numpy(labels).long(), size, seed, value)
        x = batch.images
        if self.input_size and self.input_size != x.shape[-1]:
            x = torch.nn.functional.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", antialias=True
            )
        if mean is not None:
            x = (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
        return Batch(x.contiguous(), batch.labels, seed, batch.indices)

    def _statistics(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if self.normalise == "none":
            return None, None
        if self.normalise == "dataset":
            return x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3)).clamp_min(1e-8)
        spec = json.loads(self.normalise)
        mean, std = torch.tensor(spec["mean"]), torch.tensor(spec["std"])
        if len(mean) != x.shape[1] or len(std) != x.shape[1]:
            raise InputsError(
                f"normalise has {len(mean)} means and {len(std)} stds for images of "
                f"{x.shape[1]} channels"
            )
        return mean.float(), std.float()


def _call_source(path: str) -> tuple[torch.Tensor, torch.Tensor]:
    result = import_object(path, "inputs callable")()
    if not (isinstance(result, tuple | list) and len(result) == 2):
        raise InputsError(f"inputs callable {path!r} must return (inputs, targets)")
    inputs, targets = (torch.as_tensor(v) for v in result)
    if len(inputs) != len(targets):
        raise InputsError(
            f"inputs callable {path!r} returned {len(inputs)} inputs and {len(targets)} targets"
        )
    return inputs, targets


def _draw(inputs: torch.Tensor, targets: torch.Tensor, size: int, seed: int, where: str) -> Batch:
    if size > len(inputs):
        raise InputsError(f"batch size {size} exceeds the {len(inputs)} samples of {where}")
    idx = np.sort(np.random.default_rng(seed).choice(len(inputs), size=size, replace=False))
    index = torch.from_numpy(idx)
    return Batch(inputs[index], targets[index], seed, tuple(int(i) for i in idx))


@cache
def _read_npz(path: str) -> tuple[np.ndarray, np.ndarray]:
    file = Path(path)
    if not file.is_file():
        raise InputsError(f"inputs file {path} does not exist")
    try:
        with np.load(file, allow_pickle=False) as z:
            missing = [k for k in ("images", "labels") if k not in z.files]
            if missing:
                raise InputsError(f"{path} has no array {missing[0]!r} (arrays: {z.files})")
            images, labels = z["images"], z["labels"]
    except (OSError, ValueError) as exc:
        if isinstance(exc, InputsError):
            raise
        raise InputsError(f"{path} is not a readable .npz file ({exc})") from None
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or len(images) != len(labels):
        raise InputsError(
            f"{path}: images must be (N, C, H, W) or (N, H, W) with N = len(labels), got "
            f"images {images.shape} and labels {labels.shape}"
        )
    return images, labels


@cache
def _read_folder(path: str, channels: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    root = Path(path)
    if not root.is_dir():
        raise InputsError(f"image folder {path} does not exist")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise InputsError(f"image folder {path} has no class sub-folders")
    images, labels = [], []
    mode = {1: "L", 3: "RGB"}[channels]
    for label, name in enumerate(classes):
        for file in sorted((root / name).iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(file) as img:
                    array = np.asarray(img.convert(mode))
            except OSError as exc:
                raise InputsError(f"{file} is not a readable image ({exc})") from None
            images.append(array[None] if channels == 1 else array.transpose(2, 0, 1))
            labels.append(label)
    if not images:
        raise InputsError(f"image folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    shapes = {a.shape for a in images}
    if len(shapes) > 1:
        raise InputsError(f"images of {path} differ in size: {sorted(shapes)[:3]}")
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def _check_labels(labels: np.ndarray, num_classes: int, where: str) -> None:
    if labels.size and not (0 <= int(labels.min()) and int(labels.max()) < num_classes):
        raise InputsError(
            f"{where}: labels range over [{int(labels.min())}, {int(labels.max())}], outside "
            f"[0, {num_classes}) for num_classes {num_classes}"
        )


def _to_float(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(images))
    return x.float().div_(255.0) if images.dtype == np.uint8 else x.float()
