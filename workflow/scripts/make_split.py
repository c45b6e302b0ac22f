"""Snakemake wrapper: draw and save one training split."""

from parzc.logs import setup_logging
from parzc.splits import make_split, save_split

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
split = make_split(snakemake.params.pool, int(wc.size), int(wc.seed))
save_split(split, snakemake.output[0], space=wc.space, dataset=wc.dataset, seed=wc.seed)
