"""Snakemake wrapper: rank correlation of each aggregate proxy with test accuracy."""

from parzc.logs import setup_logging
from parzc.report import proxy_correlation_table, write_table
from parzc.store import Store

setup_logging(snakemake.log[0])
wc = snakemake.wildcards
store = Store(
    snakemake.config["results"],
    features=snakemake.input.features,
    arch_stats=snakemake.input.arch_stats,
)
table = proxy_correlation_table(store, wc.space, snakemake.params.proxy_dataset, wc.dataset)
write_table(table, snakemake.output.csv, snakemake.output.md)
