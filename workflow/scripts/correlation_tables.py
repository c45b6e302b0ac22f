"""Snakemake wrapper: seed-aggregated correlation, loss-ablation and protocol tables, and the
Kendall plot."""

from parzc import stages
from parzc.logs import setup_logging

setup_logging(snakemake.log[0])
out, p = snakemake.output, snakemake.params
stages.correlation_tables(
    snakemake.input,
    p.predictors,
    p.overrides,
    out.csv,
    out.md,
    out.ablation_csv,
    out.ablation_md,
    out.plot,
    out.by_size,
    out.protocols_csv,
    out.protocols_md,
    p.protocols,
)
