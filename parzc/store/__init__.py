"""The feature store: DuckDB views over the Parquet shards, read-only SQL, training-matrix assembly.

Shards are hive-partitioned (parzc.layout): <root>/features/space=S/dataset=D/feature_set=F/
part-A-B.parquet (per layer) and <root>/arch_stats/... (network level, timings); columns in
parzc.store.schema.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from parzc.layout import SHARD_TABLES, Layout
from parzc.spaces import get_space, space_names
from parzc.store.matrix import FeatureMatrix
from parzc.store.schema import empty_view_sql

# Statement types a user query may contain: reading only.
_READ_ONLY = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


class StoreError(RuntimeError):
    """The store is missing data or holds inconsistent data; the message names file and problem."""


class _RowsError(StoreError):
    """Duplicated or missing rows found by SQL; `assemble` adds the files responsible."""


class Store:
    """A feature store rooted at a pipeline's results folder."""

    def __init__(
        self,
        root: str | Path = "results",
        features: Sequence[str | Path] | None = None,
        arch_stats: Sequence[str | Path] | None = None,
    ) -> None:
        """`features` / `arch_stats` restrict the store to these shards (default: all of root)."""
        self.root = Path(root)
        self._files = {"features": features, "arch_stats": arch_stats}

    def shard_files(
        self, table: str, space: str | None = None, dataset: str | None = None
    ) -> list[Path]:
        """The table's shard files, optionally only those of one space (and dataset) partition.

        Only `*.parquet` files count: temporary files of interrupted writes (`.<name>.*.tmp`)
        are never read.
        """
        chosen = self._files[table]
        if chosen is not None:
            files = sorted(Path(f) for f in chosen)
        else:
            files = sorted(self.root.glob(Layout(self.root).glob(table, any_name=True)))
        if space is not None:
            files = [f for f in files if f"space={space}" in f.parts]
        if dataset is not None:
            files = [f for f in files if f"dataset={dataset}" in f.parts]
        return files

    @cached_property
    def accuracy(self) -> pa.Table:
        """Accuracies of every registered space: the benchmarks' ground truth and the labels
        files of users' spaces (`n_labels`: the trainings averaged, `n_failed`: failed
        trainings; both null for benchmarks), with
        each arch's `network_id` (the arch_id of its canonical network, whose features the
        store holds)."""
        frames = []
        for name in space_names():
            space = get_space(name)
            networks = space.archs().select("arch_id", "network_id")
            table = space.accuracy_table()
            for count in ("n_labels", "n_failed"):
                if count not in table.columns:
                    table = table.with_columns(pl.lit(None, dtype=pl.Int32).alias(count))
            frames.append(
                table.join(networks, on="arch_id", how="left").with_columns(
                    pl.lit(name).alias("space")
                )
            )
        return pl.concat(frames).to_arrow()

    def connect(
        self, space: str | None = None, dataset: str | None = None
    ) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with views `features`, `arch_stats`, `accuracy`.

        `space` / `dataset` restrict the views to the shards of that partition.
        """
        con = duckdb.connect(":memory:")
        for table in SHARD_TABLES:
            files = self.shard_files(table, space, dataset)
            if files:
                listing = ", ".join(f"'{f.as_posix()}'" for f in files)
                con.execute(
                    f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{listing}], "
                    "hive_partitioning = true, union_by_name = true)"
                )
            else:
                con.execute(
                    f"CREATE VIEW {table} AS SELECT * FROM ({empty_view_sql(table)}) WHERE false"
                )
        con.register("accuracy_arrow", self.accuracy)
        con.execute("CREATE VIEW accuracy AS SELECT * FROM accuracy_arrow")
        return con

    def sql(self, query: str) -> pl.DataFrame:
        """Run one read-only query (SELECT / WITH / EXPLAIN) over the store views."""
        try:
            statements = duckdb.extract_statements(query)
        except duckdb.Error as exc:
            raise StoreError(f"query does not parse: {exc}") from exc
        if len(statements) != 1:
            raise StoreError(f"parzc sql runs exactly one statement, got {len(statements)}")
        if statements[0].type not in _READ_ONLY:
            raise StoreError(
                f"refused: parzc sql is read-only, got a {statements[0].type.name} statement"
            )
        if statements[0].type == duckdb.StatementType.EXPLAIN:
            _check_explained(statements[0].query)
        con = self.connect()
        # No file outside the store can be read or written now, and nothing can re-enable it.
        allowed = [str(p.resolve()) + "/" for p in (self.root,)]
        con.execute(f"SET allowed_directories = {allowed}")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        try:
            return con.sql(query).pl()
        except duckdb.Error as exc:  # unknown column or view, type error, ...
            raise StoreError(f"query failed: {exc}") from exc

    def assemble(
        self,
        space: str,
        dataset: str,
        proxies: Sequence[str],
        arch_ids: Sequence[int] | None = None,
        onehot: bool = False,
        target: str | None = None,
        every_cell: bool = False,
    ) -> FeatureMatrix:
        """Training matrix for (space, dataset): see FeatureMatrix for the layout and scaling.

        `arch_ids` may name any arch of the space: each reads the features of its canonical
        network (`network_id`) and the one-hot code of the canonical cell, and keeps its own
        ground truth. `target` names the dataset whose accuracies are the targets (default:
        `dataset`, the partition the proxies were extracted on).

        Before reading, the partition's shards are checked (`store_check.check_files`: page
        checksums, schema, metadata, arch range, twins, archs stored twice); a corrupt shard
        raises StoreError naming the file. Every requested arch must have every requested proxy
        exactly once per layer, for all of its layers, and its arch_stats; otherwise a
        StoreError names what is missing or duplicated. `arch_ids=None` takes every network with
        features for all requested proxies (with `every_cell`, every arch of those networks).
        """
        space_obj = get_space(space)
        self.validate(space, dataset)
        try:
            return self._assemble(
                space_obj, space, dataset, proxies, arch_ids, onehot, target or dataset, every_cell
            )
        except (duckdb.Error, _RowsError) as exc:
            # duplicated rows, missing layers or a file changed since validation: the full
            # check of the partition's shards names the file
            self.validate(space, dataset, full=True, context=str(exc))
            if isinstance(exc, _RowsError):
                raise StoreError(str(exc)) from None
            raise StoreError(
                f"reading the shards of {space}/{dataset} failed ({exc}); run `parzc store check`"
            ) from None

    def validate(self, space: str, dataset: str, full: bool = False, context: str = "") -> None:
        """Raise StoreError naming each corrupt or inconsistent shard of (space, dataset).

        Every page is read (checksums verified); `full=True` adds row-level checks (duplicated
        keys, missing layers, NaNs without a reason).
        """
        from parzc.store.check import check_files

        files = {t: self.shard_files(t, space, dataset) for t in SHARD_TABLES}
        problems = check_files(files, full=full)
        if problems:
            shown = "; ".join(str(p) for p in problems[:10])
            more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
            raise StoreError(
                (f"{context}; " if context else "")
                + f"{len(problems)} problem(s) in the shards of {space}/{dataset}: {shown}{more}; "
                "run `parzc store check` and `parzc store repair`, then rerun the pipeline"
            )

    def _assemble(
        self,
        space_obj,
        space: str,
        dataset: str,
        proxies: Sequence[str],
        arch_ids: Sequence[int] | None,
        onehot: bool,
        target: str,
        every_cell: bool,
    ) -> FeatureMatrix:
        space_obj.dataset(target)  # names the space's datasets when `target` is unknown
        con = self.connect(space, dataset)
        params = {"space": space, "dataset": dataset}
        stored = (
            con.sql(
                "SELECT DISTINCT proxy FROM features WHERE space = $space AND dataset = $dataset",
                params=params,
            )
            .pl()["proxy"]
            .to_list()
        )
        missing = [p for p in proxies if p not in stored]
        if missing:
            raise StoreError(
                f"proxies {missing} are not in the store for {space}/{dataset} "
                f"(stored: {sorted(stored)}); add them to a feature set and extract"
            )
        _check_duplicates(con, params)
        long = con.sql(
            "SELECT arch_id, proxy, layer, layer_name, value FROM features "
            "WHERE space = $space AND dataset = $dataset",
            params=params,
        ).pl()
        net = con.sql(
            "SELECT arch_id, proxy, value FROM arch_stats WHERE space = $space "
            "AND dataset = $dataset AND proxy <> 'n_layers'",
            params=params,
        ).pl()
        if arch_ids is None:
            have = (
                long.filter(pl.col("proxy").is_in(list(proxies)))
                .group_by("arch_id")
                .agg(pl.col("proxy").n_unique().alias("n"))
            )
            arch_ids = sorted(have.filter(pl.col("n") == len(proxies))["arch_id"].to_list())
            if every_cell:
                arch_ids = (
                    space_obj.archs()
                    .filter(pl.col("network_id").is_in(arch_ids))["arch_id"]
                    .to_list()
                )
        ids = np.asarray(arch_ids, dtype=np.int32)
        if len(np.unique(ids)) != len(ids):
            uniq, counts = np.unique(ids, return_counts=True)
            raise StoreError(
                f"duplicate arch_ids requested for {space}/{dataset}: "
                f"{uniq[counts > 1][:5].tolist()}"
            )
        archs = pl.DataFrame({"arch_id": ids}).join(
            space_obj.archs(), on="arch_id", how="left", maintain_order="left"
        )
        if archs["network_id"].null_count():
            unknown = archs.filter(pl.col("network_id").is_null())["arch_id"].to_list()
            raise StoreError(f"arch_ids not in {space}: {unknown[:5]}")
        # Features are read once per network; every arch takes its network's row.
        nets, row_of = np.unique(archs["network_id"].to_numpy(), return_inverse=True)
        canonical = dict(space_obj.archs().select("arch_id", "arch").iter_rows())
        layer_proxies = sorted(long["proxy"].unique().to_list())
        max_layers = space_obj.max_layers or int(long["layer"].max() or 0) + 1
        layerwise_raw, present = _pivot_layers(
            long, nets, list(proxies), max_layers, space, dataset
        )
        _check_layer_counts(con, params, nets, list(proxies), space, dataset)
        every_layer, every_present = _pivot_layers(
            long, nets, layer_proxies, max_layers, space, dataset, check=False
        )
        sums = np.where(every_present, every_layer, 0.0).sum(axis=2)  # a NaN layer stays NaN
        sums[~every_present.any(axis=2)] = np.nan  # a proxy absent for an arch is NaN, not 0
        slot_names, slots = _pivot_slots(long, nets, layer_proxies)
        graphs = (
            [space_obj.cell_graph(canonical[int(n)]) for n in nets] if space_obj.graph_nodes else []
        )
        net_names = sorted(net["proxy"].unique().to_list())
        net_values = _pivot_scalars(net, nets, net_names)
        truth = pl.from_arrow(self.accuracy).filter(
            (pl.col("space") == space) & (pl.col("dataset") == target)
        )
        truth = pl.DataFrame({"arch_id": ids}).join(
            truth, on="arch_id", how="left", maintain_order="left"
        )
        if truth["val_acc"].null_count() and space_obj.ground_truth:
            raise StoreError(
                f"{truth['val_acc'].null_count()} arch_ids of {space}/{target} have no ground truth"
            )
        # a user's space: unlabelled candidates keep NaN accuracies; labels without a test
        # accuracy are scored against their validation accuracy
        truth = truth.with_columns(pl.coalesce("test_acc", "val_acc").alias("test_acc"))
        codes = (
            np.stack([space_obj.onehot(canonical[int(n)]) for n in nets])[row_of]
            if onehot
            else None
        )
        return FeatureMatrix(
            space=space,
            dataset=dataset,
            target=target,
            arch_ids=ids,
            network_ids=nets[row_of].astype(np.int32),
            proxies=list(proxies),
            layerwise=scale_within_arch(layerwise_raw, present)[row_of],
            layerwise_raw=np.nan_to_num(layerwise_raw, nan=0.0)[row_of],
            aggregate_names=layer_proxies + [f"net:{n}" for n in net_names],
            aggregates=np.concatenate([sums, net_values], axis=1)[row_of],
            onehot=codes,
            val_acc=truth["val_acc"].to_numpy(),
            test_acc=truth["test_acc"].to_numpy(),
            slot_proxies=layer_proxies,
            slot_names=slot_names,
            slots=slots[row_of],
            graph_vocabulary=list(space_obj.graph_vocabulary),
            graph_ops=np.stack([g.ops for g in graphs])[row_of] if graphs else None,
            graph_adjacency=np.stack([g.adjacency for g in graphs])[row_of] if graphs else None,
        )


_LEADING = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.S)
_EXPLAIN = re.compile(r"EXPLAIN\b\s*(?:ANALY[SZ]E\b\s*)?(?:\([^()]*\)\s*)?", re.I)


def _check_explained(query: str) -> None:
    """EXPLAIN ANALYZE executes its statement (e.g. a COPY that overwrites a shard): only an
    EXPLAIN of a single SELECT is allowed."""
    body = query[_LEADING.match(query).end() :]
    match = _EXPLAIN.match(body)
    inner = duckdb.extract_statements(body[match.end() :]) if match else []
    if len(inner) != 1 or inner[0].type != duckdb.StatementType.SELECT:
        kind = inner[0].type.name if len(inner) == 1 else "unrecognised"
        raise StoreError(
            f"refused: parzc sql is read-only, got an EXPLAIN of a {kind} statement "
            "(only EXPLAIN [ANALYZE] SELECT ... is allowed)"
        )


def scale_within_arch(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Min-max scale each (arch, proxy) vector over its present, finite layers to [0, 1].

    Padding and NaN layers become 0; a constant vector scales to all zeros.
    """
    usable = present & np.isfinite(values)
    lo = np.where(usable, values, np.inf).min(axis=2, keepdims=True)
    hi = np.where(usable, values, -np.inf).max(axis=2, keepdims=True)
    span = hi - lo
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        scaled = np.where(usable & np.isfinite(span) & (span > 0), (values - lo) / span, 0.0)
    return scaled.astype(np.float32)


