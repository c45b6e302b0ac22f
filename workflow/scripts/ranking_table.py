"""Snakemake wrapper: combine the rankings of one target into its ranking table."""

from parzc import stages
from parzc.logs import setup_logging

setup_logging(snakemake.log[0])
out = snakemake.output
stages.ranking_report(snakemake.input, snakemake.params.top, out.csv, out.md)
