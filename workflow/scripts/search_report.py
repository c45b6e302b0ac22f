"""Snakemake wrapper: the seed-aggregated search report (CSV, Markdown) and its cost plot."""

from parzc import stages
from parzc.logs import setup_logging

setup_logging(snakemake.log[0])
out = snakemake.output
stages.search_report(snakemake.input, out.csv, out.md, out.plot)
