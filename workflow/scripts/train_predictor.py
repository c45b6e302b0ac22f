"""Snakemake wrapper: train one predictor on one split and save its held-out predictions."""

from parzc import stages
from parzc.device import limit_threads
from parzc.logs import setup_logging

setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
wc, p = snakemake.wildcards, snakemake.params
stages.train(
    snakemake.input.matrix,
    snakemake.input.split,
    wc.predictor,
    p.model,
    p.predictor_params,
    int(wc.seed),
    snakemake.output.predictions,
    snakemake.output.model,
    device=p.device,
    train_label=p.train_label,
)
