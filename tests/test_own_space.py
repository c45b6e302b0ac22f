"""A user's own space: choice encodings, config, labels files, proxy inputs, ranking and the
DAG's reaction to new labels, on the shipped digits example (examples/digits)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import yaml
from conftest import DIGITS_EXAMPLE as EXAMPLE
from conftest import digits_config as own_config
from conftest import planned_jobs

from parzc.config import ConfigError, load, validate
from parzc.dag import Plan
from parzc.labels import LabelsError, aggregate_labels, append_labels, read_labels
from parzc.sharding import ExtractSettings
from parzc.spaces import InvalidArchError, get_space
from parzc.spaces.choice import Choices
from parzc.store.matrix import FeatureMatrix

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(EXAMPLE))

from digits_space import DigitsCNN  # noqa: E402

CHOICES = Choices(DigitsCNN.choices)
ARCH = "depth=2,width=16,kernel=3,activation=relu,pool=max,batchnorm=true"


# -- choice encodings ------------------------------------------------------------------------


def test_choices_encode_decode_enumerate_onehot_neighbours():
    archs = list(CHOICES.enumerate())
    assert len(archs) == CHOICES.total == 216 and len(set(archs)) == 216
    assert all(CHOICES.encode(CHOICES.decode(a)) == a for a in archs)
    shuffled = ",".join(reversed(ARCH.split(",")))
    assert CHOICES.normalise(shuffled) == ARCH
    assert CHOICES.onehot(ARCH).sum() == len(CHOICES.names)
    assert len({CHOICES.onehot(a).tobytes() for a in archs}) == 216
    neighbours = CHOICES.neighbours(ARCH)
    assert len(neighbours) == int((CHOICES.sizes - 1).sum())
    assert all(
        sum(x != y for x, y in zip(a.split(","), ARCH.split(","), strict=True)) == 1
        for a in neighbours
    )


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        (ARCH.replace("width=16", "width=17"), "decision 'width' has value '17'"),
        (ARCH.replace("kernel=3,", ""), "decision 'kernel' is missing"),
        (ARCH + ",dropout=0.1", "unknown decision 'dropout'"),
        (ARCH + ",depth=2", "decision 'depth' appears twice"),
        ("depth", "'depth' is not decision=option"),
    ],
)
def test_choices_reject_bad_encodings_naming_the_decision(arch, message):
    with pytest.raises(InvalidArchError, match=re.escape(message)):
        CHOICES.decode(arch)


def test_samples_are_distinct_seeded_and_prefix_stable():
    big = Choices({"a": list(range(50)), "b": list(range(50)), "c": ["x", "y"]})
    first = big.sample(300, seed=3)
    assert len(set(first)) == 300 and first == big.sample(300, seed=3)
    assert big.sample(500, seed=3)[:300] == first  # a larger sample keeps every arch_id
    assert big.sample(300, seed=4) != first
    with pytest.raises(ValueError, match="cannot sample 6000"):
        big.sample(6000, seed=0)


# -- config ----------------------------------------------------------------------------------


def test_own_space_registers_with_candidates_and_datasets(tmp_path):
    config = validate(own_config(tmp_path, count=30))
    space = get_space("digits")
    archs = space.archs()
    assert len(archs) == 30 and archs["arch"].to_list() == CHOICES.sample(30, 0)
    assert archs["arch_id"].to_list() == list(range(30))
    assert not space.ground_truth and space.dataset("digits").num_classes == 10
    assert Plan(config).arch_count("digits") == 30


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": "no_such_module:Space"}, "cannot import 'no_such_module'"),
        ({"source": "digits_data:load_split"}, "is not a ChoiceSpace or SearchSpace"),
        ({"data": {}}, "spaces/digits/data/digits: a user's space needs the proxy inputs"),
        ({"labels": {"mnist": "x.csv"}}, "spaces/digits/labels/mnist: 'mnist' is not one of"),
        ({"label_range": [1, 0]}, "label_range: 1 is not < 0"),
    ],
)
def test_bad_own_space_configs_name_the_field(tmp_path, change, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(own_config(tmp_path, **change))


def test_builtin_spaces_take_no_own_space_keys(tmp_path):
    config = own_config(tmp_path)
    config["spaces"] = {"nb201": {"datasets": ["cifar10"], "labels": {"cifar10": "x.csv"}}}
    with pytest.raises(ConfigError, match="spaces/nb201/labels: only a user's space"):
        validate(config)
    config = own_config(tmp_path)
    config["spaces"]["nb201"] = config["spaces"].pop("digits")
    with pytest.raises(ConfigError, match="'nb201' is a built-in space"):
        validate(config)


def test_config_check_rebuilds_candidates_in_a_fresh_process(tmp_path):
    """`parzc config check` imports the space anew and builds candidates; a space whose
    encodings do not rebuild fails there, before any job runs."""
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(own_config(tmp_path)))
    out = subprocess.run(
        ["parzc", "config", "check", str(good)], capture_output=True, text=True, check=True
    ).stdout
    assert "rebuilt in a fresh process, output [2, 10]" in out
    (tmp_path / "broken_space.py").write_text(
        "from digits_space import DigitsCNN\n"
        "class Broken(DigitsCNN):\n"
        "    def build(self, choices, num_classes):\n"
        "        if choices['depth'] == 3:\n"
        "            raise RuntimeError('depth 3 has no builder')\n"
        "        return super().build(choices, num_classes)\n"
    )
    config = own_config(tmp_path, count=None, source="broken_space:Broken")
    config["spaces"]["digits"]["python_path"].append(str(tmp_path))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    proc = subprocess.run(["parzc", "config", "check", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "fresh process failed: RuntimeError: depth 3 has no builder" in proc.stderr


# -- labels files ----------------------------------------------------------------------------


def write_labels(path: Path, rows: list[str], header: str = "arch,val_acc,test_acc,seed") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        ([f'"{ARCH}",nan,90,0'], None, "line 2: val_acc is 'nan', not a finite number"),
        ([f'"{ARCH}",90,90,0', f'"{ARCH}",101,90,1'], None, "line 3: val_acc 101.0 is outside"),
        ([f'"{ARCH}",abc,90,0'], None, "line 2: val_acc 'abc' is not a number"),
        (['"depth=9,width=8"', ""], "arch", "missing column 'val_acc'"),
        ([f'"{ARCH}",90,1'], "arch,val_acc,tset_acc", "unknown column 'tset_acc'"),
        (
            [f'"{ARCH}",90,91,0', f'"{ARCH}",92,91,0'],
            None,
            "conflicting rows for arch '" + ARCH + "' seed 0 (line 2 and line 3)",
        ),
        (
            [f'"{ARCH.replace("depth=2", "depth=5")}",90,90,0'],
            None,
            "line 2: arch 'depth=5,",
        ),
        ([f'"{ARCH}",,,0'], None, "line 2: val_acc is empty"),
    ],
)
def test_bad_label_rows_name_file_line_and_value(tmp_path, rows, header, message):
    validate(own_config(tmp_path, count=None))
    path = write_labels(tmp_path / "labels.csv", rows, header or "arch,val_acc,test_acc,seed")
    with pytest.raises(LabelsError, match=re.escape(f"{path}") + ".*" + re.escape(message)):
        read_labels(path, get_space("digits"))


def test_a_valid_encoding_outside_the_candidates_is_refused(tmp_path):
    validate(own_config(tmp_path, count=10))
    outside = next(a for a in CHOICES.enumerate() if a not in CHOICES.sample(10, 0))
    path = write_labels(tmp_path / "labels.csv", [f'"{outside}",90,90,0'])
    with pytest.raises(LabelsError, match="line 2: arch .* is not a candidate of space 'digits'"):
        read_labels(path, get_space("digits"))


def test_seeds_are_averaged_and_counted_and_failures_kept(tmp_path):
    validate(own_config(tmp_path, count=None))
    other = CHOICES.neighbours(ARCH)[0]
    path = write_labels(
        tmp_path / "labels.csv",
        [
            f'"{ARCH}",90,89,0,ok',
            f'"{ARCH}",94,93,1,ok',
            f'"{ARCH}",94,93,1,ok',  # the same training told twice counts once
            f'"{other}",,,0,failed',
        ],
        "arch,val_acc,test_acc,seed,status",
    )
    table = aggregate_labels(read_labels(path, get_space("digits")), "digits")
    row = table.filter(pl.col("arch") == ARCH).to_dicts()[0]
    assert (row["val_acc"], row["test_acc"], row["n_labels"], row["n_failed"]) == (92, 91, 2, 0)
    failed = table.filter(pl.col("arch") == other).to_dicts()[0]
    assert failed["val_acc"] is None and failed["n_failed"] == 1


def test_appending_a_bad_row_writes_nothing(tmp_path):
    validate(own_config(tmp_path, count=None))
    space = get_space("digits")
    path = tmp_path / "labels.csv"
    append_labels(path, pl.DataFrame({"arch": [ARCH], "val_acc": [91.0], "seed": [0]}), space)
    before = path.read_bytes()
    with pytest.raises(LabelsError, match="with the new rows.*val_acc 120.0 is outside"):
        append_labels(path, pl.DataFrame({"arch": [ARCH], "val_acc": [120.0]}), space)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# -- proxy inputs ----------------------------------------------------------------------------


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images * 255 / 16).astype(np.uint8), digits.target.astype(np.int64)


@pytest.mark.parametrize("kind", ["npz", "folder", "callable"])
def test_proxy_batches_from_npz_folder_and_callable(tmp_path, kind):
    from PIL import Image

    from parzc.proxies.inputs import ProxyInputs

    images, labels = digits_arrays()
    if kind == "npz":
        source = {"npz": str(tmp_path / "digits.npz")}
        np.savez(source["npz"], images=images, labels=labels)
    elif kind == "folder":
        source = {"folder": str(tmp_path / "digits")}
        for i, (image, label) in enumerate(zip(images[:200], labels[:200], strict=True)):
            (tmp_path / "digits" / str(label)).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(tmp_path / "digits" / str(label) / f"{i}.png")
    else:
        source = {"callable": "digits_data:proxy_batch"}
    inputs = ProxyInputs.from_config(
        {"source": source, "num_classes": 10, "channels": 1, "input_size": 16}
    )
    batch = inputs.load(32, seed=0)
    assert batch.labels.max() < 10 and len(batch.indices) == 32
    expected = (32, 1, 8, 8) if kind == "callable" else (32, 1, 16, 16)  # callables: as given
    assert tuple(batch.images.shape) == expected
    assert torch.equal(batch.images, inputs.load(32, seed=0).images)
    if kind != "callable":
        assert abs(float(batch.images.mean())) < 0.5  # normalised with the images' statistics


def test_input_settings_enter_the_digest_and_benchmark_digests_stay(tmp_path):
    config = validate(own_config(tmp_path))
    plan = Plan(config)
    first = plan.extract_settings("digits", "digits", "mini")
    config["spaces"]["digits"]["data"]["digits"]["normalise"] = "none"
    second = Plan(validate(config)).extract_settings("digits", "digits", "mini")
    assert first.digest() != second.digest()
    benchmark = ExtractSettings(
        space="nb201",
        dataset="cifar10",
        feature_set="zc",
        layer_proxies=("grad_norm", "snip"),
        network_proxies=("nwot",),
    )
    assert benchmark.digest() == "654871dec479ca09"  # as before user spaces existed


# -- the DAG ---------------------------------------------------------------------------------


def test_new_labels_refit_and_rerank_without_re_extracting(tmp_path):
    """Without labels: extraction only (correlation, training, ranking left out with a log
    line). With labels: ranking and training follow; appending rows re-runs everything that
    depends on labels, and no extraction."""
    config = own_config(tmp_path, count=24)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    plan = Plan(load(path))
    assert [t for t in plan.all_targets() if "/tables/" in t] == []
    assert any("ranking left out: 0 labelled candidates" in s for s in plan.skipped_outputs())
    subprocess.run(["snakemake", "--cores", "2", "--configfile", str(path)], cwd=REPO, check=True)
    archs = get_space("digits").archs()["arch"].to_list()
    accuracy = {a: 80 + i / 2 for i, a in enumerate(archs[:8])}
    labels = tmp_path / "labels.csv"
    write_labels(labels, [f'"{a}",{v},{v},0' for a, v in accuracy.items()])
    jobs = planned_jobs(path)
    assert "extract_shard" not in jobs
    assert {"assemble_matrix", "rank_candidates", "train_predictor", "proxy_correlation"} <= set(
        jobs
    )
    subprocess.run(["snakemake", "--cores", "2", "--configfile", str(path)], cwd=REPO, check=True)
    results = Path(config["results"])
    ranking = pl.read_parquet(
        results / "rankings/space=digits/dataset=digits/predictor=gbdt/seed0.parquet"
    )
    assert len(ranking) == 24 and ranking["labelled"].sum() == 8
    assert ranking["score"].is_finite().all()
    table = (results / "tables/ranking/space=digits/dataset=digits/ranking.md").read_text()
    assert table.count("depth=") == 5  # the top 5 unlabelled candidates
    # a budget on the summed params: only the table is redone, and lists only candidates within
    matrix = FeatureMatrix.load(results / "matrices/space=digits/dataset=digits/matrix.npz")
    params = matrix.aggregates[:, matrix.aggregate_names.index("params")]
    limit = float(np.median(params))
    inside = {archs[int(a)] for a in matrix.arch_ids[params <= limit]}
    config["spaces"]["digits"]["constraints"] = {"params": {"max": limit}}
    path.write_text(yaml.safe_dump(config))
    assert planned_jobs(path) == ["ranking_table", "all"]
    subprocess.run(["snakemake", "--cores", "2", "--configfile", str(path)], cwd=REPO, check=True)
    table = (results / "tables/ranking/space=digits/dataset=digits/ranking.md").read_text()
    listed = re.findall(r"depth=[^ |]+", table)
    assert len(listed) == 5 and set(listed) <= inside and "within the constraints" in table
    rank = ["parzc", "rank", "--config", str(path), "--space", "digits", "--dataset", "digits"]
    out = subprocess.run(
        [*rank, "--predictor", "gbdt", "--format", "csv", "--top", "30"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"within the constraints: params <= {limit:g}" in out
    printed = set(re.findall(r"depth=[^\"]+", out))
    assert printed and printed <= inside
    with labels.open("a") as fh:
        fh.write(f'"{archs[9]}",91.5,90,0\n')
    jobs = planned_jobs(path)
    assert "extract_shard" not in jobs and "rank_candidates" in jobs
    out = subprocess.run(
        [
            "parzc",
            "sql",
            "--format",
            "csv",
            "--config",
            str(path),
            "SELECT a.arch, a.val_acc, a.n_labels, s.value AS nwot FROM accuracy a "
            "JOIN arch_stats s USING (arch_id) WHERE a.space = 'digits' AND s.proxy = 'nwot' "
            "ORDER BY a.val_acc DESC LIMIT 1",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert archs[9] in out and "91.5" in out
    shutil.rmtree(results)


# -- a graph space: a SearchSpace subclass ------------------------------------------------------


def test_graph_space_subclass_extracts_with_cell_graphs(tmp_path):
    """A user's SearchSpace subclass (tests/graph_space_example.py) with a cell graph and a
    canonical form: candidates sampled, twins mapped to one network, proxies on the shipped
    CIFAR-10 images, and the assembled matrix carries cell graphs for fusion's cell branch."""
    from parzc import stages
    from parzc.store import Store

    config = own_config(tmp_path, count=6)
    config["spaces"] = {
        "conv_first": {
            "source": "graph_space_example:ConvFirstCells",
            "python_path": [str(REPO / "tests")],
            "candidates": {"count": 6, "seed": 1},
            "datasets": ["cifar10"],
            "data": {"cifar10": {"source": "cifar10", "num_classes": 10}},
        }
    }
    config["shard_size"] = 6
    plan = Plan(validate(config))
    space = get_space("conv_first")
    archs = space.archs()
    assert len(archs) == 6 and archs["arch"].str.starts_with("|nor_conv_3x3~0|").all()
    settings = plan.extract_settings("conv_first", "cifar10", "mini")
    files = {t: plan.shards(t)[0] for t in ("features", "arch_stats")}
    stages.extract(settings, 0, 5, files["features"], files["arch_stats"], "cpu")
    matrix = Store(config["results"]).assemble(
        "conv_first", "cifar10", ["grad_norm", "snip"], onehot=True, every_cell=True
    )
    assert len(matrix) == 6 and matrix.graph_ops is not None
    assert np.isnan(matrix.val_acc).all()  # no labels yet: candidates without ground truth
    with pytest.raises(LabelsError, match="the first edge must be nor_conv_3x3"):
        path = tmp_path / "bad.csv"
        path.write_text(
            'arch,val_acc\n"|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",5\n'
        )
        read_labels(path, space)


