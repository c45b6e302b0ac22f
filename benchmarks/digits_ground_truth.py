"""Ground truth of the digits example: every DigitsCNN candidate trained by its training script.

    python benchmarks/digits_ground_truth.py --seeds 0 [--jobs 2]

Trains each candidate of examples/digits (216 small CNNs on scikit-learn's 8x8 digits) with
`train.train` from examples/digits/train.py, once per seed, in `--jobs` worker processes of one
torch thread each, and writes the labels CSV benchmarks/out/digits_ground_truth.csv with columns
arch,val_acc,test_acc,train_time_s,seed (accuracies in percent), sorted by arch then seed.
Resumes: (arch, seed) rows already in the CSV are kept and not retrained; the CSV is rewritten
atomically after every batch of results. Prints the wall time, the accuracy spread and the
Kendall tau between validation and test accuracy.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "digits"))

import train  # noqa: E402  (examples/digits/train.py)

COLUMNS = ("arch", "val_acc", "test_acc", "train_time_s", "seed")
DEFAULT_OUT = ROOT / "benchmarks" / "out" / "digits_ground_truth.csv"


def read_rows(path: Path) -> dict[tuple[str, int], dict]:
    """Rows of an existing labels CSV keyed by (arch, seed); empty when there is none."""
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise SystemExit(f"{path}: columns {reader.fieldnames}, expected {list(COLUMNS)}")
        rows = {}
        for row in reader:
            row = {
                "arch": train.SPACE.normalise(row["arch"]),
                "val_acc": float(row["val_acc"]),
                "test_acc": float(row["test_acc"]),
                "train_time_s": float(row["train_time_s"]),
                "seed": int(row["seed"]),
            }
            rows[row["arch"], row["seed"]] = row
    return rows


_UMASK = os.umask(0)  # the process umask: read by setting it, then restored
os.umask(_UMASK)


def write_rows(path: Path, rows: dict[tuple[str, int], dict]) -> None:
    """Write all rows sorted by (arch, seed): a temporary file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; keep the usual mode
        with os.fdopen(fd, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows[key] for key in sorted(rows))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _init_worker() -> None:
    """One torch thread; one short training first, so torch's one-off start-up cost (about a
    second) is not counted in the first candidate's train_time_s."""
    import torch

    torch.set_num_threads(1)
    train.train(next(train.SPACE.enumerate()), seed=0, epochs=1)


def summarise(rows: list[dict]) -> None:
    val = np.array([r["val_acc"] for r in rows])
    test = np.array([r["test_acc"] for r in rows])
    times = np.array([r["train_time_s"] for r in rows])
    for name, v in (("val_acc", val), ("test_acc", test), ("train_time_s", times)):
        lo, med, hi = np.min(v), np.median(v), np.max(v)
        print(f"{name:>12}: min {lo:.2f}  median {med:.2f}  max {hi:.2f}")
    tau = stats.kendalltau(val, test).statistic
    print(f"Kendall tau val_acc vs test_acc over {len(rows)} rows: {tau:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--jobs", type=int, default=2, help="worker processes, one thread each")
    parser.add_argument("--epochs", type=int, default=train.EPOCHS)
    parser.add_argument("--batch", type=int, default=16, help="results per CSV rewrite")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if args.jobs < 1 or args.batch < 1:
        parser.error("--jobs and --batch must be >= 1")

    archs = list(train.SPACE.enumerate())
    rows = read_rows(args.out)
    todo = [(a, s) for a in archs for s in args.seeds if (a, s) not in rows]
    print(
        f"{len(archs)} candidates x {len(args.seeds)} seeds: {len(todo)} to train, "
        f"{len(archs) * len(args.seeds) - len(todo)} already in {args.out}",
        flush=True,
    )
    start = time.perf_counter()
    pending_rows = 0
    # spawn: workers start clean, without the parent's torch thread pools.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=context, initializer=_init_worker) as pool:
        waiting = {pool.submit(train.train, a, s, args.epochs) for a, s in todo}
        while waiting:
            done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
            for future in done:
                row = future.result()
                rows[row["arch"], row["seed"]] = row
                pending_rows += 1
            if pending_rows >= args.batch or not waiting:
                write_rows(args.out, rows)
                pending_rows = 0
                print(f"{len(rows)} rows, {time.perf_counter() - start:.1f} s", flush=True)
    wall = time.perf_counter() - start
    print(f"trained {len(todo)} in {wall:.1f} s wall with {args.jobs} jobs -> {args.out}")
    wanted = {(a, s) for a in archs for s in args.seeds}
    summarise([rows[key] for key in sorted(wanted)])


if __name__ == "__main__":
    main()
