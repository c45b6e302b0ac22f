# parzc: node-wise zero-cost features -> feature store -> learned predictors -> reports.
# Run: snakemake --cores 2  (config/config.yaml by default; --configfile config/full.yaml for all)


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/extract.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
