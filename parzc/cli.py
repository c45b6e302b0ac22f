"""The `parzc` command line: everything a workflow rule does, callable without Snakemake."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl

Handler = Callable[[argparse.Namespace], int]


def _cmd_sql(args: argparse.Namespace) -> int:
    from parzc.store import Store

    frame = Store(args.results).sql(args.query)
    if args.format == "csv":
        sys.stdout.write(frame.write_csv())
    elif args.format == "json":
        sys.stdout.write(frame.write_json() + "\n")
    else:
        with pl.Config(tbl_rows=args.max_rows, tbl_cols=-1, fmt_str_lengths=60):
            print(frame)
    return 0


def _cmd_extract(args: argparse.Namespace) -> int:
    from parzc.config import load
    from parzc.extract import ExtractSettings, extract_shard, shard_arch_ids
    from parzc.pipeline import Plan

    plan = Plan(load(args.config))
    settings = plan.shard(args.space, args.dataset, args.set, args.start, args.end)
    ids = shard_arch_ids(args.space, plan.arch_seed(args.space), args.start, args.end)
    part = (
        f"space={args.space}/dataset={args.dataset}/set={args.set}/"
        f"part-{args.start:05d}-{args.end:05d}.parquet"
    )
    root = Path(args.results or plan.results)
    summary = extract_shard(
        ExtractSettings(**settings),
        ids,
        root / "features" / part,
        root / "arch_stats" / part,
        plan.config["device"],
    )
    print(summary)
    return 0


def _cmd_proxy_correlation(args: argparse.Namespace) -> int:
    from parzc.report import markdown_table, proxy_correlation_table
    from parzc.store import Store

    print(markdown_table(proxy_correlation_table(Store(args.results), args.space, args.dataset)))
    return 0


def _cmd_store_check(args: argparse.Namespace) -> int:
    from parzc.store_check import check_store, quarantine

    problems = check_store(args.results)
    for problem in problems:
        print(problem)
    if args.repair and problems:
        for path in quarantine(problems, args.results):
            print(f"moved to {path}")
        print("rerun the pipeline (snakemake) to regenerate the moved shards")
        return 0
    print(f"{len(problems)} problem(s)" if problems else "store OK")
    return 1 if problems else 0


def _cmd_list(args: argparse.Namespace) -> int:
    from parzc.proxies import LAYER_PROXIES, NETWORK_PROXIES
    from parzc.spaces import SPACES, get_space

    for name in SPACES:
        print(f"space {name}: datasets {', '.join(get_space(name).datasets)}")
    print("per-layer proxies:", ", ".join(LAYER_PROXIES.names()))
    print("network-level proxies:", ", ".join(NETWORK_PROXIES.names()))
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    import yaml

    from parzc.costs import TrainingRun
    from parzc.search import search_job
    from parzc.store import Store

    params = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--param {item!r} is not KEY=VALUE")
        params[key] = yaml.safe_load(value)
    run = TrainingRun.from_model_path(args.results, args.model) if args.model else None
    result, cost = search_job(
        Store(args.results),
        args.space,
        args.dataset,
        args.strategy,
        run=run,
        features=args.features.split(","),
        top_k=args.top_k,
        budget=args.budget,
        seed=args.seed,
        pool_size=args.pool,
        params=params,
    )
    with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=80, tbl_width_chars=200):
        print(result.top)
    print(f"{result.strategy} over {result.pool_size} candidates: {cost.describe()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parzc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sql", help="run a read-only SQL query over the feature store")
    p.add_argument("query", help="one SELECT over the views features, arch_stats, accuracy")
    p.add_argument("--results", default="results", help="the pipeline's results folder")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--max-rows", type=int, default=40, help="rows shown in table format")
    p.set_defaults(func=_cmd_sql)

    p = sub.add_parser("extract", help="extract one shard of the feature store")
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--space", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--set", required=True, help="feature set name from the config")
    p.add_argument("--start", type=int, required=True, help="first position of the arch range")
    p.add_argument("--end", type=int, required=True, help="last position (inclusive)")
    p.add_argument("--results", help="results folder (default: the config's)")
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser("proxy-correlation", help="rank correlation of aggregate proxies")
    p.add_argument("--space", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--results", default="results")
    p.set_defaults(func=_cmd_proxy_correlation)

    p = sub.add_parser("store", help="check (and repair) the feature store's shards")
    p.add_argument("action", choices=("check", "repair"))
    p.add_argument("--results", default="results")
    p.set_defaults(
        func=lambda a: _cmd_store_check(
            argparse.Namespace(results=a.results, repair=a.action == "repair")
        )
    )

    p = sub.add_parser("search", help="search a stored pool of archs with a trained predictor")
    p.add_argument("--results", default="results", help="the pipeline's results folder")
    p.add_argument("--space", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--strategy", default="exhaustive", help="exhaustive, evolution, random, ...")
    p.add_argument(
        "--model",
        help="a predictor file <results>/models/<space>/<dataset>/<label>/n<N>_seed<S>.pkl",
    )
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
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("list", help="list search spaces, datasets and proxies")
    p.set_defaults(func=_cmd_list)
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
