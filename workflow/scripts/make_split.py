"""Snakemake wrapper: draw and save one training split."""

from parzc import stages
from parzc.logs import setup_logging

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
stages.split(
    snakemake.params.pool,
    int(wc.size),
    int(wc.seed),
    snakemake.output[0],
    space=wc.space,
    dataset=wc.dataset,
    draw=getattr(wc, "draw", "networks"),
)
