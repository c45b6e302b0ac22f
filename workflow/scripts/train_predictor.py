"""Snakemake wrapper: train one predictor on one split and save its held-out predictions."""

from parzc.device import limit_threads
from parzc.experiment import train_and_predict
from parzc.features import FeatureMatrix
from parzc.logs import setup_logging

setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
wc, p = snakemake.wildcards, snakemake.params
train_and_predict(
    FeatureMatrix.load(snakemake.input.matrix),
    wc.predictor,
    p.model,
    p.predictor_params,
    snakemake.input.split,
    int(wc.seed),
    snakemake.output.predictions,
    snakemake.output.model,
    device=p.device,
)
