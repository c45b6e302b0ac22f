"""Snakemake wrapper: train one predictor on one split and save its held-out predictions."""

from parzc.device import limit_threads
from parzc.experiment import train_and_predict
from parzc.logs import setup_logging
from parzc.store import Store

setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
wc, p = snakemake.wildcards, snakemake.params
store = Store(
    snakemake.config["results"],
    features=snakemake.input.features,
    arch_stats=snakemake.input.arch_stats,
)
train_and_predict(
    store,
    wc.space,
    wc.dataset,
    wc.predictor,
    p.model,
    p.predictor_params,
    p.features,
    snakemake.input.split,
    int(wc.seed),
    snakemake.output.predictions,
    snakemake.output.model,
    device=snakemake.config["device"],
)
