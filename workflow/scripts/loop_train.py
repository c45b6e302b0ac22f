"""Snakemake wrapper: train one proposed candidate with the user's command, record its label."""

from parzc import stages
from parzc.logs import setup_logging

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
stages.loop_train(
    snakemake.config, int(wc.arch_id), int(wc.seed), snakemake.params.command, snakemake.output[0]
)
