"""Snakemake wrapper: assemble the training matrix of one (space, target) from the store."""

from parzc import stages
from parzc.logs import setup_logging

setup_logging(snakemake.log[0])
wc, p, inp = snakemake.wildcards, snakemake.params, snakemake.input
stages.assemble(
    inp.features,
    inp.arch_stats,
    wc.space,
    p.proxy_dataset,
    wc.dataset,
    p.features,
    snakemake.output[0],
)
