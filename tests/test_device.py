"""Device selection (config `device`: auto / cpu / cuda / cuda:N) for extraction and training.

CUDA's presence is mocked with `torch.cuda.is_available` only: resolve_device maps names to
`torch.device` objects (which need no GPU to exist), and the error paths stop before any tensor is
moved. Tests that need a real GPU are marked `gpu` and skip without one.
"""

from __future__ import annotations

import platform

import numpy as np
import pytest
import torch
from conftest import ARCH_SEED, mini_settings

from parzc.allocator import retain_freed_memory
from parzc.device import DEVICE_CHOICES, limit_threads, resolve_device
from parzc.extract import extract_shard
from parzc.sharding import shard_arch_ids

HAS_CUDA = torch.cuda.is_available()
needs_gpu = pytest.mark.skipif(
    not HAS_CUDA, reason="needs a CUDA device: torch.cuda.is_available() is False on this machine"
)


@pytest.fixture
def cuda_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


@pytest.fixture
def cuda_absent(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_auto_uses_cuda_when_present(cuda_present):
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device() == torch.device("cuda")  # auto is the default


def test_auto_falls_back_to_cpu(cuda_absent):
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.parametrize("available", [True, False])
def test_cpu_is_cpu_even_with_a_gpu(monkeypatch, available):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize(("spec", "expected"), [("cuda", "cuda"), ("cuda:1", "cuda:1")])
def test_cuda_when_present(cuda_present, spec, expected):
    assert resolve_device(spec) == torch.device(expected)


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_fails_naming_the_value(cuda_absent, spec):
    with pytest.raises(RuntimeError, match=rf"device '{spec}' requested but CUDA is not available"):
        resolve_device(spec)


@pytest.mark.parametrize("spec", ["gpu", "", "CPU", "Auto", "mps", "tpu:0", " cuda"])
@pytest.mark.parametrize("available", [True, False])
def test_unknown_device_is_rejected(monkeypatch, spec, available):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    with pytest.raises(ValueError, match=rf"unknown device {spec!r}") as err:
        resolve_device(spec)
    for choice in DEVICE_CHOICES:
        assert choice in str(err.value)


def test_malformed_cuda_index_is_rejected(cuda_present):
    """torch itself rejects a bad index; the message still names the value."""
    with pytest.raises(RuntimeError, match="cuda:x"):
        resolve_device("cuda:x")


def test_extraction_with_cuda_but_no_gpu_fails_before_writing(cuda_absent, tmp_path):
    features, stats = tmp_path / "features.parquet", tmp_path / "arch_stats.parquet"
    ids = shard_arch_ids("nb201", ARCH_SEED, 0, 1)
    with pytest.raises(RuntimeError, match="device 'cuda' requested but CUDA is not available"):
        extract_shard(mini_settings(), ids, features, stats, "cuda")
    assert not features.exists() and not stats.exists()


def test_training_with_cuda_but_no_gpu_fails_clearly(cuda_absent):
    from parzc.predictors import create_predictor

    predictor = create_predictor("mabn", device="cuda", epochs=1)
    with pytest.raises(RuntimeError, match="device 'cuda' requested but CUDA is not available"):
        predictor.fit(None, seed=0)  # the device is resolved before the data is looked at


def test_limit_threads():
    before = torch.get_num_threads()
    try:
        limit_threads(1)
        assert torch.get_num_threads() == 1
        limit_threads(0)  # never below one thread
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


# -- real GPU ---------------------------------------------------------------------------------


@pytest.mark.gpu
@needs_gpu
def test_auto_picks_the_real_gpu():
    device = resolve_device("auto")
    assert device.type == "cuda"
    assert (torch.ones(2, device=device) * 2).sum().item() == 4.0


@pytest.mark.gpu
@needs_gpu
def test_extraction_on_gpu_matches_cpu(tmp_path):
    import polars as pl

    from parzc.io import read_metadata

    ids = shard_arch_ids("nb201", ARCH_SEED, 0, 1)
    tables = {}
    for device in ("cpu", "cuda"):
        features, stats = tmp_path / f"f_{device}.parquet", tmp_path / f"s_{device}.parquet"
        extract_shard(mini_settings(), ids, features, stats, device)
        assert read_metadata(features)["device"].startswith(device)
        tables[device] = pl.read_parquet(features).sort(["arch_id", "proxy", "layer"])
    cpu, gpu = tables["cpu"], tables["cuda"]
    assert cpu.select("arch_id", "proxy", "layer").equals(gpu.select("arch_id", "proxy", "layer"))
    for proxy in cpu["proxy"].unique().to_list():
        a = cpu.filter(pl.col("proxy") == proxy)["value"].to_numpy()
        b = gpu.filter(pl.col("proxy") == proxy)["value"].to_numpy()
        scale = np.nanmax(np.abs(a)) if np.isfinite(a).any() else 1.0
        np.testing.assert_allclose(b, a, rtol=1e-2, atol=1e-6 * scale, equal_nan=True)


@pytest.mark.gpu
@needs_gpu
def test_training_on_gpu(mini_store):
    from parzc.predictors import create_predictor
    from parzc.store import Store

    data = Store(mini_store).assemble("nb201", "cifar10", ["grad_norm", "snip", "synflow"])
    predictor = create_predictor("mabn", device="cuda", epochs=2, mc_samples=2)
    report = predictor.fit(data, seed=0)
    assert report["device"].startswith("cuda")
    score, _ = predictor.predict(data)
    assert np.isfinite(score).all()


def test_retaining_freed_memory_is_applied_once_on_glibc():
    glibc = platform.libc_ver()[0] == "glibc"
    assert retain_freed_memory() is glibc
    assert retain_freed_memory() is glibc  # idempotent
