"""Snakemake wrapper: one architecture search (strategy, seed, trained predictor) and its cost."""

from parzc import stages
from parzc.device import limit_threads
from parzc.logs import setup_logging

setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
wc, p, inp = snakemake.wildcards, snakemake.params, snakemake.input
stages.search(
    inp.features,
    inp.arch_stats,
    wc.space,
    p.proxy_dataset,
    wc.dataset,
    wc.strategy,
    int(wc.seed),
    p.search,
    p.features,
    snakemake.output[0],
    run=p.run,
    matrix=inp.matrix,
)
