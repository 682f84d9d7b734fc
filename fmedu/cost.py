"""Measured cost: exact operation counts and wall-clock timings with log-log slope fits.

Notebook 01 uses ``matmul_flops`` (exact, deterministic counts from torch's flop
counter), ``time_dense_forms`` and ``time_sparse_form``; ``fit_loglog_slope`` is shared
by every cost figure. Timings are ratios and slopes, never limits.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from .model import predict, predict_naive, predict_sparse

__all__ = ["matmul_flops", "best_time", "fit_loglog_slope", "time_dense_forms", "time_sparse_form", "Timing"]


def matmul_flops(fn, *args, **kwargs) -> int:
    """Floating-point operations torch counts for the matrix products inside ``fn(*args)``.

    torch's FlopCounterMode counts 2 per multiply-add of mm/addmm/bmm/matmul; elementwise
    work is not counted, which is what makes the count an exact integer.
    """
    with FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    return int(counter.get_total_flops())


def best_time(fn, *, repeat: int = 5, min_seconds: float = 0.02) -> float:
    """Seconds per call: calls are grouped until a group lasts ``min_seconds``; best of ``repeat``."""
    fn()  # warm-up (allocations, lazy initialisation)
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds or calls >= 1 << 20:
            break
        calls *= 2
    best = elapsed / calls
    for _ in range(repeat - 1):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def fit_loglog_slope(sizes, seconds) -> float:
    """Least-squares slope of log(seconds) against log(size)."""
    slope, _ = np.polyfit(np.log(np.asarray(sizes, float)), np.log(np.asarray(seconds, float)), 1)
    return float(slope)


@dataclass
class Timing:
    size: int
    form: str
    seconds: float


def _random_fm(n: int, k: int, generator: torch.Generator):
    w0 = torch.zeros((), dtype=torch.float64)
    w = torch.randn(n, dtype=torch.float64, generator=generator)
    V = torch.randn(n, k, dtype=torch.float64, generator=generator) / math.sqrt(k)
    return w0, w, V


def time_dense_forms(ns, *, k: int = 16, batch: int = 64, seed: int = 0, repeat: int = 5) -> list[Timing]:
    """Seconds per batch of the naive and Rendle forms for each n (dense real-valued x)."""
    rows = []
    for n in ns:
        gen = torch.Generator().manual_seed(seed + n)
        w0, w, V = _random_fm(n, k, gen)
        x = torch.randn(batch, n, dtype=torch.float64, generator=gen)
        for form, fn in (("naive", predict_naive), ("rendle", predict)):
            rows.append(Timing(n, form, best_time(lambda: fn(x, w0, w, V, check=False), repeat=repeat)))
    return rows


def time_sparse_form(
    nnzs, *, ns=(10_000,), k: int = 16, batch: int = 256, seed: int = 0, repeat: int = 5
) -> list[Timing]:
    """Seconds per batch of the sparse form for each (n, nnz): the cost follows nnz, not n."""
    rows = []
    for n in ns:
        gen = torch.Generator().manual_seed(seed + n)
        w0, w, V = _random_fm(n, k, gen)
        for m in nnzs:
            # m distinct indices per sample: a random start plus m evenly spaced offsets (mod n)
            start = torch.randint(0, n, (batch, 1), generator=gen)
            idx = (start + torch.arange(m) * (n // m)) % n
            t = best_time(lambda: predict_sparse(idx, w0, w, V, check=False), repeat=repeat)
            rows.append(Timing(m, f"sparse n={n}", t))
    return rows
