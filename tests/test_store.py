"""Extraction output, store views, read-only SQL and matrix assembly on real NB201 archs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from conftest import ARCH_SEED, LAYER, NETWORK, SHARDS, extract_into, mini_settings, shard_part

import parzc
from parzc.sharding import shard_arch_ids
from parzc.store import Store, StoreError, scale_within_arch


def test_shard_schema_metadata_and_row_counts(mini_store):
    path = mini_store / "features" / shard_part(0, 3)
    table = pq.read_table(path)
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    assert meta["parzc_version"] == parzc.__version__
    assert meta["torch_version"] == torch.__version__
    assert meta["batch_seed"] == "0" and meta["batch_size"] == "8"
    assert len(meta["batch_indices"].split(",")) == 8
    assert meta["config_hash"] == mini_settings().digest()
    ids = set(shard_arch_ids("nb201", ARCH_SEED, 0, 3).tolist())
    assert set(table["arch_id"].to_pylist()) == ids
    # every arch has one row per (proxy, Conv2d/Linear layer), layer types from the network
    con = Store(mini_store).connect()
    per_arch = con.sql(
        "SELECT arch_id, count(*) / count(DISTINCT proxy) AS layers FROM features GROUP BY arch_id"
    ).fetchall()
    n_layers = dict(
        con.sql("SELECT arch_id, value FROM arch_stats WHERE proxy = 'n_layers'").fetchall()
    )
    assert {a: float(n) for a, n in per_arch} == n_layers
    assert set(con.sql("SELECT DISTINCT layer_type FROM features").pl()["layer_type"]) == {
        "Conv2d",
        "Linear",
    }
    assert not list(mini_store.rglob("*.tmp"))


def test_per_arch_timing_recorded(mini_store):
    times = Store(mini_store).sql(
        "SELECT arch_id, min(extract_ms) AS lo, max(extract_ms) AS hi FROM arch_stats "
        "GROUP BY arch_id"
    )
    assert len(times) == 8
    assert (times["lo"] == times["hi"]).all() and (times["lo"] > 0).all()


def test_params_proxy_matches_published_nb201_counts(mini_store):
    rows = Store(mini_store).sql(
        "SELECT s.value, a.arch FROM arch_stats s JOIN accuracy a ON a.space = 'nb201' AND "
        "a.dataset = 'cifar10' AND a.arch_id = s.arch_id WHERE s.proxy = 'params'"
    )
    from parzc.spaces import get_space

    space = get_space("nb201")
    for value, arch in rows.iter_rows():
        assert value == sum(p.numel() for p in space.build(arch, "cifar10").parameters())


def test_extraction_is_deterministic(mini_store, tmp_path):
    extract_into(tmp_path, 0, 3)
    a = pq.read_table(mini_store / "features" / shard_part(0, 3))
    b = pq.read_table(tmp_path / "features" / shard_part(0, 3))
    assert a.equals(b)


def test_assemble_scales_pads_and_joins_targets(mini_store):
    data = Store(mini_store).assemble(
        "nb201", "cifar10", ["grad_norm", "snip", "synflow"], onehot=True
    )
    assert data.layerwise.shape == (8, 3, 98) and data.layerwise.dtype == np.float32
    assert data.layerwise.min() >= 0 and data.layerwise.max() <= 1
    n_layers = (data.layerwise_raw[:, 0] != 0).sum(axis=1)
    assert (data.layerwise[np.arange(8), :, :][:, :, 97] == 0).all() or (n_layers == 98).any()
    assert data.onehot.shape == (8, 30)
    assert set(data.aggregate_names) == {*LAYER, *(f"net:{n}" for n in NETWORK)}
    assert np.all((data.test_acc > 0) & (data.test_acc < 100))
    # aggregate = sum of the raw per-layer values
    g = data.aggregate_names.index("grad_norm")
    np.testing.assert_allclose(data.aggregates[:, g], data.layerwise_raw[:, 0].sum(axis=1))


def test_assemble_checks_requested_counts(mini_store):
    store = Store(mini_store)
    with pytest.raises(StoreError, match="fisher"):
        store.assemble("nb201", "cifar10", ["fisher"])
    with pytest.raises(StoreError, match="lack features"):
        store.assemble("nb201", "cifar10", ["snip"], arch_ids=[0, 1, 2])


def test_a_set_of_network_proxies_only_joins_the_store(mini_store, tmp_path):
    """A feature set without per-layer proxies writes features shards without rows; the store
    accepts them and assembles its proxies next to the other sets'."""
    from parzc.store.check import check_store

    root = tmp_path / "results"
    shutil.copytree(mini_store, root)
    network_only = mini_settings(feature_set="meco", layer_proxies=(), network_proxies=("meco",))
    for start, end in SHARDS:
        extract_into(root, start, end, network_only)
    part = root / "features" / shard_part(0, 3, feature_set="meco")
    assert pq.read_table(part).num_rows == 0
    assert check_store(root) == []
    data = Store(root).assemble("nb201", "cifar10", ["snip"])
    meco = data.aggregates[:, data.aggregate_names.index("net:meco")]
    assert np.isfinite(meco).all() and (meco > 0).all()
    # per-layer rows in such a set's shard are foreign
    shutil.copy(root / "features" / shard_part(0, 3), part)
    table = pq.read_table(part)
    metadata = {**table.schema.metadata, b"feature_set": b"meco", b"layer_proxies": b""}
    pq.write_table(table.replace_schema_metadata(metadata), part)
    with pytest.raises(StoreError, match="no layer proxies"):
        Store(root).assemble("nb201", "cifar10", ["snip"])


