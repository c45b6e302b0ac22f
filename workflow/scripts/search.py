"""Snakemake wrapper: one architecture search (strategy, seed, trained predictor) and its cost."""

import logging

import polars as pl

from parzc.device import limit_threads
from parzc.logs import setup_logging
from parzc.search import save_search, search_job
from parzc.store import Store

setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
wc, p = snakemake.wildcards, snakemake.params
store = Store(
    snakemake.config["results"],
    features=snakemake.input.features,
    arch_stats=snakemake.input.arch_stats,
)
result, cost = search_job(
    store,
    wc.space,
    p.proxy_dataset,
    wc.strategy,
    run=p.run,
    features=p.features,
    top_k=p.search["top_k"],
    budget=p.search["budget"],
    seed=int(wc.seed),
    pool_size=p.search["pool"],
    params=p.search["strategies"][wc.strategy],
    target=wc.dataset,
)
with pl.Config(tbl_cols=-1, fmt_str_lengths=80, tbl_width_chars=200):
    logging.getLogger("search").info(
        "top %d:\n%s\n%s", len(result.top), result.top, cost.describe()
    )
save_search(snakemake.output[0], result, cost, p.run)
