"""Device selection: `auto` uses CUDA when present, else the CPU."""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(spec: str = "auto") -> torch.device:
    """Map a config value (auto / cpu / cuda / cuda:N) to a torch device, failing clearly."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {spec!r} requested but CUDA is not available on this machine"
            )
        return torch.device(spec)
    raise ValueError(f"unknown device {spec!r}; use one of {', '.join(DEVICE_CHOICES)} or cuda:N")


def limit_threads(threads: int) -> None:
    """Cap torch's intra-op threads at the job's allotment (avoids oversubscribing shared nodes)."""
    torch.set_num_threads(max(1, int(threads)))
