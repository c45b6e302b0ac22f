"""Kept fits: changing only a predictor's blend parameters re-blends a kept fit, on real NB201
features, and scores exactly as a fit made with those parameters."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from parzc.layout import Layout
from parzc.search.costs import TrainingRun, load_training
from parzc.store import Store
from parzc.training.run import train_and_predict
from parzc.training.splits import make_split, save_split

FAST = dict(
    dim=16,
    depth=1,
    pretrain_epochs=2,
    epochs=5,
    pretrain_proxies=["net:nwot", "synflow", "net:params"],
    tree_weight=0.5,
    neighbour_smoothing=0.2,
)


@pytest.fixture(scope="module")
def data(mini_store):
    return Store(mini_store).assemble(
        "nb201", "cifar10", ["grad_norm", "snip", "synflow"], onehot=True, every_cell=True
    )


@pytest.fixture
def split(data, tmp_path):
    path = tmp_path / "split.parquet"
    networks = data.arch_ids[data.arch_ids == data.network_ids].tolist()
    save_split(make_split(networks, 5, seed=0), path, space="nb201", dataset="cifar10", seed=0)
    return path


def _train(
    results, data, split, label: str, device: str = "cpu", **params
) -> tuple[dict, pl.DataFrame]:
    """One fusion fit into `results`' layout on `device`: its report and predictions."""
    layout = Layout(results)
    keys = dict(space="nb201", dataset="cifar10", predictor=label, size=5, seed=0)
    predictions = layout.path("predictions", **keys)
    report = train_and_predict(
        data,
        label,
        "fusion",
        {**FAST, **params},
        split,
        0,
        predictions,
        layout.path("model", **keys),
        device=device,
    )
    return report, pl.read_parquet(predictions)


def test_a_blend_change_re_blends_the_kept_fit(data, split, tmp_path):
    """The second fit differs only in its blend: it re-blends the first (its report names the
    kept fit and gives that fit's seconds) and scores as a fresh fit with its weights does,
    also after the first fit's model file is gone (Snakemake removes a job's outputs before it
    runs again)."""
    first, _ = _train(tmp_path / "run", data, split, "a")
    assert "kept_fit" not in first
    model = Layout(tmp_path / "run").path(
        "model", space="nb201", dataset="cifar10", predictor="a", size=5, seed=0
    )
    Path(model).unlink()
    blend = {"tree_weight": {0: 0.25, 100: 0.0}, "neighbour_smoothing": 0.4}
    again, reblended = _train(tmp_path / "run", data, split, "b", **blend)
    assert len(again["kept_fit"]) == 24 and again["fit_seconds"] == first["fit_seconds"]
    fresh_report, fresh = _train(tmp_path / "fresh", data, split, "b", **blend)
    assert "kept_fit" not in fresh_report
    np.testing.assert_allclose(reblended["score"].to_numpy(), fresh["score"].to_numpy())
    assert reblended.drop("score").equals(fresh.drop("score"))
    # a search charges the re-blending job (its Snakemake benchmark) the kept fit's seconds
    run = TrainingRun.locate(Layout(tmp_path / "run"), "nb201", "cifar10", "b", 5, 0)
    run = replace(run, split=split)
    run.benchmark.parent.mkdir(parents=True)
    run.benchmark.write_text("s\tcpu_time\n0.5\t0.4\n")
    assert load_training(run).seconds == pytest.approx(0.5 + first["fit_seconds"])


@pytest.mark.parametrize(
    "change",
    [
        {"epochs": 6},
        {"tree_weight": 0.0},
        {"tree_target": "rank"},
        {"probe_weight": 0.25},
        {"pretrained_share": 0.25},
    ],
    ids=["epochs", "no trees", "tree target", "probes", "pretrained share"],
)
def test_any_other_change_fits_again(data, split, tmp_path, change):
    """Another fine-tuning length, dropping the trees, another tree target, adding probes or
    a pretrained share is another fit."""
    _train(tmp_path / "run", data, split, "a")
    report, _ = _train(tmp_path / "run", data, split, "b", **change)
    assert "kept_fit" not in report


@pytest.mark.parametrize(
    "change",
    [{"tree_target": "rank", "tree_graph_features": True}, {"probe_ridge": 3.0}],
    ids=["tree settings", "probe penalty"],
)
def test_settings_of_parts_a_fit_does_not_make_keep_it(data, split, tmp_path, change):
    """A fit without trees (probes) does not depend on how trees (probes) would be made:
    changing those settings re-blends it, and scores as a fresh fit with them."""
    _train(tmp_path / "run", data, split, "a", tree_weight=0.0)
    again, reblended = _train(tmp_path / "run", data, split, "b", tree_weight=0.0, **change)
    assert "kept_fit" in again
    _, fresh = _train(tmp_path / "fresh", data, split, "b", tree_weight=0.0, **change)
    np.testing.assert_allclose(reblended["score"].to_numpy(), fresh["score"].to_numpy())


def test_a_fit_on_auto_keeps_the_fit_on_the_device_auto_picks(data, split, tmp_path):
    """`device: auto` counts as the device it resolves to: on a machine without CUDA it
    re-blends a fit made on the CPU (and with CUDA, a fit made on `cuda`)."""
    made_on = "cuda" if torch.cuda.is_available() else "cpu"
    _train(tmp_path / "run", data, split, "a", device=made_on)
    again, _ = _train(tmp_path / "run", data, split, "b", device="auto", neighbour_smoothing=0.4)
    assert "kept_fit" in again


def test_a_probe_weight_change_re_blends_the_kept_fit(data, split, tmp_path):
    """With probes fitted, their weight is a blend parameter like the trees'."""
    _train(tmp_path / "run", data, split, "a", probe_weight=0.25)
    again, reblended = _train(tmp_path / "run", data, split, "b", probe_weight=0.5)
    assert "kept_fit" in again
    _, fresh = _train(tmp_path / "fresh", data, split, "b", probe_weight=0.5)
    np.testing.assert_allclose(reblended["score"].to_numpy(), fresh["score"].to_numpy())


def test_an_unreadable_kept_fit_is_fitted_again(data, split, tmp_path, caplog):
    """A kept fit that cannot be read (e.g. truncated) is named in a warning and made again."""
    _train(tmp_path / "run", data, split, "a")
    (kept,) = (tmp_path / "run" / "models" / "kept").rglob("*.pkl")
    kept.unlink()  # a hard link of the model file: replace it, do not truncate the model
    kept.write_bytes(b"not a pickle")
    report, _ = _train(tmp_path / "run", data, split, "b", neighbour_smoothing=0.4)
    assert "kept_fit" not in report
    assert f"kept fit {kept} is unreadable" in caplog.text
    again, _ = _train(tmp_path / "run", data, split, "c", neighbour_smoothing=0.3)
    assert again["kept_fit"] == kept.stem
