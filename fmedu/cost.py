"""Cost: exact operation counts, and wall-clock timings with log-log slope fits.

Chapters 01 and 02 make their exact claims with the two counters, which are integers that
do not depend on the machine: :func:`matmul_flops` (the multiply-adds torch's flop counter
sees in matrix products) and :func:`elements_written` (how many tensor elements the
operations write, which also covers elementwise work and gathers). Timings
(:func:`best_time`, :func:`time_dense_forms`, :func:`time_sparse_form`) illustrate the
counts; they vary from machine to machine, so they are reported as slopes and ratios with
stated tolerances, never as limits. :func:`fit_loglog_slope` is shared by every cost figure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from .model import predict, predict_naive, predict_sparse
from .testing import random_fm

__all__ = [
    "matmul_flops",
    "elements_written",
    "best_time",
    "best_times",
    "fit_loglog_slope",
    "time_dense_forms",
    "time_sparse_form",
    "Timing",
]


def matmul_flops(fn, *args, **kwargs) -> int:
    """Floating-point operations torch counts for the matrix products inside ``fn(*args)``.

    torch's FlopCounterMode counts 2 per multiply-add of mm/addmm/bmm/matmul; elementwise
    work is not counted, which is what makes the count an exact integer.
    """
    with FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    return int(counter.get_total_flops())


class _ElementCounter(TorchDispatchMode):
    """Adds up the number of elements of every tensor that a non-view operation returns."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:  # views (unsqueeze, expand, transposes) write nothing
            self.total += sum(t.numel() for t in tree_leaves(out) if isinstance(t, torch.Tensor))
        return out


def elements_written(fn, *args, **kwargs) -> int:
    """Tensor elements written by the torch operations inside ``fn(*args)`` (views excluded).

    Every elementwise product, sum, gather and matrix product writes its output once, so
    this integer is a machine-independent measure of the work and memory traffic of ``fn``.
    Chapter 01 uses it to show that the sparse form's work depends on nnz and not on n.
    """
    with _ElementCounter() as counter:
        fn(*args, **kwargs)
    return counter.total


def best_times(fns: dict, *, repeat: int = 5, min_seconds: float = 0.02, clock=time.perf_counter) -> dict:
    """Seconds per call of each function in ``fns`` (a dict), best of ``repeat`` interleaved rounds.

    Each function's calls are first grouped until a group lasts ``min_seconds``; then every
    round times one group of each function in turn, so that a slow spell of the machine
    touches all of them alike instead of one size of a sweep. ``clock`` is wall-clock time by
    default; ``time.process_time`` measures the CPU time of this process instead, which does
    not count the time spent waiting for a busy CPU (the cost figures of chapters 01 and 02
    use it, with torch on one thread).
    """
    groups, best = {}, {}
    for key, fn in fns.items():
        fn()  # warm-up (allocations, lazy initialisation)
        calls = 1
        while True:
            start = clock()
            for _ in range(calls):
                fn()
            elapsed = clock() - start
            if elapsed >= min_seconds or calls >= 1 << 20:
                break
            calls *= 2
        groups[key], best[key] = calls, elapsed / calls
    for _ in range(repeat - 1):
        for key, fn in fns.items():
            start = clock()
            for _ in range(groups[key]):
                fn()
            best[key] = min(best[key], (clock() - start) / groups[key])
    return best


def best_time(fn, *, repeat: int = 5, min_seconds: float = 0.02, clock=time.perf_counter) -> float:
    """Seconds per call of ``fn``: :func:`best_times` for a single function."""
    return best_times({0: fn}, repeat=repeat, min_seconds=min_seconds, clock=clock)[0]


def fit_loglog_slope(sizes, seconds) -> float:
    """Least-squares slope of log(seconds) against log(size)."""
    slope, _ = np.polyfit(np.log(np.asarray(sizes, float)), np.log(np.asarray(seconds, float)), 1)
    return float(slope)


@dataclass
class Timing:
    size: int
    form: str
    seconds: float


def time_dense_forms(ns, *, k: int = 16, batch: int = 64, seed: int = 0, repeat: int = 5) -> list[Timing]:
    """CPU seconds per batch of the naive and Rendle forms for each n (dense real-valued x)."""
    fns = {}
    for n in ns:
        gen = torch.Generator().manual_seed(seed + n)
        w0, w, V = random_fm(n, k, gen, zero_bias=True)
        x = torch.randn(batch, n, dtype=torch.float64, generator=gen)
        for form, fn in (("naive", predict_naive), ("rendle", predict)):
            fns[(n, form)] = partial(fn, x, w0, w, V, check=False)
    seconds = best_times(fns, repeat=repeat, clock=time.process_time)
    return [Timing(n, form, t) for (n, form), t in seconds.items()]


def time_sparse_form(
    nnzs, *, ns=(10_000,), k: int = 16, batch: int = 256, seed: int = 0, repeat: int = 5
) -> list[Timing]:
    """CPU seconds per batch of the sparse form for each (n, nnz): the cost follows nnz, not n."""
    fns = {}
    for n in ns:
        gen = torch.Generator().manual_seed(seed + n)
        w0, w, V = random_fm(n, k, gen, zero_bias=True)
        for m in nnzs:
            # m distinct indices per sample: a random start plus m evenly spaced offsets (mod n)
            start = torch.randint(0, n, (batch, 1), generator=gen)
            idx = (start + torch.arange(m) * (n // m)) % n
            fns[(n, m)] = partial(predict_sparse, idx, w0, w, V, check=False)
    seconds = best_times(fns, repeat=repeat, clock=time.process_time)
    return [Timing(m, f"sparse n={n}", t) for (n, m), t in seconds.items()]
