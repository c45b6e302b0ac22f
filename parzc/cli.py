"""The `parzc` command line. Every workflow rule's job is a subcommand that reads the same config
and writes the same files (parzc.layout) as the rule; `sql`, `store`, `search` and `list` work
on an existing results folder."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl

from parzc.cli_own import register as register_own_space_commands

Handler = Callable[[argparse.Namespace], int]


def _plan(args: argparse.Namespace):
    """The Plan of --config, with --results overriding the config's results folder."""
    from parzc.config import load
    from parzc.dag import Plan

    config = load(args.config)
    if getattr(args, "results", None):
        config["results"] = args.results
    return Plan(config)


def _require(*paths: str | Path) -> None:
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{', '.join(missing[:3])} missing: run the stage that writes it first "
            "(or `snakemake <file>` to let the workflow make it)"
        )


def _job(args: argparse.Namespace) -> dict:
    keys = ("space", "dataset", "predictor", "size", "seed")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


# -- the workflow's stages ---------------------------------------------------------------------


def _cmd_extract(args: argparse.Namespace) -> int:
    from parzc import stages

    plan = _plan(args)
    settings = plan.shard(args.space, args.dataset, args.feature_set, args.start, args.end)
    fields = dict(
        space=args.space,
        dataset=args.dataset,
        feature_set=args.feature_set,
        start=args.start,
        end=args.end,
    )
    print(
        stages.extract(
            settings,
            args.start,
            args.end,
            plan.layout.path("features", **fields),
            plan.layout.path("arch_stats", **fields),
            plan.config["device"],
        )
    )
    return 0


def _target_inputs(plan, space: str, dataset: str) -> tuple[list[str], list[str], str]:
    features = plan.target_shards("features", space, dataset)
    arch_stats = plan.target_shards("arch_stats", space, dataset)
    _require(*features, *arch_stats)
    return features, arch_stats, plan.proxy_dataset(space, dataset)


def _cmd_assemble(args: argparse.Namespace) -> int:
    from parzc import stages

    plan = _plan(args)
    out = plan.layout.path("matrix", space=args.space, dataset=args.dataset)
    print(stages.assemble_target(plan, args.space, args.dataset, out))
    return 0


def _cmd_split(args: argparse.Namespace) -> int:
    from parzc import stages
    from parzc.training.splits import split_path

    plan = _plan(args)
    out = split_path(plan.layout, args.space, args.dataset, args.size, args.seed, args.draw)
    stages.split(
        plan.pool(args.space, args.dataset),
        args.size,
        args.seed,
        out,
        space=args.space,
        dataset=args.dataset,
        draw=args.draw,
    )
    print(out)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from parzc import stages

    plan = _plan(args)
    job = _job(args)
    layout = plan.layout
    matrix = layout.path("matrix", space=args.space, dataset=args.dataset)
    if args.predictor not in plan.predictors():
        raise ValueError(
            f"predictor {args.predictor!r} is not in the config (labels: "
            f"{', '.join(plan.predictors())})"
        )
    split = str(plan.training_run(**job).split)
    _require(split, matrix)
    report = stages.train(
        matrix,
        split,
        args.predictor,
        plan.predictors()[args.predictor]["model"],
        plan.predictor_params(args.space, args.predictor),
        args.seed,
        layout.path("predictions", **job),
        layout.path("model", **job),
        device=plan.config["device"],
        train_label=plan.predictors()[args.predictor]["train_label"],
    )
    print({k: v for k, v in report.items() if k != "loss_history"})
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from parzc import stages

    plan = _plan(args)
    job = _job(args)
    predictions = plan.layout.path("predictions", **job)
    _require(predictions)
    out = plan.layout.path("metrics", **job)
    stages.evaluate(predictions, out, plan.config["evaluation"]["protocols"])
    with pl.Config(tbl_cols=-1, tbl_width_chars=200):
        print(pl.read_parquet(out))
    return 0


def _cmd_proxy_correlation(args: argparse.Namespace) -> int:
    from parzc import stages

    plan = _plan(args)
    features, arch_stats, proxy_dataset = _target_inputs(plan, args.space, args.dataset)
    fields = dict(space=args.space, dataset=args.dataset)
    md = plan.layout.path("proxy_table_md", **fields)
    stages.proxy_table(
        features,
        arch_stats,
        args.space,
        proxy_dataset,
        args.dataset,
        plan.layout.path("proxy_table", **fields),
        md,
    )
    print(Path(md).read_text(), end="")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from parzc import stages

    plan = _plan(args)
    metrics = plan.metrics_files()
    _require(*metrics)
    layout = plan.layout
    stages.correlation_tables(
        metrics,
        plan.predictors(),
        {s: e["predictor_params"] for s, e in plan.config["spaces"].items()},
        *(
            layout.path(k)
            for k in (
                "correlation_csv",
                "correlation_md",
                "loss_ablation_csv",
                "loss_ablation_md",
                "kendall_plot",
                "kendall_by_size_md",
                "protocols_csv",
                "protocols_md",
            )
        ),
        plan.config["evaluation"]["protocols"],
    )
    print(Path(layout.path("correlation_md")).read_text(), end="")
    if plan.search_runs():
        files = plan.search_files()
        _require(*files)
        stages.search_report(
            files, *(layout.path(k) for k in ("search_csv", "search_md", "search_plot"))
        )
        print(Path(layout.path("search_md")).read_text(), end="")
    return 0


