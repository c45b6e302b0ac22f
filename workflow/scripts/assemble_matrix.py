"""Snakemake wrapper: assemble the training matrix of one (space, target) from the store."""

from parzc.logs import setup_logging
from parzc.store import Store

setup_logging(snakemake.log[0])
wc, p = snakemake.wildcards, snakemake.params
store = Store(p.results, features=snakemake.input.features, arch_stats=snakemake.input.arch_stats)
matrix = store.assemble(
    wc.space, p.proxy_dataset, p.features, onehot=True, target=wc.dataset, every_cell=True
)
matrix.save(snakemake.output[0])
