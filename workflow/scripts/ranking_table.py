"""Snakemake wrapper: combine the rankings of one target into its ranking table."""

from parzc import stages
from parzc.logs import setup_logging

setup_logging(snakemake.log[0])
inp, p, out = snakemake.input, snakemake.params, snakemake.output
stages.ranking_report(inp.rankings, p.top, out.csv, out.md, inp.matrix, p.constraints)