def _pivot_layers(
    long: pl.DataFrame,
    ids: np.ndarray,
    proxies: list[str],
    max_layers: int,
    space: str,
    dataset: str,
    check: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Values (n_archs, n_proxies, max_layers) float64 (NaN where absent) and a present mask."""
    out = np.full((len(ids), len(proxies), max_layers), np.nan)
    present = np.zeros(out.shape, dtype=bool)
    pos = pl.DataFrame({"arch_id": ids, "row": np.arange(len(ids))})
    sel = long.filter(pl.col("proxy").is_in(proxies)).join(pos, on="arch_id", how="inner")
    if check:
        got = sel.group_by("arch_id").agg(pl.col("proxy").n_unique().alias("n"))
        complete = set(got.filter(pl.col("n") == len(proxies))["arch_id"].to_list())
        absent = [int(a) for a in ids if int(a) not in complete]
        if absent:
            raise StoreError(
                f"{len(absent)} of {len(ids)} requested archs of {space}/{dataset} "
                f"lack features for {proxies} (first: {absent[:5]})"
            )
    if len(sel) and sel["layer"].max() >= max_layers:
        raise StoreError(
            f"{space}/{dataset} has layer index {sel['layer'].max()} beyond the "
            f"space's max_layers={max_layers}"
        )
    proxy_pos = {p: i for i, p in enumerate(proxies)}
    index = (
        sel["row"].to_numpy(),
        sel["proxy"].cast(pl.String).replace_strict(proxy_pos).to_numpy(),
        sel["layer"].to_numpy(),
    )
    out[index] = sel["value"].to_numpy()
    present[index] = True
    return out, present


def _pivot_slots(
    long: pl.DataFrame, ids: np.ndarray, proxies: list[str]
) -> tuple[list[str], np.ndarray]:
    """Layer values aligned by role: (slot names, float64 (n_archs, n_proxies, n_slots)).

    A slot is a `layer_name` (e.g. NB201's `cells.3.edges.4.1`: cell 3, edge 4, whatever its
    position among the arch's layers); slots are ordered by their mean relative depth (layer
    index / last layer index of the arch) over the store, which puts the stem first and the
    classifier last; a slot the arch lacks is NaN.
    """
    named = long.with_columns(pl.col("layer_name").cast(pl.String), pl.col("proxy").cast(pl.String))
    depth = pl.col("layer") / pl.col("layer").max().over("arch_id", "proxy").clip(lower_bound=1)
    order = (
        named.group_by("layer_name").agg(depth.mean().alias("depth")).sort("depth", "layer_name")
    )
    names = order["layer_name"].to_list()
    out = np.full((len(ids), len(proxies), len(names)), np.nan)  # synflow exceeds float32
    pos = pl.DataFrame({"arch_id": ids, "row": np.arange(len(ids))})
    sel = named.filter(pl.col("proxy").is_in(proxies)).join(pos, on="arch_id", how="inner")
    out[
        sel["row"].to_numpy(),
        sel["proxy"].replace_strict({p: i for i, p in enumerate(proxies)}).to_numpy(),
        sel["layer_name"].replace_strict({n: i for i, n in enumerate(names)}).to_numpy(),
    ] = sel["value"].to_numpy()
    return names, out


def _pivot_scalars(net: pl.DataFrame, ids: np.ndarray, names: list[str]) -> np.ndarray:
    out = np.full((len(ids), len(names)), np.nan)
    pos = pl.DataFrame({"arch_id": ids, "row": np.arange(len(ids))})
    sel = net.join(pos, on="arch_id", how="inner")
    if sel.is_empty():
        return out
    col = {n: i for i, n in enumerate(names)}
    out[sel["row"].to_numpy(), sel["proxy"].cast(pl.String).replace_strict(col).to_numpy()] = sel[
        "value"
    ].to_numpy()
    return out


def _check_duplicates(con: duckdb.DuckDBPyConnection, params: dict) -> None:
    rows = con.sql(
        "SELECT arch_id, proxy, layer, count(*) AS n FROM features WHERE space = $space "
        "AND dataset = $dataset GROUP BY ALL HAVING n > 1 LIMIT 5",
        params=params,
    ).fetchall()
    if rows:
        raise _RowsError(
            f"duplicate feature rows in the store for {params['space']}/"
            f"{params['dataset']} (arch_id, proxy, layer, count): {rows}; "
            "run `parzc store check`"
        )
    rows = con.sql(
        "SELECT arch_id, proxy, count(*) AS n FROM arch_stats WHERE space = $space "
        "AND dataset = $dataset AND proxy <> 'n_layers' GROUP BY ALL HAVING n > 1 LIMIT 5",
        params=params,
    ).fetchall()
    if rows:
        raise _RowsError(
            f"duplicate network-level rows in the store for {params['space']}/"
            f"{params['dataset']} (arch_id, proxy, count): {rows}; a network proxy is in two "
            "feature sets, or run `parzc store check`"
        )


def _check_layer_counts(
    con: duckdb.DuckDBPyConnection,
    params: dict,
    ids: np.ndarray,
    proxies: list[str],
    space: str,
    dataset: str,
) -> None:
    """Every arch has its arch_stats (n_layers) and, per requested proxy, exactly layers
    0..n_layers-1: no layer silently missing."""
    n_layers = con.sql(
        "SELECT arch_id, min(value) AS lo, max(value) AS hi FROM arch_stats "
        "WHERE space = $space AND dataset = $dataset AND proxy = 'n_layers' GROUP BY arch_id",
        params=params,
    ).pl()
    known = pl.DataFrame({"arch_id": ids}).join(n_layers, on="arch_id", how="left")
    absent = known.filter(pl.col("lo").is_null())["arch_id"].to_list()
    if absent:
        raise _RowsError(
            f"{len(absent)} of {len(ids)} requested archs of {space}/{dataset} have no "
            f"arch_stats rows (first: {absent[:5]}); run `parzc store check`"
        )
    if (known["lo"] != known["hi"]).any():
        bad = known.filter(pl.col("lo") != pl.col("hi"))["arch_id"].to_list()
        raise _RowsError(
            f"archs of {space}/{dataset} have conflicting layer counts across feature sets "
            f"(first: {bad[:5]})"
        )
    if not proxies:
        return
    counts = con.sql(
        "SELECT arch_id, proxy::VARCHAR AS proxy, count(*) AS n, max(layer) AS top FROM features "
        "WHERE space = $space AND dataset = $dataset AND proxy::VARCHAR IN "
        "(SELECT unnest($proxies)) GROUP BY ALL",
        params={**params, "proxies": proxies},
    ).pl()
    rows = counts.join(known.select("arch_id", "lo"), on="arch_id", how="inner").filter(
        (pl.col("n") != pl.col("lo")) | (pl.col("top") != pl.col("lo") - 1)
    )
    if len(rows):
        first = rows.row(0, named=True)
        raise _RowsError(
            f"{len(rows)} (arch, proxy) pairs of {space}/{dataset} do not have one row per "
            f"layer, e.g. arch {first['arch_id']} {first['proxy']}: {first['n']} rows for "
            f"{int(first['lo'])} layers; run `parzc store check`"
        )
