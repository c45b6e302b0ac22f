"""Snakemake wrapper: predicted-vs-true scatter of one predictions file."""

import polars as pl

from parzc.logs import setup_logging
from parzc.report import plot_scatter

setup_logging(snakemake.log[0])
plot_scatter(pl.read_parquet(snakemake.input[0]), snakemake.output[0])
