from snakemake.utils import validate

from parzc import pipeline

validate(config, schema="../schemas/config.schema.yaml")
pipeline.check_names(config)
RESULTS = config["results"]


wildcard_constraints:
    space=r"[a-z0-9]+",
    dataset=r"[a-z0-9-]+",
    fset=r"[a-z0-9_]+",
    predictor=r"[a-z0-9_]+",


PLAN = pipeline.Plan(config)


def all_targets():
    return (
        PLAN.feature_shards()
        + PLAN.arch_stat_shards()
        + PLAN.proxy_tables()
        + PLAN.tables()
        + PLAN.scatter_plots()
        + PLAN.search_reports()
    )
