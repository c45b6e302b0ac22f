"""Snakemake wrapper: rank metrics of one predictions file."""

from parzc.evaluate import evaluate_predictions
from parzc.io import write_parquet
from parzc.logs import setup_logging

setup_logging(snakemake.log[0])
write_parquet(evaluate_predictions(snakemake.input[0]).to_arrow(), snakemake.output[0])
