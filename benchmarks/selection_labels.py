"""What checkpoint selection on a protocol's granted labels adds, on the same-label protocol.

    python benchmarks/selection_labels.py RESULTS TARGET SIZE DEFAULT LABEL [LABEL ...] \
        [--selection 40] [--seeds 0 1 2 3 4]

The LABELs are fits of one model that differ in one setting only (e.g. fine-tuning epochs,
fitted by benchmarks/fusion_protocol.py into the run at RESULTS), DEFAULT the one parzc ships.
Per seed, `--selection` cells are drawn (seeded) from the protocol's evaluation set, the cells
whose own label was not trained on; the fit whose scores rank those cells best (Kendall with
their validation accuracy) is chosen; every fit is scored on the remaining cells. The table
gives, per seed and as mean ± std, the default's Kendall, the chosen fit and its Kendall, and the
oracle: the best fit by the remaining cells themselves, the most any selection could reach.
Writes benchmarks/out/selection_labels.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import kendalltau

from parzc.evaluation.protocols import EVALUATION_SETS
from parzc.layout import Layout

OUT = Path(__file__).resolve().parent.parent / "benchmarks" / "out"


def _kendall(frame: pl.DataFrame) -> float:
    return float(kendalltau(frame["score"], frame["val_acc"]).statistic)


def select(frames: dict[str, pl.DataFrame], selection: int, seed: int) -> dict[str, object]:
    """The chosen label by `selection` held-back cells, and every label's Kendall on the rest."""
    first = next(iter(frames.values()))
    rng = np.random.default_rng(seed)
    held = set(rng.choice(first["arch_id"].to_numpy(), selection, replace=False).tolist())
    on_held = {}
    on_rest = {}
    for label, frame in frames.items():
        picked = frame["arch_id"].is_in(list(held))
        on_held[label] = _kendall(frame.filter(picked))
        on_rest[label] = _kendall(frame.filter(~picked))
    chosen = max(on_held, key=on_held.get)
    return {"chosen": chosen, "rest": on_rest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("target")
    parser.add_argument("size", type=int)
    parser.add_argument("labels", nargs="+", help="the default first, then the alternatives")
    parser.add_argument("--selection", type=int, default=40)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    layout = Layout(args.results)
    default = args.labels[0]
    lines = [
        f"Same-label protocol, {args.target}, {args.size} labels, {args.selection} selection "
        f"cells; fits: {', '.join(args.labels)} (default {default})",
        "",
        "| seed | default | chosen | chosen's Kendall | oracle | oracle's Kendall |",
        "|---|---|---|---|---|---|",
    ]
    rows = []
    for seed in args.seeds:
        frames = {}
        for label in args.labels:
            keys = {"space": "nb201", "dataset": args.target, "predictor": label}
            path = layout.path("predictions", **keys, size=args.size, seed=seed)
            frame = pl.read_parquet(path).filter(EVALUATION_SETS["unlabelled_cells"])
            frames[label] = frame.sort("arch_id").select("arch_id", "score", "val_acc")
        ids = {label: frame["arch_id"].to_list() for label, frame in frames.items()}
        if any(cells != ids[default] for cells in ids.values()):
            raise ValueError(f"seed {seed}: the fits were scored on different cells (splits)")
        outcome = select(frames, args.selection, seed)
        rest = outcome["rest"]
        oracle = max(rest, key=rest.get)
        rows.append((rest[default], rest[outcome["chosen"]], rest[oracle]))
        lines.append(
            f"| {seed} | {rest[default]:.3f} | {outcome['chosen']} | "
            f"{rest[outcome['chosen']]:.3f} | {oracle} | {rest[oracle]:.3f} |"
        )
    values = np.array(rows)
    mean, std = values.mean(axis=0), values.std(axis=0, ddof=1)
    lines.append(
        f"| mean ± std | {mean[0]:.3f} ± {std[0]:.3f} | | {mean[1]:.3f} ± {std[1]:.3f} | | "
        f"{mean[2]:.3f} ± {std[2]:.3f} |"
    )
    text = "\n".join(lines) + "\n"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "selection_labels.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
