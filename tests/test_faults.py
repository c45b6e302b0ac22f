"""Crashes, corrupt shards and numerical faults: real processes, real files, nothing lost.

Every test states what it tried (counts) and checks that the store afterwards is either
unchanged or byte-for-byte what an uninterrupted run gives.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch
from conftest import ARCH_SEED, extract_into, mini_settings, shard_part
from torch import nn

import parzc
from parzc.evaluation.metrics import rank_metrics
from parzc.extract import extract_shard
from parzc.predictors import TrainingDiverged
from parzc.sharding import arch_order, shard_arch_ids
from parzc.spaces import SPACES
from parzc.spaces.base import ACCURACY_COLUMNS, DatasetInfo, SearchSpace
from parzc.store import Store, StoreError
from parzc.store.check import check_store, quarantine

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
CHEAP = dict(feature_set="cheap", layer_proxies=("params", "l2_norm"), network_proxies=("params",))
CHEAP_SHARDS = ((0, 3), (4, 7), (8, 11), (12, 15))
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def cheap_settings():
    """params + l2_norm per layer, params per network: no forward pass, ~50 ms per arch."""
    return mini_settings(**CHEAP)


def part(start: int, end: int, space: str = "nb201", fset: str = "cheap") -> str:
    return shard_part(start, end, space, "cifar10", fset)


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under root, by relative path."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def same_content(a: Path, b: Path, table: str) -> None:
    """Two shards hold identical rows and metadata (extraction times excepted)."""
    ta, tb = pq.read_table(a), pq.read_table(b)
    if table == "arch_stats":
        ta, tb = ta.drop_columns(["extract_ms"]), tb.drop_columns(["extract_ms"])
    assert ta.equals(tb), f"{a} differs from {b}"
    assert ta.schema.metadata == tb.schema.metadata


@pytest.fixture(scope="module")
def cheap_store(tmp_path_factory) -> Path:
    """results/ with 16 NB201 archs in 4 shards of the cheap proxy set."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("cheap") / "results"
    for start, end in CHEAP_SHARDS:
        extract_into(root, start, end, cheap_settings())
    return root


@pytest.fixture
def store_copy(cheap_store, tmp_path) -> Path:
    root = tmp_path / "results"
    shutil.copytree(cheap_store, root)
    return root


