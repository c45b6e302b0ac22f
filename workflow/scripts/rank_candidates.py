"""Snakemake wrapper: fit one predictor on every label of a target and rank every candidate."""

from parzc import stages
from parzc.device import limit_threads
from parzc.logs import setup_logging

setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
wc, p, out = snakemake.wildcards, snakemake.params, snakemake.output
stages.rank(
    snakemake.input.matrix,
    wc.predictor,
    p.model,
    p.predictor_params,
    int(wc.seed),
    out.ranking,
    out.model,
    p.device,
)
