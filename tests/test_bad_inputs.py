"""Bad inputs, table-driven: each is rejected with one clear message naming the offending
field or value, and nothing is written.

Kinds: config values (parzc.config.validate, and the real `snakemake -n --configfile` for a
few), CLI arguments (`python -m parzc.cli` subprocesses for some, `parzc.cli.main` for the
rest), architecture encodings (each space's decode) and store files (check_store / assemble).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from conftest import extract_into, mini_settings, shard_part

from parzc.config import ConfigError, validate
from parzc.spaces import get_space
from parzc.spaces.base import InvalidArchError
from parzc.store import Store, StoreError
from parzc.store.check import check_store

REPO = Path(__file__).resolve().parent.parent
CHEAP = dict(feature_set="mini", layer_proxies=("params", "l2_norm"), network_proxies=("params",))
TRIED: dict[str, int] = {}  # kind -> number of bad inputs tried (summed in the last test)


def snapshot(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def base_config(results: Path) -> dict:
    """A valid config: 12 NB201 archs in shards of 6, one feature set, a split of 6, mabn."""
    return {
        "results": str(results),
        "device": "cpu",
        "batch": {"size": 8, "seed": 0},
        "shard_size": 6,
        "feature_sets": {"mini": {"layer": ["grad_norm", "snip", "params"], "network": ["nwot"]}},
        "spaces": {
            "nb201": {
                "datasets": ["cifar10"],
                "archs": {"count": 12, "seed": 0},
                "train_sizes": [6],
            }
        },
        "train": {
            "features": ["grad_norm", "snip"],
            "predictors": {"mabn": {"model": "mabn", "params": {"epochs": 2}}},
        },
    }


def changed(config: dict, path: str, value) -> dict:
    """A copy of config with the '/'-separated path set to value (... deletes it)."""
    config = copy.deepcopy(config)
    *parents, last = path.split("/")
    node = config
    for key in parents:
        node = node.setdefault(key, {})
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return config


# --- config values ---------------------------------------------------------------------------

# (path, bad value, regex the message must match: it names the field and the value)
CONFIG_CASES = [
    ("shard_size", 0, r"shard_size: 0 is less than the minimum of 1"),
    ("shard_size", -5, r"shard_size: -5 is less than the minimum"),
    ("shard_size", "10", r"shard_size: '10' is not of type 'integer'"),
    ("batch/size", 0, r"batch/size: 0 is less than the minimum of 1"),
    ("batch/size", 1000, r"batch/size: 1000 exceeds the 320 shipped CIFAR-10 images"),
    ("batch/seed", -1, r"batch/seed: -1 is less than the minimum of 0"),
    ("init_seed", 1.5, r"init_seed: 1.5 is not of type 'integer'"),
    ("device", "gpu", r"device: 'gpu' does not match"),
    ("results", "", r"results: '' should be non-empty"),
    ("shardsize", 10, r"<root>: Additional properties .*'shardsize' was unexpected"),
    ("spaces", ..., r"<root>: 'spaces' is a required property"),
    ("feature_sets", {}, r"feature_sets: \{\} should be non-empty"),
    ("feature_sets/mini/layer", ["bogus"], r"feature_sets/mini: unknown layer proxy 'bogus'"),
    ("feature_sets/mini/network", ["zen2"], r"feature_sets/mini: unknown network proxy 'zen2'"),
    ("feature_sets/mini", {}, r"feature_sets/mini: no proxies listed"),
    ("feature_sets/Bad-Set", {"layer": ["snip"]}, r"feature_sets: 'Bad-Set' does not match"),
    ("feature_sets/mini/layer", ["snip", "snip"], r"feature_sets/mini/layer: .* non-unique"),
    ("feature_sets/mini/layer", "snip", r"feature_sets/mini/layer: 'snip' is not of type 'array'"),
    (  # overlapping feature sets: the store would hold a proxy twice
        "feature_sets/extra",
        {"layer": ["snip"]},
        r"feature_sets/extra/layer: layer proxy 'snip' is already in feature set 'mini'",
    ),
    ("spaces/nb999", {"datasets": ["cifar10"]}, r"spaces/nb999: unknown search space 'nb999'"),
    ("spaces/nb201/datasets", ["mnist"], r"spaces/nb201/datasets: unknown dataset 'mnist'"),
    ("spaces/nb201/datasets", [], r"spaces/nb201/datasets: \[\] should be non-empty"),
    ("spaces/nb201/archs/count", 0, r"spaces/nb201/archs/count: 0 is less than the minimum"),
    ("spaces/nb201/archs/count", -12, r"spaces/nb201/archs/count: -12 is less than"),
    ("spaces/nb201/archs/count", 20000, r"archs/count: 20000 exceeds the 9445 distinct networks"),
    ("spaces/nb201/archs/seed", -3, r"spaces/nb201/archs/seed: -3 is less than the minimum"),
    ("spaces/nb201/train_sizes", [1], r"train_sizes/0: 1 is not valid .*integer count >= 2"),
    ("spaces/nb201/train_sizes", [1.5], r"train_sizes/0: 1.5 is not valid .*fraction"),
    (  # a split as large as the pool of 12
        "spaces/nb201/train_sizes",
        [12],
        r"train_sizes/0: training split of 12 archs leaves none of the pool of 12",
    ),
    ("spaces/nb201/train_sizes", [50], r"train_sizes/0: .*50 archs .* pool of 12"),
    ("spaces/nb201/train_sizes", [0.05], r"train_sizes/0: training split 0.05 .* gives 1 < 2"),
    (  # overlapping splits: 0.5 of 12 is the 6 already listed
        "spaces/nb201/train_sizes",
        [6, 0.5],
        r"train_sizes/1: 0.5 gives 6 training archs .* as does 6",
    ),
    ("spaces/nb201/train_sizes", [6, 6], r"train_sizes: \[6, 6\] has non-unique"),
    (
        "spaces/nb201/predictor_params",
        {"mlp": {"epochs": 3}},
        r"spaces/nb201/predictor_params/mlp: no predictor labelled 'mlp'",
    ),
    (
        "spaces/nb201/predictor_params",
        {"mabn": {"epochs": 0}},
        r"spaces/nb201/predictor_params/mabn: epochs must be >= 1, got 0",
    ),
    (
        "train/predictors/mabn/params/batch_size",
        0,
        r"train/predictors/mabn/params: batch_size must be >= 1, got 0",
    ),
    (
        "train/predictors/mabn/params/epochs",
        "2",
        r"train/predictors/mabn/params/epochs: '2' is not of type int",
    ),
    ("train/predictors/mabn/params/lr", "fast", r"params/lr: 'fast' is not of type float"),
    (
        "train/predictors/mabn/params/lr",
        {0: 1e-3, 781: 1e-4},
        r"params/lr: \{0: 0.001, 781: 0.0001\} is not of type float",
    ),
    (
        "train/predictors/fz",
        {"model": "fusion", "params": {"tree_weight": {0: 0.5, 781: 2}}},
        r"train/predictors/fz/params: fusion: tree_weight must lie in \[0, 1\]",
    ),
    (
        "train/predictors/fz",
        {"model": "fusion", "params": {"tree_weight": "many"}},
        r"train/predictors/fz/params/tree_weight: 'many' is not of type float",
    ),
    (
        "train/predictors/fz",
        {"model": "fusion", "params": {"pretrain_proxies": ["net:nwot", "net:meco"]}},
        r"fz/params/pretrain_proxies: \['net:meco'\] are extracted by no feature set",
    ),
    (
        "train/predictors/fz",
        {
            "model": "fusion",
            "params": {
                "pretrain_proxies": ["snip"],
                "pretrain_member_proxies": [["snip"], ["synflow"]],
            },
        },
        r"fz/params/pretrain_member_proxies: \['synflow'\] are extracted by no feature set",
    ),
    ("train/predictors/mabn/params/bogus", 1, r"mabn/params: unknown parameter\(s\) bogus"),
    ("train/predictors/mabn/params/loss", "l7", r"mabn/params: unknown loss 'l7'"),
    ("train/predictors/mabn/model", "transformer", r"mabn/model: unknown predictor 'transformer'"),
    ("train/predictors/gbdt", {"params": {}}, r"train/predictors/gbdt: 'model' is a required"),
    ("train/features", ["fisher"], r"train/features/0: 'fisher' is in no feature set"),
    ("train/features", ["nwot"], r"train/features/0: unknown layer proxy 'nwot'"),
    ("train/seeds", [], r"train/seeds: \[\] should be non-empty"),
    ("train/seeds", [-1], r"train/seeds/0: -1 is less than the minimum of 0"),
]


@pytest.mark.parametrize(
    "path,value,message", CONFIG_CASES, ids=[f"{c[0]}={c[1]!r}"[:60] for c in CONFIG_CASES]
)
def test_bad_config_value_is_rejected_naming_the_field(tmp_path, path, value, message):
    results = tmp_path / "results"
    good = base_config(results)
    validate(good)  # the unchanged config is valid
    with pytest.raises(ConfigError) as info:
        validate(changed(good, path, value))
    assert str(info.value).startswith("config field ")
    assert re.search(message, str(info.value)), str(info.value)
    assert str(info.value).count("config field") == 1  # one message, not a list
    assert not results.exists()
    TRIED["config"] = TRIED.get("config", 0) + 1


# --- the real Snakemake: fails fast (before any job), naming the field -------------------------

SNAKEMAKE_CASES = [  # one schema error, one found by parzc.config.check_names (~8 s CPU each)
    ("shard_size", 0, r"shard_size"),
    ("spaces/nb201/train_sizes", [12], r"train_sizes/0: training split of 12 archs .* pool of 12"),
]


def test_snakemake_dry_run_rejects_bad_configs_naming_the_field(tmp_path):
    """Two bad configfiles, two `snakemake -n` processes at once: each exits non-zero with
    the field in its error, schedules no job and creates no results folder."""
    procs = []
    for i, (path, value, message) in enumerate(SNAKEMAKE_CASES):
        results = tmp_path / f"results{i}"
        config = changed(base_config(results), path, value)
        configfile = tmp_path / f"bad{i}.yaml"
        configfile.write_text(yaml.safe_dump(config))
        cmd = ["snakemake", "-n", "--cores", "1", "--configfile", str(configfile)]
        proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        procs.append((proc, results, message))
    for proc, results, message in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode != 0, out
        assert re.search(message, out), out
        assert "Job stats" not in out and "rule extract_shard" not in out
        assert not results.exists()
    TRIED["snakemake"] = len(SNAKEMAKE_CASES)


# --- CLI arguments -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_config(tmp_path_factory) -> tuple[Path, Path]:
    """A valid config file whose results folder must stay empty."""
    folder = tmp_path_factory.mktemp("cli")
    results = folder / "results"
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(base_config(results)))
    return path, results


def extract_args(config: Path, **overrides: str) -> list[str]:
    args = {"space": "nb201", "dataset": "cifar10", "feature_set": "mini", "start": "0", "end": "5"}
    args.update(overrides)
    out = ["extract", "--config", str(config)]
    for key, value in args.items():
        out += [f"--{key.replace('_', '-')}", value]
    return out


# (id, argv builder(config), regex; exit status is 2 for each)
CLI_CASES = [
    ("end beyond the space", lambda c: extract_args(c, end="99999"), r"0-99999 is not one of"),
    ("reversed range", lambda c: extract_args(c, start="5", end="2"), r"5-2 is not one of"),
    ("negative start", lambda c: extract_args(c, start="-3"), r"-3-5 is not one of"),
    ("unknown --space", lambda c: extract_args(c, space="nb999"), r"nb999"),
    ("space not in config", lambda c: extract_args(c, space="nb101"), r"nb101"),
    ("unknown --feature-set", lambda c: extract_args(c, feature_set="bogus"), r"bogus"),
    ("unknown --dataset", lambda c: extract_args(c, dataset="mnist"), r"'mnist' is not extracted"),
    ("non-integer --start", lambda c: extract_args(c, start="x"), r"--start: invalid int .*'x'"),
    (
        "missing config file",
        lambda c: extract_args(c.with_name("missing.yaml")),
        r"config file .*missing\.yaml does not exist",
    ),
    (
        "store check of a missing folder",
        lambda c: ["store", "check", "--results", str(c.with_name("nowhere"))],
        r"results folder .*nowhere does not exist",
    ),
    ("unknown store action", lambda c: ["store", "frobnicate"], r"invalid choice: 'frobnicate'"),
    (
        "sql that writes",
        lambda c: ["sql", "EXPLAIN ANALYZE COPY (SELECT 1) TO 'x.csv'", "--results", str(c.parent)],
        r"refused: parzc sql is read-only",
    ),
]
# real `python -m parzc.cli` processes (~6 s CPU each); the other cases call parzc.cli.main
SUBPROCESS = {"end beyond the space", "unknown --feature-set"}


@pytest.fixture(scope="module")
def cli_runs(cli_config) -> dict[str, tuple[int, str]]:
    """The SUBPROCESS cases as real `python -m parzc.cli` processes, all started at once."""
    config, _ = cli_config
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "parzc.cli", *argv(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for name, argv, _ in CLI_CASES
        if name in SUBPROCESS
    }
    return {name: (p.wait(timeout=300), p.stdout.read()) for name, p in procs.items()}


@pytest.fixture
def keep_logging():
    """parzc.cli.main reconfigures the root logger; restore pytest's handlers afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("name,argv,message", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_bad_cli_arguments_exit_2_naming_the_value(
    name, argv, message, cli_config, cli_runs, capsys, keep_logging
):
    from parzc.cli import main

    config, results = cli_config
    before = snapshot(config.parent)
    if name in SUBPROCESS:
        status, output = cli_runs[name]
    else:
        try:
            status = main(argv(config))
        except SystemExit as exc:  # argparse errors
            status = exc.code
        captured = capsys.readouterr()
        output = captured.out + captured.err
    assert status == 2, output
    assert re.search(message, output), output
    assert not results.exists()
    assert snapshot(config.parent) == before
    TRIED["cli"] = TRIED.get("cli", 0) + 1


