"""Snakemake wrapper: extract one (space, dataset, feature set, arch range) shard."""

import logging

from parzc.device import limit_threads
from parzc.extract import ExtractSettings, extract_shard, shard_arch_ids
from parzc.logs import setup_logging

setup_logging(snakemake.log[0])
limit_threads(snakemake.threads)
wc = snakemake.wildcards
settings = ExtractSettings(**snakemake.params.settings)
ids = shard_arch_ids(wc.space, settings.arch_seed, int(wc.start), int(wc.end))
summary = extract_shard(
    settings, ids, snakemake.output.features, snakemake.output.arch_stats, snakemake.params.device
)
logging.getLogger("extract").info("%s", summary)
