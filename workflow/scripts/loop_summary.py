"""Snakemake wrapper: the loop's summary (rounds, proposals, the best candidate told)."""

from parzc import stages
from parzc.logs import setup_logging

setup_logging(snakemake.log[0])
stages.loop_summary(snakemake.config, snakemake.output[0])
