"""Keep freed heap memory for reuse instead of handing it back to the system after every op.

glibc serves large blocks (above its mmap threshold, 128 KiB at start) with fresh mappings and
returns freed memory at the heap's top to the system. A torch pass on the CPU allocates and
frees activation-sized tensors op after op, so each new tensor starts with page faults, which
are slow in virtual machines. `retain_freed_memory` raises both thresholds for this process, so
freed blocks are reused; the process keeps its peak heap instead of shrinking between steps.
It changes no value, only where memory comes from (benchmarks/README.md has the speed-up).
"""

from __future__ import annotations

import ctypes
import functools

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest allowed mmap threshold on 64-bit systems
TRIM_THRESHOLD = 2**30


@functools.cache
def retain_freed_memory() -> bool:
    """Apply the policy once per process; False where the C library has no glibc `mallopt`."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (macOS, Windows): leave the allocator alone
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
