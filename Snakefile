# parzc: node-wise zero-cost features -> feature store -> learned predictors -> reports.
# Run: snakemake --cores 2  (config/config.yaml by default; --configfile config/full.yaml for all)


# The default config applies only when no --configfile is given (otherwise Snakemake would merge
# the two, e.g. adding the default's feature sets and predictors to config/test.yaml).
if not config:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/extract.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/rank.smk"
include: "workflow/rules/loop.smk"


rule all:
    default_target: True
    input:
        PLAN.all_targets(),
