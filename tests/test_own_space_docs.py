"""docs/own-space.md works as printed: the files its tutorial tells a user to write (each code
block headed `# my_space/<file>`) pass `parzc config check` from a fresh folder, with every data
source of section 2, and the mistakes it quotes fail with the messages it quotes."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
TUTORIAL = (REPO / "docs" / "own-space.md").read_text()
BLOCKS = re.findall(r"```\w+\n(.*?)```", TUTORIAL, re.S)
FILES = {
    m.group(1): block
    for block in BLOCKS
    if (m := re.fullmatch(r"# (my_space/\S+)(?::.*)?", block.splitlines()[0]))
}
DATA_SOURCES = [block for block in BLOCKS if block.startswith("    data:")]


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory) -> Path:
    """A fresh working folder holding the tutorial's files, with the repository's examples."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "examples").symlink_to(REPO / "examples")
    for name, text in FILES.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text(text)
    subprocess.run([sys.executable, "my_space/make_files.py"], cwd=folder, check=True)
    return folder


def config_check(folder: Path, config: dict, name: str) -> subprocess.CompletedProcess:
    path = folder / "my_space" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run(
        ["parzc", "config", "check", str(path.relative_to(folder))],
        cwd=folder,
        capture_output=True,
        text=True,
    )


def test_the_tutorial_names_every_file_it_uses():
    assert set(FILES) == {
        "my_space/small_cnn.py",
        "my_space/cells.py",
        "my_space/small.yaml",
        "my_space/make_files.py",
        "my_space/losses.py",
    }
    assert len(DATA_SOURCES) == 3


def test_the_files_make_the_digits_npz_and_image_folder(user_folder):
    with np.load(user_folder / "my_space" / "digits.npz") as data:
        assert data["images"].shape == (1797, 8, 8) and data["images"].dtype == np.uint8
        assert sorted(set(data["labels"].tolist())) == list(range(10))
    classes = sorted(p.name for p in (user_folder / "my_space" / "digits_png").iterdir())
    assert classes == [str(c) for c in range(10)]


@pytest.mark.parametrize(
    ("source", "data"),
    [
        ("small_cnn:SmallCNN", 0),
        ("small_cnn:SmallCNN", 1),
        ("small_cnn:SmallCNN", 2),
        ("cells:TinyCells", 0),
    ],
    ids=["choices-callable", "choices-npz", "choices-folder", "graph-callable"],
)
def test_each_space_and_data_source_passes_config_check(user_folder, source, data):
    config = yaml.safe_load(FILES["my_space/small.yaml"])
    space = config["spaces"]["small"]
    space["source"] = source
    space["data"] = yaml.safe_load(textwrap.dedent(DATA_SOURCES[data]))["data"]
    proc = config_check(user_folder, config, f"check_{source.split(':')[0]}_{data}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("rebuilt in a fresh process, output [2, 10]") == 3
    assert proc.stdout.rstrip().endswith(": valid")


def test_the_graph_space_encodes_every_candidate(user_folder, monkeypatch):
    monkeypatch.syspath_prepend(str(user_folder / "my_space"))
    from cells import TinyCells

    space = TinyCells()
    archs = list(space.enumerate())
    assert len(archs) == len(set(archs)) == 27
    for arch in archs:
        assert space.onehot(arch).sum() == 3
        assert len(space.neighbours(arch)) == 6
    # conv on 0->1 feeds nothing that reaches the output; skip on 0->2 does
    graph = space.cell_graph("conv-skip-none")
    assert {tuple(e) for e in np.argwhere(graph.adjacency)} == {(0, 1), (0, 2), (2, 4)}
    assert not space.cell_graph("none-none-none").adjacency.any()
    assert space.random_sample(np.random.default_rng(0)) in archs


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda space: space.update(python_path=["examples/digits"]),
            "config field spaces: space source 'small_cnn:SmallCNN': cannot import 'small_cnn' "
            "(No module named 'small_cnn')",
        ),
        (
            lambda space: space.update(source="small_cnn:SmallCnn"),
            "module 'small_cnn' has no 'SmallCnn'",
        ),
        (
            lambda space: space["data"]["digits"].update(source="cifar10"),
            "expected input[2, 3, 32, 32] to have 1 channels, but got 3 channels instead",
        ),
    ],
    ids=["python_path", "class", "channels"],
)
def test_the_quoted_mistakes_fail_with_the_quoted_messages(user_folder, change, message):
    assert message in " ".join(TUTORIAL.split()), "the tutorial no longer quotes this message"
    config = copy.deepcopy(yaml.safe_load(FILES["my_space/small.yaml"]))
    change(config["spaces"]["small"])
    proc = config_check(user_folder, config, "mistake")
    assert proc.returncode == 2
    assert message in proc.stderr
