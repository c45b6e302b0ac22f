"""What model selection on a protocol's granted labels adds.

    python benchmarks/selection_labels.py RESULTS TARGET SIZE DEFAULT LABEL [LABEL ...] \
        [--protocol same_label] [--selection N] [--seeds 0 1 2 3 4]

The LABELs are fits of one model that differ in one setting only (e.g. fine-tuning epochs,
fitted by benchmarks/fusion_protocol.py into the run at RESULTS), DEFAULT the one parzc ships.
Per seed, `--selection` cells (default: as many as the protocol grants, 40 for `same_label`,
1,024 for `seed_mean_all_cells`) are drawn (seeded) from the cells whose own label was not
trained on; the fit whose scores rank those cells best by their training label (what training
them would measure) is chosen; every fit is scored as the protocol scores it, on its evaluation
set without the selection cells. The table gives, per seed and as mean ± std, the default's
Kendall, the chosen fit and its Kendall, and the oracle: the best fit by the scored cells
themselves, the most any selection could reach. Writes benchmarks/out/selection_labels.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import kendalltau

from parzc.evaluation.protocols import EVALUATION_SETS, PROTOCOLS, score_column
from parzc.layout import Layout

OUT = Path(__file__).resolve().parent.parent / "benchmarks" / "out"


def select(frames: dict[str, pl.DataFrame], selection: int, seed: int) -> dict[str, object]:
    """The chosen label by `selection` held-back cells (their `label`), and every label's
    Kendall on the scored cells that were not held back (their `scored` label)."""
    first = next(iter(frames.values()))
    candidates = first.filter(pl.col("unlabelled"))["arch_id"].to_numpy()
    rng = np.random.default_rng(seed)
    held = rng.choice(candidates, selection, replace=False).tolist()
    on_held = {}
    on_rest = {}
    for label, frame in frames.items():
        picked = frame["arch_id"].is_in(held)
        chosen_cells, rest = frame.filter(picked), frame.filter(~picked & pl.col("scored_set"))
        on_held[label] = float(kendalltau(chosen_cells["score"], chosen_cells["label"]).statistic)
        on_rest[label] = float(kendalltau(rest["score"], rest["scored"]).statistic)
    chosen = max(on_held, key=on_held.get)
    return {"chosen": chosen, "rest": on_rest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("target")
    parser.add_argument("size", type=int)
    parser.add_argument("labels", nargs="+", help="the default first, then the alternatives")
    parser.add_argument("--protocol", default="same_label", choices=PROTOCOLS.names())
    parser.add_argument("--selection", type=int, help="default: the protocol's granted labels")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    layout = Layout(args.results)
    default = args.labels[0]
    protocol = PROTOCOLS.get(args.protocol)
    selection = protocol.selection_labels if args.selection is None else args.selection
    lines = [
        f"Protocol {args.protocol}, {args.target}, {args.size} labels, {selection} selection "
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
            frame = pl.read_parquet(path)
            frames[label] = frame.sort("arch_id").select(
                "arch_id",
                "score",
                label=pl.col("train_target"),
                scored=pl.col(score_column(protocol, frame["train_label"][0])),
                unlabelled=EVALUATION_SETS["unlabelled_cells"],
                scored_set=EVALUATION_SETS[protocol.evaluation],
            )
        ids = {label: frame["arch_id"].to_list() for label, frame in frames.items()}
        if any(cells != ids[default] for cells in ids.values()):
            raise ValueError(f"seed {seed}: the fits were scored on different cells (splits)")
        outcome = select(frames, selection, seed)
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