def python_driver(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{REPO}", "OMP_NUM_THREADS": "1"}


def kill_when(proc: subprocess.Popen, pattern: str, timeout: float = 120) -> list[str]:
    """Read proc's stderr until a line matches `pattern`, then SIGKILL it; return the lines."""
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if re.search(pattern, line):
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        timer.cancel()
    proc.wait()
    return lines


# --- 1. a job killed mid-shard ---------------------------------------------------------------


def test_sigkill_mid_shard_leaves_nothing_and_rerun_matches_uninterrupted(tmp_path):
    """Kill a real extraction process after its first arch: no Parquet or temporary file is
    left, and a rerun writes exactly what an uninterrupted run writes."""
    n = 24
    root, reference = tmp_path / "results", tmp_path / "reference"
    root.mkdir()
    proc = subprocess.Popen(
        python_driver(
            f"""
            import torch; torch.set_num_threads(1)
            from pathlib import Path
            from conftest import extract_into, mini_settings
            from parzc.logs import setup_logging
            setup_logging()
            extract_into(Path({str(root)!r}), 0, {n - 1}, mini_settings(**{CHEAP!r}))
            """
        ),
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    lines = kill_when(proc, rf"\(1/{n}\)")
    done = [int(m[1]) for line in lines if (m := re.search(rf"\((\d+)/{n}\)", line))]
    assert proc.returncode == -signal.SIGKILL, "".join(lines[-20:])
    assert 1 <= max(done) < n  # killed mid-shard: at least one arch done, not all
    assert [p for p in root.rglob("*") if p.is_file()] == []  # no partial shard, no tmp file
    assert check_store(root) == []
    assert Store(root).sql("SELECT count(*) AS n FROM features")["n"][0] == 0

    extract_into(root, 0, n - 1, cheap_settings())  # the rerun
    extract_into(reference, 0, n - 1, cheap_settings())  # an uninterrupted run
    for table in ("features", "arch_stats"):
        same_content(root / table / part(0, n - 1), reference / table / part(0, n - 1), table)
    assert check_store(root) == []
    assert len(Store(root).assemble("nb201", "cifar10", ["params", "l2_norm"])) == n


def test_sigkill_mid_write_keeps_the_old_shard_and_an_ignored_tmp_file(store_copy, tmp_path):
    """Kill a process inside an atomic write that replaces a shard: the old shard stays intact,
    the half-written temporary file is invisible to the store, reported by check_store, moved
    by quarantine, and a rerun completes."""
    root = store_copy
    shard = root / "features" / part(0, 3)
    before = snapshot(root)
    proc = subprocess.Popen(
        python_driver(
            f"""
            import sys, time
            from parzc.io import atomic_path
            data = open({str(shard)!r}, "rb").read()
            with atomic_path({str(shard)!r}) as tmp:
                with open(tmp, "wb") as fh:
                    fh.write(data[: len(data) // 2])
                    fh.flush()
                print("half written", tmp, file=sys.stderr, flush=True)
                time.sleep(300)
            """
        ),
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    lines = kill_when(proc, "half written")
    assert proc.returncode == -signal.SIGKILL, "".join(lines)
    tmp = Path(lines[-1].split()[-1])
    after = snapshot(root)
    leftover = sorted(set(after) - set(before))
    assert leftover == [tmp.relative_to(root).as_posix()]
    assert tmp.parent == shard.parent and tmp.name.startswith(f".{shard.name}.")
    assert tmp.suffix == ".tmp" and tmp.stat().st_size > 0
    assert {k: v for k, v in after.items() if k in before} == before  # old shard intact

    store = Store(root)
    assert tmp not in store.shard_files("features")
    assert store.sql("SELECT count(DISTINCT arch_id) AS n FROM features")["n"][0] == 16
    assert len(store.assemble("nb201", "cifar10", ["params", "l2_norm"])) == 16
    problems = check_store(root)
    assert [(p.path, p.problem) for p in problems] == [
        (tmp, "leftover temporary file of an interrupted write")
    ]
    moved = quarantine(problems, root)
    assert moved == [root / "quarantine" / tmp.relative_to(root)]
    extract_into(root, 0, 3, cheap_settings())  # the rerun of the interrupted job
    assert check_store(root) == []
    assert snapshot(root / "features").keys() == {
        k.removeprefix("features/") for k in before if k.startswith("features/")
    }


def test_crash_between_the_two_shard_files_is_detected(store_copy):
    """extract_shard writes features then arch_stats; a crash in between leaves a features
    shard without its twin: check_store reports it and assembly refuses, naming the file."""
    root = store_copy
    (root / "arch_stats" / part(4, 7)).unlink()
    problems = check_store(root)
    assert [p.path.name for p in problems] == ["part-00004-00007.parquet"]
    assert "no matching arch_stats shard" in problems[0].problem
    with pytest.raises(StoreError, match=r"features/.*part-00004-00007\.parquet: no matching"):
        Store(root).assemble("nb201", "cifar10", ["params"])


# --- 2. corrupt shards: store check / repair, and assembly ------------------------------------


def rewrite(path: Path, fn, **meta: str) -> None:
    """Rewrite a shard with fn(table), keeping (and updating) its key-value metadata."""
    table = pq.read_table(path)
    metadata = {**table.schema.metadata, **{k.encode(): v.encode() for k, v in meta.items()}}
    pq.write_table(fn(table).replace_schema_metadata(metadata), path)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 3 // 5])


def flip_value_bytes(path: Path) -> None:
    """Flip one byte in the middle of the `value` column chunk (a data page)."""
    md = pq.ParquetFile(path).metadata
    names = [md.schema.column(i).name for i in range(md.num_columns)]
    col = md.row_group(0).column(names.index("value"))
    start = col.dictionary_page_offset if col.has_dictionary_page else col.data_page_offset
    data = bytearray(path.read_bytes())
    data[start + col.total_compressed_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def value_as_string(table: pa.Table) -> pa.Table:
    i = table.schema.get_field_index("value")
    return table.set_column(i, "value", pc.cast(table["value"], pa.string()))


def doubled(table: pa.Table) -> pa.Table:
    return pa.concat_tables([table, table])


def foreign_space(table: pa.Table) -> pa.Table:
    """Rows of an NB101 shard: other arch_ids (and space=nb101 in the metadata, see below)."""
    i = table.schema.get_field_index("arch_id")
    return table.set_column(i, "arch_id", pc.add(table["arch_id"], pa.scalar(100_000, pa.int32())))


def missing_layers(table: pa.Table) -> pa.Table:
    return table.filter(pc.not_equal(table["layer"], 3))


def damage_six_ways(root: Path) -> dict[Path, str]:
    """Six faults in six files of a copy of the cheap store; {file: expected problem}."""
    foreign = root / "features" / part(0, 3, space="nb101")
    foreign.parent.mkdir(parents=True)
    shutil.copy(root / "features" / part(0, 3), foreign)  # nb201 rows in an nb101 partition
    truncate(root / "features" / part(0, 3))
    rewrite(root / "arch_stats" / part(4, 7), value_as_string)
    rewrite(root / "features" / part(8, 11), doubled)
    flip_value_bytes(root / "arch_stats" / part(12, 15))
    tmp = root / "features" / part(12, 15)
    tmp = tmp.with_name(f".{tmp.name}.abc123.tmp")
    tmp.write_bytes(b"PAR1 half a shard")
    return {
        root / "features" / part(0, 3): r"unreadable Parquet",
        root / "arch_stats" / part(4, 7): r"column 'value' has type string, expected double",
        root / "features" / part(8, 11): r"duplicated arch_id/proxy/layer rows",
        root / "arch_stats" / part(12, 15): r"unreadable Parquet",  # flipped byte
        foreign: r"rows of space='nb201' in a space='nb101' partition",
        tmp: r"leftover temporary file",
    }


def test_store_check_cli_names_each_corrupt_shard_and_repair_quarantines(cheap_store, tmp_path):
    """Six faults in six files; `parzc store check` (exit 1) names each file and its problem,
    `parzc store repair` moves them (and their twins) to quarantine, a rerun restores the store
    with content identical to the undamaged one. (check and repair run at the same time, on two
    identically damaged copies.)"""
    checked, repaired = tmp_path / "checked", tmp_path / "repaired"
    for root in (checked, repaired):
        shutil.copytree(cheap_store, root)
    expected = damage_six_ways(checked)
    damage_six_ways(repaired)
    before = snapshot(checked)
    cli = [sys.executable, "-m", "parzc.cli", "store"]
    procs = [
        subprocess.Popen(
            [*cli, action, "--results", str(root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for action, root in (("check", checked), ("repair", repaired))
    ]
    (check_out, check_err), (repair_out, repair_err) = (p.communicate() for p in procs)
    assert procs[0].returncode == 1, check_out + check_err
    for path, problem in expected.items():
        assert re.search(rf"^{re.escape(str(path))}: .*{problem}", check_out, re.M), (
            path,
            check_out,
        )
    # the nb101 copy also has no arch_stats twin: 7 problems in all
    assert re.search(r"^7 problem\(s\)$", check_out, re.M), check_out
    assert snapshot(checked) == before  # check changes nothing

    root = repaired
    assert procs[1].returncode == 0, repair_out + repair_err
    moved = {Path(m) for m in re.findall(r"^moved to (.+)$", repair_out, re.M)}
    # 4 corrupt nb201 shards + their 4 twins, the foreign copy, the tmp file: 10 files, all kept
    assert len(moved) == 10 and all(m.is_file() for m in moved)
    assert all(root / "quarantine" in m.parents for m in moved)
    assert [p for p in (root / "features").rglob("*") if p.is_file()] == []
    assert check_store(root) == []

    for start, end in CHEAP_SHARDS:  # the rerun Snakemake would schedule for the moved shards
        extract_into(root, start, end, cheap_settings())
    assert check_store(root) == []
    for table in ("features", "arch_stats"):
        for start, end in CHEAP_SHARDS:
            same_content(
                root / table / part(start, end), cheap_store / table / part(start, end), table
            )


CORRUPTIONS = {
    # name: (file to damage, damage, expected message naming the problem)
    "truncated": ("features/" + part(4, 7), truncate, r"unreadable Parquet"),
    "flipped bytes": ("features/" + part(4, 7), flip_value_bytes, r"unreadable|ZSTD|CRC"),
    "wrong schema": (
        "features/" + part(4, 7),
        lambda p: rewrite(p, value_as_string),
        r"column 'value' has type string",
    ),
    "duplicate arch rows": (
        "features/" + part(4, 7),
        lambda p: rewrite(p, doubled),
        r"duplicate",
    ),
    "rows from another space": (
        "features/" + part(4, 7),
        lambda p: rewrite(p, foreign_space, space="nb101"),
        r"rows of space='nb101' in a space='nb201' partition",
    ),
    "missing layer rows": (
        "features/" + part(4, 7),
        lambda p: rewrite(p, missing_layers),
        r"one row per layer",
    ),
    "missing twin": (
        "arch_stats/" + part(4, 7),
        lambda p: p.unlink(),
        r"no matching arch_stats shard",
    ),
    "stale overlapping shard": (
        "features/" + part(4, 7),
        lambda p: shutil.copy(p, p.with_name("part-00002-00005.parquet")),
        r"part-00002-00005\.parquet: .*(differ|duplicate)",
    ),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_assemble_refuses_a_corrupt_shard_naming_it(store_copy, kind):
    """Each of 8 kinds of damage to one shard makes assembly raise StoreError naming the file,
    instead of silently dropping, duplicating or zero-filling architectures."""
    rel, damage, problem = CORRUPTIONS[kind]
    path = store_copy / rel
    damage(path)
    with pytest.raises(StoreError) as info:
        Store(store_copy).assemble("nb201", "cifar10", ["params", "l2_norm"])
    message = str(info.value)
    assert re.search(problem, message), message
    assert "part-00004-00007.parquet" in message or "part-00002-00005.parquet" in message
    # the store check CLI's function finds the same file
    assert any("part-0000" in p.path.name for p in check_store(store_copy))


def test_assemble_counts_are_exact(cheap_store):
    """Explicit arch_ids: all present -> exactly those rows; one missing or repeated -> error."""
    store = Store(cheap_store)
    pool = [int(a) for s, e in CHEAP_SHARDS for a in shard_arch_ids("nb201", ARCH_SEED, s, e)]
    data = store.assemble("nb201", "cifar10", ["params", "l2_norm"], arch_ids=pool)
    assert data.arch_ids.tolist() == pool and len(set(pool)) == 16
    assert len(store.assemble("nb201", "cifar10", ["params"])) == 16  # arch_ids=None: all
    outside = int(shard_arch_ids("nb201", ARCH_SEED, 100, 100)[0])
    with pytest.raises(StoreError, match=rf"1 of 17 requested archs .* lack features.*{outside}"):
        store.assemble("nb201", "cifar10", ["params"], arch_ids=[*pool, outside])
    with pytest.raises(StoreError, match=rf"duplicate arch_ids requested .*\[{pool[3]}\]"):
        store.assemble("nb201", "cifar10", ["params"], arch_ids=[*pool, pool[3]])
    # against the config: its pool is exactly what was stored; a larger count is caught
    from parzc.config import validate
    from parzc.dag import Plan

    config = {
        "shard_size": 4,
        "feature_sets": {"cheap": {"layer": ["params", "l2_norm"], "network": ["params"]}},
        "spaces": {"nb201": {"datasets": ["cifar10"], "archs": {"count": 16, "seed": ARCH_SEED}}},
    }
    plan = Plan(validate(config))
    assert plan.ranges("nb201") == list(CHEAP_SHARDS)
    assert store.assemble("nb201", "cifar10", ["params"], plan.pool("nb201")).arch_ids.tolist() == (
        plan.pool("nb201")
    )
    config["spaces"]["nb201"]["archs"]["count"] = 20
    with pytest.raises(StoreError, match=r"4 of 20 requested archs .* lack features"):
        store.assemble("nb201", "cifar10", ["params"], Plan(validate(config)).pool("nb201"))


# --- 3. determinism and provenance -------------------------------------------------------------


def test_training_is_deterministic_and_outputs_record_seeds_and_versions(mini_store, tmp_path):
    """mabn, 2 epochs, same seed, twice: identical losses, scores and metrics. Shards, the split
    and the predictions record seeds and versions in their Parquet metadata."""
    from parzc.io import read_metadata
    from parzc.training.run import train_and_predict
    from parzc.training.splits import make_split, save_split

    store = Store(mini_store)
    pool = store.sql("SELECT DISTINCT arch_id FROM features")["arch_id"].to_list()
    split_path = tmp_path / "split.parquet"
    save_split(make_split(pool, 4, seed=0), split_path, space="nb201", dataset="cifar10", seed=0)
    params = {"epochs": 2, "mc_samples": 2, "device": "cpu"}
    runs = []
    for i in range(2):
        report = train_and_predict(
            store.assemble(
                "nb201", "cifar10", ["grad_norm", "snip", "synflow"], onehot=True, every_cell=True
            ),
            "mabn",
            "mabn",
            params,
            split_path,
            0,
            tmp_path / f"pred{i}.parquet",
            tmp_path / f"model{i}.pkl",
        )
        pred = pl.read_parquet(tmp_path / f"pred{i}.parquet")
        runs.append(
            (report, pred, rank_metrics(pred["score"].to_numpy(), pred["target"].to_numpy()))
        )
    (r0, p0, m0), (r1, p1, m1) = runs
    assert r0["loss_history"] == r1["loss_history"] and len(r0["loss_history"]) == 2
    held_out = p0.filter(pl.col("held_out") & (pl.col("arch_id") == pl.col("network_id")))
    assert p0.equals(p1) and held_out.height == 4
    assert m0.keys() == m1.keys()
    assert all(np.array_equal(m0[k], m1[k], equal_nan=True) for k in m0), (m0, m1)
    # provenance: every output records the seeds and versions that produced it
    shard = read_metadata(mini_store / "features" / shard_part(0, 3))
    split = read_metadata(split_path)
    pred = read_metadata(tmp_path / "pred0.parquet")
    for meta in (shard, split, pred):
        assert meta["parzc_version"] == parzc.__version__
        assert meta["torch_version"] == torch.__version__
    assert (shard["batch_seed"], shard["init_seed"], shard["arch_seed"]) == ("0", "0", "0")
    assert split["seed"] == "0" and pred["seed"] == "0"


# --- 5. numerical faults -----------------------------------------------------------------------


def assert_nan_has_reason(path: Path) -> pa.Table:
    table = pq.read_table(path)
    silent = pc.sum(pc.and_(pc.is_nan(table["value"]), pc.is_null(table["nan_reason"]))).as_py()
    assert not silent, f"{path}: NaN values without a nan_reason"
    finite_with_reason = pc.sum(
        pc.and_(pc.invert(pc.is_nan(table["value"])), pc.is_valid(table["nan_reason"]))
    ).as_py()
    assert not finite_with_reason
    return table


def test_all_none_cell_extracts_to_zeros_or_nan_with_reason(tmp_path):
    """The NB201 cell with only `none` edges (zero gradients, a singular NASWOT kernel, a constant
    NTK), every proxy, extracted for real: no crash; each value is finite or NaN with its reason;
    assembly scales its constant vectors to zeros."""
    from parzc.proxies import LAYER_PROXIES, NETWORK_PROXIES
    from parzc.spaces import get_space

    archs = get_space("nb201").archs()
    arch_id = int(archs.filter(pl.col("arch") == ALL_NONE)["arch_id"][0])
    settings = mini_settings(
        feature_set="all",
        layer_proxies=tuple(LAYER_PROXIES.names()),
        network_proxies=tuple(NETWORK_PROXIES.names()),
        arch_seed=None,
    )
    root = tmp_path / "results"
    position = arch_order("nb201", None).tolist().index(arch_id)  # in the networks' order
    rel = shard_part(position, position, feature_set="all")
    summary = extract_shard(settings, [arch_id], root / "features" / rel, root / "arch_stats" / rel)
    assert summary.archs == 1
    feats = pl.from_arrow(assert_nan_has_reason(root / "features" / rel))
    stats = pl.from_arrow(assert_nan_has_reason(root / "arch_stats" / rel))
    by_proxy = {p: g["value"].to_numpy() for (p,), g in feats.group_by("proxy")}
    assert set(by_proxy) == set(LAYER_PROXIES.names())
    for proxy in ("grad_norm", "snip", "plain", "grasp", "synflow"):
        assert np.array_equal(by_proxy[proxy], np.zeros_like(by_proxy[proxy])), proxy
    net = dict(zip(stats["proxy"].cast(pl.String), stats["value"], strict=True))
    reasons = dict(zip(stats["proxy"].cast(pl.String), stats["nan_reason"], strict=True))
    assert np.isnan(net["nwot"]) and "singular" in reasons["nwot"]
    assert np.isnan(net["ntk_alignment"]) and "constant" in reasons["ntk_alignment"]
    assert all(np.isfinite(v) for k, v in net.items() if k not in ("nwot", "ntk_alignment"))
    assert check_store(root) == []

    data = Store(root).assemble("nb201", "cifar10", ["grad_norm", "synflow", "params"])
    assert np.isfinite(data.layerwise).all()
    assert (data.layerwise[0, :2] == 0).all()  # constant (zero) vectors scale to zeros
    assert data.layerwise[0, 2].max() == 1.0  # params is not constant


class OverflowSpace(SearchSpace):
    """A test space of deep MLPs whose weights all equal the arch string's number: 1e10 makes
    synflow's R overflow float64 (40 layers: 1e400)."""

    name = "overflow"
    datasets = {"cifar10": DatasetInfo("cifar10", 10, 32, "CIFAR-10 images")}
    max_layers = 40

    def accuracy_table(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "arch_id": [0, 1],
                "arch": ["1e10", "0.01"],
                "dataset": ["cifar10"] * 2,
                "val_acc": [10.0, 20.0],
                "test_acc": [10.0, 20.0],
                "train_time_s": [None, None],
            }
        ).cast(ACCURACY_COLUMNS)

    def decode(self, arch: str) -> float:
        return float(arch)

    def build(self, arch: str, dataset: str) -> nn.Module:
        layers = [nn.Flatten(), nn.Linear(3 * 32 * 32, 8)]
        layers += [nn.Linear(8, 8) for _ in range(38)] + [nn.Linear(8, 10)]
        model = nn.Sequential(*layers)
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(self.decode(arch))
        return model

    def onehot(self, arch: str) -> np.ndarray:
        return np.zeros(1, dtype=np.float32)


@pytest.fixture
def overflow_space():
    SPACES.register("overflow")(OverflowSpace)
    yield "overflow"
    SPACES._items.pop("overflow")


def test_synflow_overflow_is_stored_as_nan_with_reason(overflow_space, tmp_path):
    """A real extraction whose synflow overflows float64: every synflow value is NaN with an
    `overflow` reason in the store, other proxies are unaffected, and assembly keeps the arch
    (its NaN vector scales to zeros; its aggregate stays NaN)."""
    settings = mini_settings(
        space="overflow",
        feature_set="num",
        layer_proxies=("synflow", "params", "l2_norm"),
        network_proxies=("params",),
    )
    root = tmp_path / "results"
    rel = shard_part(0, 1, space="overflow", feature_set="num")
    summary = extract_shard(settings, [0, 1], root / "features" / rel, root / "arch_stats" / rel)
    assert summary.nan_reasons == {"layer:synflow": 1} and summary.nan_values == 40
    feats = pl.from_arrow(assert_nan_has_reason(root / "features" / rel))
    syn = feats.filter(pl.col("proxy") == "synflow")
    huge, small = syn.filter(pl.col("arch_id") == 0), syn.filter(pl.col("arch_id") == 1)
    assert huge["value"].is_nan().all() and len(huge) == 40
    assert huge["nan_reason"].str.contains("overflow").all()
    assert small["value"].is_finite().all() and small["nan_reason"].is_null().all()
    assert feats.filter(pl.col("proxy") != "synflow")["value"].is_finite().all()
    assert check_store(root) == []

    data = Store(root).assemble("overflow", "cifar10", ["synflow", "params"])
    assert data.arch_ids.tolist() == [0, 1]
    assert (data.layerwise[0, 0] == 0).all() and np.isfinite(data.layerwise).all()
    assert np.isnan(data.aggregates[0, data.aggregate_names.index("synflow")])
    assert np.isfinite(data.aggregates[1, data.aggregate_names.index("synflow")])


def test_nan_loss_stops_training_cleanly_and_writes_nothing(cheap_store, tmp_path):
    """A learning rate of 1e30 makes the loss NaN: train_and_predict raises TrainingDiverged
    naming the epoch, and neither a predictions nor a model file exists afterwards."""
    from parzc.training.run import train_and_predict
    from parzc.training.splits import make_split, save_split

    store = Store(cheap_store)
    pool = store.sql("SELECT DISTINCT arch_id FROM features")["arch_id"].to_list()
    split_path = tmp_path / "split.parquet"
    save_split(make_split(pool, 8, seed=0), split_path, seed=0)
    out = tmp_path / "out"
    with pytest.raises(TrainingDiverged, match=r"diverged at epoch \d+/3: mean batch loss is nan"):
        train_and_predict(
            store.assemble("nb201", "cifar10", ["params", "l2_norm"], onehot=True, every_cell=True),
            "mabn",
            "mabn",
            {"epochs": 3, "lr": 1e30, "batch_size": 4, "mc_samples": 2, "device": "cpu"},
            split_path,
            0,
            out / "predictions.parquet",
            out / "model.pkl",
        )
    assert not out.exists() or not any(out.rglob("*"))


# --- 6. parzc sql cannot write, nor read outside the store --------------------------------------


def test_sql_refuses_writes_and_outside_reads_and_leaves_bytes_unchanged(store_copy, tmp_path):
    root = store_copy
    shard = root / "features" / part(0, 3)
    outside = tmp_path / "outside.parquet"
    pq.write_table(pa.table({"x": [1]}), outside)
    refused = [
        f"SELECT * FROM read_parquet('{outside}')",
        f"SELECT * FROM read_parquet('{root}/../outside.parquet')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM glob('/etc/*')",
        "PRAGMA database_list",
        "CALL pragma_version()",
        f"EXPORT DATABASE '{root}/export'",
        f"EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{shard}' (FORMAT parquet)",
        f"EXPLAIN (ANALYZE) COPY features TO '{root}/features/x.csv'",
        "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1",
        "CHECKPOINT",
        "LOAD httpfs",
        "DETACH memory",
        "USE memory",
    ]
    before = snapshot(root)
    store = Store(root)
    for query in refused:
        with pytest.raises(Exception) as info:
            store.sql(query)
        assert re.search(r"refused|Permission|disabled", str(info.value)), (query, info.value)
    assert snapshot(root) == before
    # reading is still possible, inside the store only
    assert store.sql(f"SELECT count(*) AS n FROM read_parquet('{shard}')")["n"][0] > 0
    assert store.sql("EXPLAIN ANALYZE SELECT count(*) FROM features").height == 1
    assert snapshot(root) == before


# --- parzc extract runs only the config's shards, recording their permutation seed ---------------


@pytest.fixture
def cli_cheap_config(tmp_path) -> tuple[Path, Path]:
    import yaml

    results = tmp_path / "results"
    config = {
        "results": str(results),
        "device": "cpu",
        "batch": {"size": 8, "seed": 0},
        "shard_size": 4,
        "feature_sets": {"cheap": {"layer": ["params", "l2_norm"], "network": ["params"]}},
        "spaces": {"nb201": {"datasets": ["cifar10"], "archs": {"count": 8, "seed": 0}}},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, results


def run_cli_extract(config: Path, start: int, end: int) -> int:
    import logging

    from parzc.cli import main

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return main(
            ["extract", "--config", str(config), "--space", "nb201", "--dataset", "cifar10"]
            + ["--feature-set", "cheap", "--start", str(start), "--end", str(end)]
        )
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_cli_extract_records_the_config_arch_seed(cli_cheap_config):
    config, results = cli_cheap_config
    assert run_cli_extract(config, 0, 3) == 0
    assert check_store(results) == []


def test_cli_extract_refuses_a_range_that_is_not_a_config_shard(cli_cheap_config, capsys):
    config, results = cli_cheap_config
    assert run_cli_extract(config, 2, 5) == 2
    assert re.search(r"2-5 .*shard", capsys.readouterr().err)
    assert not results.exists()