# -- working with a results folder -------------------------------------------------------------


def _results(args: argparse.Namespace) -> str:
    """--results, else the results folder of --config (whose own spaces it registers)."""
    if args.config:
        from parzc.config import load

        config = load(args.config)
        return args.results or config["results"]
    return args.results or "results"


def _cmd_sql(args: argparse.Namespace) -> int:
    from parzc.spaces import space_names
    from parzc.store import Store

    store = Store(_results(args))
    frame = store.sql(args.query)
    unknown = sorted(
        {
            part.split("=", 1)[1]
            for f in store.shard_files("arch_stats")
            for part in f.parts
            if part.startswith("space=") and part.split("=", 1)[1] not in space_names()
        }
    )
    if unknown:
        print(
            f"note: the store holds the user space(s) {', '.join(unknown)}, whose labels the "
            "accuracy view lacks without their config: pass --config",
            file=sys.stderr,
        )
    if args.format == "csv":
        sys.stdout.write(frame.write_csv())
    elif args.format == "json":
        sys.stdout.write(frame.write_json() + "\n")
    else:
        with pl.Config(
            tbl_rows=args.max_rows, tbl_cols=-1, fmt_str_lengths=80, tbl_width_chars=200
        ):
            print(frame)
    return 0


def _cmd_store_check(args: argparse.Namespace) -> int:
    from parzc.store.check import check_store, quarantine

    results = _results(args)
    problems = check_store(results)
    for problem in problems:
        print(problem)
    if args.repair and problems:
        for path in quarantine(problems, results):
            print(f"moved to {path}")
        print("rerun the pipeline (snakemake) to regenerate the moved shards")
        return 0
    print(f"{len(problems)} problem(s)" if problems else "store OK")
    return 1 if problems else 0


def _cmd_list(args: argparse.Namespace) -> int:
    from parzc.evaluation.protocols import PROTOCOLS
    from parzc.loop.acquisition import ACQUISITIONS
    from parzc.loop.ask import ZERO_LABEL
    from parzc.predictors import PREDICTORS
    from parzc.predictors.cell_encoder import CELL_ATTENTION
    from parzc.predictors.fusion_net import BRANCHES
    from parzc.proxies import LAYER_PROXIES, NETWORK_PROXIES
    from parzc.search.strategies import STRATEGIES
    from parzc.spaces import get_space, space_names

    for name in space_names():
        print(f"space {name}: datasets {', '.join(get_space(name).datasets)}")
    print("per-layer proxies:", ", ".join(LAYER_PROXIES.names()))
    print("network-level proxies:", ", ".join(NETWORK_PROXIES.names()))
    print("predictors:", ", ".join(PREDICTORS.names()))
    print("fusion branches:", ", ".join(BRANCHES.names()))
    print("fusion cell attention:", ", ".join(CELL_ATTENTION.names()))
    print("search strategies:", ", ".join(STRATEGIES.names()))
    print("loop acquisitions:", ", ".join(ACQUISITIONS.names()))
    print("loop zero-label scorers:", ", ".join(ZERO_LABEL.names()))
    for name in PROTOCOLS:
        p = PROTOCOLS.get(name)
        print(
            f"protocol {name}: {p.train_label} -> {p.score_label} over {p.evaluation}, "
            f"{p.selection_labels} selection labels granted"
        )
    return 0


def _cmd_config_check(args: argparse.Namespace) -> int:
    from parzc.cli_own import check_spaces_fresh
    from parzc.config import load

    load(args.config)
    for built in check_spaces_fresh(args.config):
        print(
            f"{built['space']}/{built['dataset']}: {built['arch']} rebuilt in a fresh process, "
            f"output {built['output']}"
        )
    print(f"{args.config}: valid")
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    import yaml

    from parzc.layout import Layout
    from parzc.search.costs import TrainingRun
    from parzc.search.run import save_search, search_job
    from parzc.store import Store

    params = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--param {item!r} is not KEY=VALUE")
        params[key] = yaml.safe_load(value)
    layout = Layout(args.results)
    run = TrainingRun.from_model_path(layout, args.model) if args.model else None
    result, cost = search_job(
        Store(args.results),
        args.space,
        args.proxy_dataset or args.dataset,
        args.strategy,
        run=run,
        features=args.features.split(","),
        top_k=args.top_k,
        budget=args.budget,
        seed=args.seed,
        pool_size=args.pool,
        params=params,
        target=args.dataset,
    )
    with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=80, tbl_width_chars=200):
        print(result.top)
    print(f"{result.strategy} over {result.pool_size} candidates: {cost.describe()}")
    if args.out:
        save_search(args.out, result, cost, run)
        print(f"saved to {args.out}")
    return 0


