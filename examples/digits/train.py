"""The user's training script for a DigitsCNN candidate: train on the training split, report
validation and test accuracy.

    python examples/digits/train.py --seed 0 --out result.json [--epochs N] \
        --arch depth=2,width=16,kernel=3,activation=relu,pool=max,batchnorm=true

Deterministic on CPU with one thread: the seed fixes the initialisation and the minibatch order.
Nothing is chosen on the test split (no early stopping, the last epoch's weights are evaluated).
Writes {"arch", "val_acc", "test_acc", "train_time_s", "seed"} to --out atomically (accuracies in
percent) and prints the same JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from digits_data import NUM_CLASSES, load_split  # noqa: E402
from digits_space import DigitsCNN  # noqa: E402
from torch import nn  # noqa: E402

from parzc.spaces.base import InvalidArchError  # noqa: E402
from parzc.spaces.choice import Choices  # noqa: E402

EPOCHS = 5  # few on purpose: candidates stay apart (a search example, not a recipe)
BATCH_SIZE = 32
LR = 1e-3

SPACE = Choices(DigitsCNN.choices)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy in percent, eval mode."""
    model.eval()
    return 100.0 * (model(x).argmax(1) == y).float().mean().item()


def train(arch: str, seed: int = 0, epochs: int = EPOCHS) -> dict:
    """Train candidate `arch` with `seed`; its normalised encoding, accuracies and time.

    Raises InvalidArchError naming the bad decision for an invalid encoding.
    """
    choices = SPACE.decode(arch)
    torch.set_num_threads(1)
    split = load_split()
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = DigitsCNN().build(choices, NUM_CLASSES)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    order = torch.Generator().manual_seed(seed)
    n = len(split.y_train)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(n, generator=order).split(BATCH_SIZE):
            loss = F.cross_entropy(model(split.x_train[idx]), split.y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    val_acc = accuracy(model, split.x_val, split.y_val)
    test_acc = accuracy(model, split.x_test, split.y_test)
    return {
        "arch": SPACE.encode(choices),
        "val_acc": round(val_acc, 4),
        "test_acc": round(test_acc, 4),
        "train_time_s": round(time.perf_counter() - start, 4),
        "seed": seed,
    }


_UMASK = os.umask(0)  # the process umask: read by setting it, then restored
os.umask(_UMASK)


def write_json(path: Path, obj: dict) -> None:
    """Write `obj` to `path` atomically: a temporary file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; keep the usual mode
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train one DigitsCNN candidate.")
    parser.add_argument("--arch", required=True, help="encoding, e.g. depth=2,width=16,...")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="JSON result file")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    try:
        result = train(args.arch, args.seed, args.epochs)
    except InvalidArchError as exc:
        parser.error(str(exc))
    write_json(args.out, result)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