# --- architecture encodings ---------------------------------------------------------------------

INP, OUT, C3, MP = "input", "output", "conv3x3-bn-relu", "maxpool3x3"
GOOD_NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
GOOD_NB201 += "skip_connect~2|"
SQUARE4 = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
DARTS_V2 = {
    "normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["sep_conv_3x3", 0], ["sep_conv_3x3", 1],
               ["sep_conv_3x3", 1], ["skip_connect", 0], ["skip_connect", 0], ["dil_conv_3x3", 2]],
    "normal_concat": [2, 3, 4, 5],
    "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 1],
               ["max_pool_3x3", 0], ["skip_connect", 2], ["skip_connect", 2], ["max_pool_3x3", 1]],
    "reduce_concat": [2, 3, 4, 5],
}  # fmt: skip
AUTOFORMER = {"embed_dim": 216, "depth": 12, "mlp_ratio": [4.0] * 12, "num_heads": [3] * 12}


def nb101(matrix, ops) -> str:
    return json.dumps({"matrix": matrix, "ops": ops})


def edited(base: dict, **changes) -> str:
    spec = {**copy.deepcopy(base), **changes}
    return json.dumps({k: v for k, v in spec.items() if v is not ...})


ARCH_CASES = [
    ("nb201", GOOD_NB201.replace("nor_conv_3x3~0|+", "conv_9x9~0|+", 1), r"bad edge 'conv_9x9~0'"),
    ("nb201", "|none~0|+|none~0|none~1|", r"must have 3 '\+'-separated node groups"),
    ("nb201", GOOD_NB201.replace("nor_conv_3x3~0|+", "nor_conv_3x3~1|+", 1), r"'nor_conv_3x3~1'"),
    ("nb201", GOOD_NB201[1:], r"group 'nor_conv_3x3~0\|' must be wrapped in '\|'"),
    ("nb201", "|none~0|+|none~0|none~1|none~2|+|none~0|none~1|none~2|", r"node 2 needs 2 edges"),
    ("nb201", 12345, r"must be a string, got int"),
    ("nb101", nb101([[0, 1, 0], [1, 0, 1], [0, 0, 0]], [INP, C3, OUT]), r"not upper triangular"),
    ("nb101", nb101([[0, 1, 1], [0, 0, 1]], [INP, C3, OUT]), r"not square: row 0 has 3 entries"),
    ("nb101", nb101(SQUARE4, [INP, C3, OUT]), r"ops .* must be a list of 4 labels"),
    ("nb101", nb101(SQUARE4, [INP, "conv5x5-bn-relu", C3, OUT]), r"ops\[1\] is 'conv5x5-bn-relu'"),
    (
        "nb101",
        nb101(SQUARE4, [C3, C3, C3, OUT]),
        r"ops\[0\] is 'conv3x3-bn-relu', expected 'input'",
    ),
    ("nb101", nb101([[0] * 8] * 8, [INP] + [C3] * 6 + [OUT]), r"matrix has 8 vertices"),
    (
        "nb101",
        nb101(
            [[0, *[1] * 6], *[[0] * (i + 2) + [1] * (5 - i) for i in range(5)], [0] * 7],
            [INP, *[C3] * 5, OUT],
        ),
        r"21 edges > 9",
    ),  # fmt: skip
    (
        "nb101",
        nb101([[0, 1, 0, 0], [0] * 4, [0, 0, 0, 1], [0] * 4], [INP, C3, MP, OUT]),
        r"disconn",
    ),
    ("nb101", nb101([[0, 2], [0, 0]], [INP, OUT]), r"matrix entry \(0,1\) is 2"),
    ("nb101", "{matrix: [[0]]", r"not JSON"),
    (
        "nb301",
        edited(DARTS_V2, normal=[["sep_conv_9x9", 0], *DARTS_V2["normal"][1:]]),
        r"normal\[0\] op 'sep_conv_9x9' is not one of",
    ),
    ("nb301", edited(DARTS_V2, normal=DARTS_V2["normal"][:7]), r"must list 8 .* got 7"),
    (
        "nb301",
        edited(DARTS_V2, normal=[*DARTS_V2["normal"][:7], ["skip_connect", 5]]),
        r"normal\[7\] input 5 is invalid",
    ),
    ("nb301", edited(DARTS_V2, reduce=...), r"expected an object with keys .*'reduce'"),
    ("nb301", edited(DARTS_V2, normal_concat=[2, 2, 3]), r"'normal_concat' is \[2, 2, 3\]"),
    ("autoformer", edited(AUTOFORMER, embed_dim=100), r"embed_dim is 100, expected one of"),
    ("autoformer", edited(AUTOFORMER, depth=10), r"depth is 10"),
    ("autoformer", edited(AUTOFORMER, num_heads=[7] * 12), r"num_heads\[0\] is 7"),
    ("autoformer", edited(AUTOFORMER, mlp_ratio=[9.0] * 12), r"mlp_ratio\[0\] is 9.0"),
    ("autoformer", edited(AUTOFORMER, mlp_ratio=...), r"expected an object with keys"),
    ("autoformer", "[1, 2]", r"got list"),
]