def _stage_parser(sub, name: str, help: str, handler: Handler, *fields: str):
    p = sub.add_parser(name, help=help)
    p.add_argument("--config", default="config/config.yaml", help="the pipeline's config")
    p.add_argument("--results", help="results folder (default: the config's)")
    kinds = {"size": int, "seed": int, "start": int, "end": int}
    for field in fields:
        p.add_argument(f"--{field.replace('_', '-')}", required=True, type=kinds.get(field, str))
    p.set_defaults(func=handler)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parzc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    job = ("space", "dataset", "predictor", "size", "seed")

    _stage_parser(
        sub, "extract", "extract one shard of the feature store", _cmd_extract,
        "space", "dataset", "feature_set", "start", "end",
    )  # fmt: skip
    _stage_parser(
        sub, "assemble", "assemble the training matrix of a (space, target)", _cmd_assemble,
        "space", "dataset",
    )  # fmt: skip
    _stage_parser(
        sub, "split", "draw one training split", _cmd_split, "space", "dataset", "size", "seed"
    ).add_argument(
        "--draw", default="networks", help="how networks are drawn: networks (uniform) or cells"
    )
    _stage_parser(sub, "train", "train one predictor on one split", _cmd_train, *job)
    _stage_parser(sub, "evaluate", "rank metrics of one predictions file", _cmd_evaluate, *job)
    _stage_parser(
        sub, "proxy-correlation", "rank correlation of the aggregate proxies",
        _cmd_proxy_correlation, "space", "dataset",
    )  # fmt: skip
    _stage_parser(sub, "report", "the predictor (and search) tables and plots", _cmd_report)

    p = sub.add_parser("sql", help="run a read-only SQL query over the feature store")
    p.add_argument("query", help="one SELECT over the views features, arch_stats, accuracy")
    p.add_argument("--results", help="the pipeline's results folder (default: results)")
    p.add_argument("--config", help="a config: its results folder and own spaces' labels")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--max-rows", type=int, default=40, help="rows shown in table format")
    p.set_defaults(func=_cmd_sql)

    p = sub.add_parser("store", help="check (and repair) the feature store's shards")
    p.add_argument("action", choices=("check", "repair"))
    p.add_argument("--results", help="the pipeline's results folder (default: results)")
    p.add_argument("--config", help="a config: its results folder and own spaces")
    p.set_defaults(
        func=lambda a: _cmd_store_check(
            argparse.Namespace(results=a.results, config=a.config, repair=a.action == "repair")
        )
    )

    p = sub.add_parser("search", help="search a stored pool of archs with a trained predictor")
    p.add_argument("--results", default="results", help="the pipeline's results folder")
    p.add_argument("--space", required=True)
    p.add_argument("--dataset", required=True, help="the target dataset")
    p.add_argument("--proxy-dataset", help="where the proxies were extracted (default: dataset)")
    p.add_argument("--strategy", default="exhaustive", help="exhaustive, evolution, random, ...")
    p.add_argument("--model", help="a predictor file written by the train stage")
    p.add_argument(
        "--features",
        default="grad_norm,snip,synflow",
        help="per-layer proxies the candidates need (with --model: the model's features)",
    )
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--budget", type=int, default=50, help="evolution / random search queries")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pool", type=int, help="sample this many candidates (default: all stored)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="strategy parameter, e.g. population=20 or proxy=net:nwot (repeatable)",
    )
    p.add_argument(
        "--out", help="also save the top-k table and its costs here (the search rule's format)"
    )
    p.set_defaults(func=_cmd_search)

    register_own_space_commands(sub)

    p = sub.add_parser(
        "list",
        help="list search spaces, proxies, predictors, strategies, loop acquisitions and protocols",
    )
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("config", help="validate a config (schema, names, predictor parameters)")
    p.add_argument("action", choices=("check",))
    p.add_argument("config")
    p.set_defaults(func=_cmd_config_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from parzc.logs import setup_logging

    setup_logging()
    try:
        return args.func(args)
    except (ValueError, KeyError, RuntimeError, FileNotFoundError) as exc:
        print(f"parzc {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