def test_ranking_table_breaks_ties_by_arch_id_and_skips_failures(tmp_path):
    from parzc.training.rank import ranking_table

    def ranking(predictor: str, seed: int, scores: list[float]) -> Path:
        path = tmp_path / f"{predictor}_{seed}.parquet"
        pl.DataFrame(
            {
                "arch_id": [3, 1, 2, 0],
                "arch": ["d", "b", "c", "a"],
                "score": scores,
                "labelled": [False, False, True, False],
                "failed": [False, True, False, False],
                "val_acc": [None, None, 90.0, None],
                "predictor": predictor,
                "seed": seed,
            }
        ).write_parquet(path)
        return path

    files = [ranking("zeta", 0, [1.0, 2.0, 3.0, 1.0]), ranking("alpha", 0, [4.0, 3.0, 2.0, 1.0])]
    table, best = ranking_table(files, top=5)
    again, _ = ranking_table(list(reversed(files)), top=5)
    assert table.equals(again)
    assert table.columns[5:8] == ["feasible", "rank_alpha", "rank_zeta"]
    assert table["feasible"].all()  # no constraints: every candidate
    ties = table.filter(pl.col("arch_id").is_in([0, 3])).sort("arch_id")["rank_zeta"].to_list()
    assert ties == [3, 4]  # equal scores: the smaller arch_id ranks first
    assert best["arch_id"].to_list() == [3, 0]  # neither the labelled (2) nor the failed (1)
    within, best = ranking_table(files, top=5, feasible_ids={0, 1, 2})
    assert best["arch_id"].to_list() == [0]  # 3 is outside the constraints
    assert within.filter(~pl.col("feasible"))["arch_id"].to_list() == [3]