@pytest.mark.parametrize(
    "space,arch,message", ARCH_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(ARCH_CASES)]
)
def test_bad_arch_encoding_is_rejected_naming_the_value(space, arch, message):
    with pytest.raises(InvalidArchError) as info:
        get_space(space).decode(arch)
    assert re.search(message, str(info.value)), str(info.value)
    TRIED["arch"] = TRIED.get("arch", 0) + 1


# --- store files --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory) -> Path:
    """One shard of 4 NB201 archs (params + l2_norm, no forward pass)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny") / "results"
    extract_into(root, 0, 3, mini_settings(**CHEAP))
    torch.set_num_threads(before)
    return root


SHARD = shard_part(0, 3)


def put(rel: str, data: bytes | None = None, table: pa.Table | None = None):
    """A store-file case: write bytes or a table (with metadata) at rel."""

    def apply(root: Path) -> Path:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if table is not None:
            pq.write_table(table, path)
        else:
            path.write_bytes(data)
        return path

    return apply


def from_shard(table_name: str, rel: str, fn):
    """A store-file case: fn(table of the good shard) written at rel."""

    def apply(root: Path) -> Path:
        table = fn(pq.read_table(root / table_name / SHARD))
        return put(rel, table=table)(root)

    return apply


def drop_meta(key: str):
    def fn(table: pa.Table) -> pa.Table:
        meta = {k: v for k, v in table.schema.metadata.items() if k != key.encode()}
        return table.replace_schema_metadata(meta)

    return fn


def nan_without_reason(table: pa.Table) -> pa.Table:
    values = pc.if_else(pc.equal(table["layer"], 0), float("nan"), table["value"])
    return table.set_column(table.schema.get_field_index("value"), "value", values)


# (id, writer, regex the problem must match, whether assembly reads the file and refuses)
STORE_CASES = [
    ("text file as shard", put(f"features/{SHARD}", b"arch_id,value\n1,2\n"), r"unreadable", True),
    ("empty shard", put(f"features/{SHARD}", b""), r"unreadable Parquet", True),
    (
        "stray file outside the layout",
        put("features/stray.parquet", b"PAR1"),
        r"does not follow space=/dataset=/feature_set=/part-A-B",
        False,
    ),
    (
        "arch_stats table in features",
        from_shard("arch_stats", f"features/{SHARD}", lambda t: t),
        r"missing column 'layer'",
        True,
    ),
    (
        "extra column",
        from_shard("features", f"features/{SHARD}", lambda t: t.append_column("space", t["proxy"])),
        r"unexpected column 'space'",
        True,
    ),
    (
        "reversed range in the name",
        from_shard("features", "features/" + shard_part(3, 0), lambda t: t),
        r"range 3-0 in the file name is reversed",
        True,
    ),
    (
        "NaN without a reason",
        from_shard("features", f"features/{SHARD}", nan_without_reason),
        r"NaN values without a nan_reason",
        False,  # assembly keeps NaN values (they become 0 after scaling); check reports them
    ),
    (
        "metadata without n_archs",
        from_shard("features", f"features/{SHARD}", drop_meta("n_archs")),
        r"metadata has no n_archs",
        True,
    ),
]


@pytest.mark.parametrize("name,write,problem,refused", STORE_CASES, ids=[c[0] for c in STORE_CASES])
def test_bad_store_file_is_reported_and_never_assembled(
    name, write, problem, refused, tiny_store, tmp_path
):
    root = tmp_path / "results"
    shutil.copytree(tiny_store, root)
    bad = write(root)
    before = snapshot(root)
    problems = [p for p in check_store(root) if p.path == bad]
    assert any(re.search(problem, p.problem) for p in problems), (bad, check_store(root))
    if refused:
        with pytest.raises(StoreError) as info:
            Store(root).assemble("nb201", "cifar10", ["params"])
        assert str(bad) in str(info.value) and re.search(problem, str(info.value))
    else:
        Store(root).assemble("nb201", "cifar10", ["params"])
    assert snapshot(root) == before  # checking and refusing write nothing
    TRIED["store"] = TRIED.get("store", 0) + 1


def test_a_results_path_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "results"
    path.write_text("not a folder")
    with pytest.raises(FileNotFoundError, match=r"results folder .*results is not a folder"):
        check_store(path)
    assert path.read_text() == "not a folder"
    TRIED["store"] = TRIED.get("store", 0) + 1


def test_count_of_bad_inputs_tried():
    """Runs last in this module: how many bad inputs each kind tried (see -rA / -s output)."""
    print("bad inputs tried:", TRIED, "total", sum(TRIED.values()))
    if len(TRIED) == 5:  # the whole module ran
        assert sum(TRIED.values()) >= 25
