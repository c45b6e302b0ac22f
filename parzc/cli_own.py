"""The `parzc` subcommands for a user's own space: label trainings, rank candidates, score one
network, and check that a space's encodings rebuild their networks."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import polars as pl


def _plan(args: argparse.Namespace):
    from parzc.cli import _plan as plan

    return plan(args)


def _print(frame: pl.DataFrame, fmt: str) -> None:
    if fmt == "csv":
        sys.stdout.write(frame.write_csv())
    elif fmt == "json":
        sys.stdout.write(frame.write_json() + "\n")
    else:
        with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=80, tbl_width_chars=200):
            print(frame)


def _labels_path(plan, space: str, dataset: str) -> str:
    """The space's labels file, else the loop's (a benchmark space's loop keeps its own)."""
    path = plan.config["spaces"][space].get("labels", {}).get(dataset)
    loop = plan.config.get("loop")
    if path is None and loop and (loop["space"], loop["dataset"]) == (space, dataset):
        path = str(plan.loop_state().labels_path)
    if path is None:
        raise ValueError(
            f"the config names no labels file for {space}/{dataset} (spaces/{space}/labels or "
            "a loop: section)"
        )
    return path


def label_rows(args: argparse.Namespace) -> pl.DataFrame:
    """The rows `parzc tell` appends: from --result files, or one from the flags."""
    if args.result:
        records = [json.loads(Path(f).read_text()) for f in args.result]
        keep = ("arch", "val_acc", "test_acc", "train_time_s", "seed", "status", "note")
        return pl.DataFrame([{k: r.get(k) for k in keep if k in r} for r in records])
    if not args.arch:
        raise ValueError("give --arch (with --val-acc or --failed) or --result FILE")
    if args.failed == (args.val_acc is not None):
        raise ValueError("give exactly one of --val-acc and --failed")
    row = {
        "arch": args.arch,
        "val_acc": args.val_acc,
        "test_acc": args.test_acc,
        "train_time_s": args.train_time_s,
        "seed": args.seed,
        "status": "failed" if args.failed else "ok",
        "note": args.note,
    }
    return pl.DataFrame([{k: v for k, v in row.items() if v is not None}])


def _cmd_tell(args: argparse.Namespace) -> int:
    from parzc.labels import append_labels, locked
    from parzc.spaces import get_space

    plan = _plan(args)
    space = get_space(args.space)
    space.dataset(args.dataset)
    path = _labels_path(plan, args.space, args.dataset)
    value_range = getattr(space, "label_range", (0.0, 100.0))
    with locked(Path(path)):  # trainings may tell concurrently
        added = append_labels(path, label_rows(args), space, value_range)
    print(f"{path}: {len(added)} row(s) added")
    _print(added.drop("line"), "table")
    return 0


def _cmd_rank(args: argparse.Namespace) -> int:
    from parzc import stages
    from parzc.constraints import describe, feasible_ids
    from parzc.store.matrix import FeatureMatrix

    plan = _plan(args)
    layout = plan.layout
    matrix = layout.path("matrix", space=args.space, dataset=args.dataset)
    # assembled anew: the labels file may have grown since the pipeline's last run
    stages.assemble_target(plan, args.space, args.dataset, matrix)
    if args.predictor not in plan.predictors():
        raise ValueError(
            f"predictor {args.predictor!r} is not in the config (labels: "
            f"{', '.join(plan.predictors())})"
        )
    job = dict(space=args.space, dataset=args.dataset, predictor=args.predictor, seed=args.seed)
    ranking = layout.path("ranking", **job)
    stages.rank(
        matrix,
        args.predictor,
        plan.predictors()[args.predictor]["model"],
        plan.predictor_params(args.space, args.predictor),
        args.seed,
        ranking,
        layout.path("rank_model", **job),
        plan.config["device"],
    )
    ranked = pl.read_parquet(ranking).filter(~pl.col("labelled") & ~pl.col("failed"))
    constraints = plan.constraints(args.space)
    if constraints:
        inside = feasible_ids(FeatureMatrix.load(matrix), constraints)
        ranked = ranked.filter(pl.col("arch_id").is_in(sorted(inside)))
        print(f"within the constraints: {describe(constraints)}")
    _print(ranked.head(args.top), args.format)
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    import torch

    from parzc.extract import network_seed, proxy_batch
    from parzc.scoring import score
    from parzc.spaces import get_space

    plan = _plan(args)
    space = get_space(args.space)
    dataset = args.dataset or plan.proxy_dataset(
        args.space, plan.config["spaces"][args.space]["datasets"][0]
    )
    info = space.dataset(dataset)
    arch = space.normalise(args.arch)
    ids = dict(space.archs().select("arch", "arch_id").iter_rows())
    if arch not in ids:
        raise ValueError(f"arch {args.arch!r} is not a candidate of space {args.space!r}")
    settings = plan.extract_settings(args.space, dataset, next(iter(plan.config["feature_sets"])))
    inputs = settings.proxy_inputs()
    batch = proxy_batch(settings, info.input_size)
    torch.manual_seed(network_seed(settings.init_seed, ids[arch]))
    model = space.build(arch, dataset)
    scores = score(
        model,
        batch.images,
        batch.labels,
        args.proxies.split(",") if args.proxies else None,
        num_classes=info.num_classes,
        loss_fn=None if inputs is None else inputs.loss_fn(),
        seed=settings.batch_seed,
    )
    _print(scores.wide(), args.format)
    network = pl.DataFrame({"proxy": list(scores.network), "value": list(scores.network.values())})
    totals = pl.DataFrame({"proxy": list(scores.totals()), "value": list(scores.totals().values())})
    _print(
        pl.concat([totals, network.with_columns(("net:" + pl.col("proxy")).alias("proxy"))]),
        args.format,
    )
    return 0


def _cmd_ask(args: argparse.Namespace) -> int:
    from parzc.constraints import describe
    from parzc.loop import Loop

    loop = Loop(_plan(args))
    if args.pending:
        pending = loop.pending()
        print(f"{len(pending)} pending proposal(s) (proposed, not yet told)")
        if len(pending):
            _print(pending.select("round", "arch_id", "arch", "score", "scorer"), args.format)
        return 0
    proposals = loop.ask(args.k)
    constraints = describe(loop.plan.constraints(loop.state.space))
    within = f" within the constraints ({constraints})" if constraints else ""
    print(
        f"round {loop.last_round}: {len(proposals)} proposal(s){within}; train them, then "
        f"`parzc tell` (labels: {loop.state.labels_path})"
    )
    _print(proposals.drop("network_id"), args.format)
    return 0


def _cmd_oracle(args: argparse.Namespace) -> int:
    from parzc.io import write_text
    from parzc.loop.oracle import oracle_result

    result = json.dumps(oracle_result(args.space, args.dataset, args.arch), sort_keys=True)
    write_text(args.result, result + "\n")
    print(result)
    return 0


CHECK_SCRIPT = """
import json, sys
from parzc.config import load
from parzc.spaces import get_space
config = load(sys.argv[1])
for name, entry in config["spaces"].items():
    if "source" not in entry:
        continue
    space = get_space(name)
    archs = space.archs()["arch"].to_list()
    picks = sorted(set([0, len(archs) // 2, len(archs) - 1]))[: int(sys.argv[2])]
    for dataset in entry["datasets"]:
        batch = space.inputs[dataset].load(2, 0)
        for i in picks:
            arch = space.normalise(archs[i])
            model = space.build(arch, dataset)
            out = model.eval()(batch.images)
            print(json.dumps({"space": name, "dataset": dataset, "arch": arch,
                              "output": list(out.shape)}))
"""


def check_spaces_fresh(config: str, per_space: int = 3) -> list[dict]:
    """Import each user space in a new Python process and rebuild a few of its candidates
    (first, middle, last) on two proxy inputs; raises RuntimeError with that process's error."""
    proc = subprocess.run(
        [sys.executable, "-c", CHECK_SCRIPT, config, str(per_space)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output"
        raise RuntimeError(f"{config}: rebuilding candidates in a fresh process failed: {last}")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def register(sub) -> None:
    """Add the own-space subcommands to the `parzc` parser."""

    def common(p):
        p.add_argument("--config", default="config/config.yaml", help="the pipeline's config")
        p.add_argument("--results", help="results folder (default: the config's)")
        p.add_argument("--space", required=True)
        p.add_argument("--dataset", required=True, help="the target dataset")

    p = sub.add_parser("tell", help="append trainings' results to a space's labels file")
    common(p)
    p.add_argument("--result", nargs="+", help="JSON files a training script wrote")
    p.add_argument("--arch", help="the trained candidate's encoding")
    p.add_argument("--val-acc", type=float)
    p.add_argument("--test-acc", type=float)
    p.add_argument("--train-time-s", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--failed", action="store_true", help="the training produced no accuracy")
    p.add_argument("--note")
    p.set_defaults(func=_cmd_tell)

    p = sub.add_parser("rank", help="fit a predictor on every label and rank the candidates")
    common(p)
    p.add_argument("--predictor", required=True, help="a train.predictors label")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--top", type=int, default=10, help="unlabelled candidates shown")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.set_defaults(func=_cmd_rank)

    p = sub.add_parser("ask", help="propose the next candidates to train (the config's loop)")
    p.add_argument("--config", default="config/config.yaml", help="the pipeline's config")
    p.add_argument("--results", help="results folder (default: the config's)")
    p.add_argument("-k", type=int, help="how many to propose (default: the loop's batch)")
    p.add_argument("--pending", action="store_true", help="list proposals not yet told")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.set_defaults(func=_cmd_ask)

    p = sub.add_parser("oracle", help="a benchmark's recorded result, as a training would write")
    p.add_argument("--space", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--arch", required=True)
    p.add_argument("--result", required=True, help="the JSON file to write")
    p.set_defaults(func=_cmd_oracle)

    p = sub.add_parser("score", help="zero-cost proxies of one candidate, per layer")
    p.add_argument("--config", default="config/config.yaml", help="the pipeline's config")
    p.add_argument("--space", required=True)
    p.add_argument("--arch", required=True, help="the candidate's encoding")
    p.add_argument("--dataset", help="proxy dataset (default: the space's first target's)")
    p.add_argument("--proxies", help="comma-separated names (net:<name> network-level)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.set_defaults(func=_cmd_score)
