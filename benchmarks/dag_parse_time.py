"""Wall time of `snakemake -n --configfile config/full.yaml` at two commits, side by side.

    python benchmarks/dag_parse_time.py --before 0836150 --after HEAD --repeats 3

Each commit is checked out into a temporary git worktree and its dry run executes with that
tree's `parzc` first on PYTHONPATH; the two alternate, so a busy machine slows both alike. Also
reports whether parsing the DAG imported torch (a Snakefile probe prints `torch in sys.modules`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROBE = 'import sys\nprint("TORCH_IMPORTED", "torch" in sys.modules, file=sys.stderr)\n'


def dry_run(tree: Path, config: str) -> tuple[float, bool]:
    snakefile = tree / "Snakefile"
    probed = tree / "Snakefile.probe"
    probed.write_text(snakefile.read_text() + "\n" + PROBE)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-m", "snakemake", "-n", "-s", str(probed), "--configfile", config]
    started = time.perf_counter()
    out = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    return seconds, "TORCH_IMPORTED True" in out.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", default="HEAD")
    parser.add_argument("--config", default="config/full.yaml")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {}
        for label, rev in (("before", args.before), ("after", args.after)):
            tree = Path(tmp) / label
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(tree), rev],
                cwd=REPO,
                check=True,
                capture_output=True,
            )
            trees[label] = tree
        try:
            times: dict[str, list[float]] = {label: [] for label in trees}
            torch_seen: dict[str, bool] = {}
            for _ in range(args.repeats):
                for label, tree in trees.items():
                    seconds, seen = dry_run(tree, args.config)
                    times[label].append(seconds)
                    torch_seen[label] = seen
        finally:
            for tree in trees.values():
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False
                )
    for label, rev in (("before", args.before), ("after", args.after)):
        runs = ", ".join(f"{t:.1f}" for t in times[label])
        print(
            f"{label:6} {rev:10} median {statistics.median(times[label]):5.1f} s "
            f"(runs: {runs}); torch imported: {torch_seen[label]}"
        )
    ratio = statistics.median(times["before"]) / statistics.median(times["after"])
    print(f"dry run {ratio:.2f}x faster after")


if __name__ == "__main__":
    main()
