"""Snakemake wrapper: the seed-aggregated search report (CSV, Markdown) and its cost plot."""

from parzc.io import write_text
from parzc.logs import setup_logging
from parzc.search import plot_search, search_markdown, search_table, summary_rows

setup_logging(snakemake.log[0])
out = snakemake.output
table = search_table(summary_rows(snakemake.input))
write_text(out.csv, table.write_csv())
write_text(out.md, search_markdown(table))
plot_search(table, out.plot)