def test_assemble_detects_duplicated_shards(mini_store, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(mini_store, root)
    dup = root / "features" / shard_part(0, 3).replace("part-", "copy-part-")
    shutil.copy(root / "features" / shard_part(0, 3), dup)
    with pytest.raises(StoreError, match="duplicate"):
        Store(root).assemble("nb201", "cifar10", ["snip"])


def test_scaling_handles_constant_and_nan_vectors():
    values = np.array([[[1.0, 1.0, 1.0, np.nan], [0.0, 2.0, np.nan, 4.0]]])
    present = np.array([[[True, True, True, False], [True, True, True, True]]])
    scaled = scale_within_arch(values, present)
    np.testing.assert_array_equal(scaled, [[[0, 0, 0, 0], [0, 0.5, 0, 1]]])


@pytest.mark.parametrize(
    "query",
    [
        "COPY (SELECT 1) TO '/tmp/parzc_evil.csv'",
        "ATTACH '/tmp/parzc_evil.db'",
        "CREATE TABLE t AS SELECT 1",
        "INSERT INTO features SELECT * FROM features",
        "DROP VIEW features",
        "SET enable_external_access = true",
        "INSTALL httpfs",
        "SELECT 1; SELECT 2",
        "SELECT * FROM read_csv('/etc/passwd')",
    ],
)
def test_sql_is_read_only(mini_store, query):
    before = sorted(p.stat().st_mtime_ns for p in mini_store.rglob("*.parquet"))
    with pytest.raises((StoreError, Exception)) as info:
        Store(mini_store).sql(query)
    assert (
        "refused" in str(info.value)
        or "Permission" in str(info.value)
        or "exactly one statement" in str(info.value)
    )
    assert sorted(p.stat().st_mtime_ns for p in mini_store.rglob("*.parquet")) == before


def run_sql_cli(root, query: str, *options: str) -> subprocess.CompletedProcess:
    """`python -m parzc.cli sql QUERY --results ROOT OPTIONS...` as a real process."""
    command = [sys.executable, "-m", "parzc.cli", "sql", query, "--results", str(root), *options]
    return subprocess.run(command, capture_output=True, text=True)


def test_cli_sql_csv_and_json(mini_store):
    query = (
        "SELECT proxy, count(DISTINCT arch_id) AS archs FROM features GROUP BY proxy ORDER BY proxy"
    )
    out = run_sql_cli(mini_store, query, "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [{"proxy": p, "archs": 8} for p in sorted(LAYER)]
    csv = run_sql_cli(mini_store, query, "--format", "csv")
    assert csv.returncode == 0, csv.stderr
    assert csv.stdout.splitlines()[0] == "proxy,archs"


def test_cli_sql_refusal_exits_nonzero(mini_store):
    run = run_sql_cli(mini_store, "DELETE FROM features")
    assert run.returncode == 2 and "read-only" in run.stderr


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("SELECT nope FROM arch_stats", "nope"),
        ("SELEC 1", "SELEC"),
        ("SELECT * FROM nowhere", "nowhere"),
    ],
)
def test_cli_sql_bad_query_is_a_clear_error(mini_store, query, names):
    run = run_sql_cli(mini_store, query)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr and names in run.stderr


def test_shards_cover_the_configured_ranges():
    ids = [shard_arch_ids("nb201", ARCH_SEED, a, b) for a, b in SHARDS]
    assert len(set(np.concatenate(ids).tolist())) == 8
    with pytest.raises(ValueError, match="out of bounds"):
        shard_arch_ids("nb201", ARCH_SEED, 15620, 15630)
