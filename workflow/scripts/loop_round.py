"""Snakemake wrapper: one round of the loop (freeze the labels, propose the next batch)."""

from parzc import stages
from parzc.device import limit_threads
from parzc.logs import setup_logging

setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
p = snakemake.params
stages.loop_round(
    snakemake.config, int(snakemake.wildcards.round), snakemake.input.features, p.device
)
