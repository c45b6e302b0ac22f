"""Snakemake wrapper: rank metrics of one predictions file."""

from parzc import stages
from parzc.logs import setup_logging

setup_logging(snakemake.log[0])
stages.evaluate(snakemake.input[0], snakemake.output[0], snakemake.params.protocols)
