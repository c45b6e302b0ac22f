"""Snakemake wrapper: seed-aggregated correlation and loss-ablation tables, and the Kendall plot."""

from parzc import report
from parzc.logs import setup_logging

setup_logging(snakemake.log[0])
out = snakemake.output
metrics = report.collect_metrics(snakemake.input)
table = report.correlation_table(metrics)
report.write_table(table, out.csv)
report.write_table(report.compact_table(table), md_path=out.md)
ablation = report.loss_ablation_table(
    metrics, snakemake.params.predictors, snakemake.params.overrides
)
report.write_table(ablation, out.ablation_csv, out.ablation_md)
report.plot_kendall_vs_size(table, out.plot)
