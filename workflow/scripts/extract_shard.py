"""Snakemake wrapper: extract one (space, dataset, feature set, arch range) shard."""

from parzc import stages
from parzc.device import limit_threads
from parzc.logs import setup_logging
from parzc.sharding import ExtractSettings

setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
wc, out = snakemake.wildcards, snakemake.output
stages.extract(
    ExtractSettings(**snakemake.params.settings),
    int(wc.start),
    int(wc.end),
    out.features,
    out.arch_stats,
    snakemake.params.device,
)
