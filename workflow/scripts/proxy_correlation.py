"""Snakemake wrapper: rank correlation of each aggregate proxy with test accuracy."""

from parzc import stages
from parzc.logs import setup_logging

setup_logging(snakemake.log[0])
wc, p, inp, out = snakemake.wildcards, snakemake.params, snakemake.input, snakemake.output
stages.proxy_table(
    inp.features, inp.arch_stats, wc.space, p.proxy_dataset, wc.dataset, out.csv, out.md
)
