"""The shard schema: the columns of the two tables and the partition keys of their folders.

`features` holds one row per (arch, layer, proxy); `arch_stats` one row per (arch, network-level
proxy), with the arch's extraction time. Shards are Parquet files in hive folders (see
parzc.layout): the partition keys become columns when DuckDB or Polars read them.
"""

from __future__ import annotations

import pyarrow as pa

FEATURE_SCHEMA = pa.schema(
    [
        ("arch_id", pa.int32()),
        ("layer", pa.int16()),
        ("layer_name", pa.dictionary(pa.int32(), pa.string())),
        ("layer_type", pa.dictionary(pa.int8(), pa.string())),
        ("proxy", pa.dictionary(pa.int8(), pa.string())),
        ("value", pa.float64()),
        ("nan_reason", pa.string()),
    ]
)
ARCH_STATS_SCHEMA = pa.schema(
    [
        ("arch_id", pa.int32()),
        ("proxy", pa.dictionary(pa.int8(), pa.string())),
        ("value", pa.float64()),
        ("extract_ms", pa.float64()),
        ("nan_reason", pa.string()),
    ]
)
SCHEMAS = {"features": FEATURE_SCHEMA, "arch_stats": ARCH_STATS_SCHEMA}
# Rows are unique by these columns within a (space, dataset) partition.
KEYS = {"features": ["arch_id", "proxy", "layer"], "arch_stats": ["arch_id", "proxy"]}
# Folder partition keys (in order) and the shard metadata key holding each one's value.
PARTITIONS = {"space": "space", "dataset": "dataset", "feature_set": "feature_set"}

_SQL_TYPES = {
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.float64(): "DOUBLE",
    pa.string(): "VARCHAR",
}


def _sql_type(t: pa.DataType) -> str:
    return _SQL_TYPES[t.value_type if pa.types.is_dictionary(t) else t]


def empty_view_sql(table: str) -> str:
    """A SELECT of one all-NULL row with the table's columns and partition keys (for a view of
    a table that has no shards yet)."""
    columns = [f"NULL::{_sql_type(f.type)} AS {f.name}" for f in SCHEMAS[table]]
    columns += [f"NULL::VARCHAR AS {key}" for key in PARTITIONS]
    return "SELECT " + ", ".join(columns)
