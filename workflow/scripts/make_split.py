"""Snakemake wrapper: draw and save one training split."""

from parzc.experiment import make_split, save_split
from parzc.logs import setup_logging

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
split = make_split(snakemake.params.pool, int(wc.size), int(wc.seed))
save_split(split, snakemake.output[0], space=wc.space, dataset=wc.dataset, seed=wc.seed)
