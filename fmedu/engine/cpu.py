"""The engine's CPU backend: numba kernels, parallel over runs (chapter 07).

Each run walks its own shuffled samples one by one, exactly as the single-run algorithm
does; ``prange`` spreads the runs over the cores, dealt out in turn (:func:`run_schedule`).
The kernels are short loops over samples built from the shared pieces of
:mod:`fmedu.engine.rules` and :mod:`fmedu.engine.adam` (the same source the GPU kernels of
:mod:`fmedu.engine.cuda` call), with every column owned by the one CPU thread that trains the
run: (j0, dj) = (0, 1). Shapes and state arrays are those of :mod:`fmedu.engine.common`.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from typing import Any

import numba
import numpy as np
from numba import njit, prange, types
from numba.core import caching, cgutils
from numba.core import config as numba_config
from numba.extending import intrinsic

from ..prox import scalar
from ..validation import check_threads, env_threads
from . import adam, jit, rules
from .common import ADAGRAD, PROX, PROX_LIN, PROX_PUB, SGD, TrainerBase

__all__ = ["Trainer", "set_threads", "newton_z", "run_schedule"]


def _sources_digest() -> str:
    """sha256 of every source file the CPU kernels compile (this one and the shared pieces)."""
    return jit.sources_digest("engine/cpu.py")


class _EngineSourcesLocator(caching.UserProvidedCacheLocator):
    """numba's cache locator for this file's kernels, stamped with all the sources they compile.

    numba checks a cached kernel against its own file only; these kernels inline the pieces of
    :mod:`fmedu.engine.rules`, :mod:`fmedu.engine.adam` and :mod:`fmedu.prox.scalar`, so an
    edit there must invalidate them too.
    """

    @classmethod
    def from_function(cls, py_func, py_file):
        if os.path.realpath(py_file) != os.path.realpath(__file__):
            return None
        return super().from_function(py_func, py_file)

    def get_source_stamp(self):
        return _sources_digest()


if _EngineSourcesLocator not in caching.CacheImpl._locator_classes:
    caching.CacheImpl._locator_classes.insert(0, _EngineSourcesLocator)

_newton_z = njit(cache=True)(scalar.newton_z)

# The kernels allocate nothing, so they run without numba's reference counting (NRT): with it,
# every array that an inlined per-sample piece receives is atomically incref'ed and decref'ed
# inside the sample loops (measured: 4x slower Adam catch-ups). numpy's error model (a division
# by zero gives inf or nan, as on the GPU, instead of raising) lets the column loops vectorise.
_OPTIONS: dict[str, Any] = {"cache": True, "_nrt": False, "error_model": "numpy"}
_kernel = njit(**_OPTIONS)


@contextlib.contextmanager
def _slp_vectorised() -> Iterator[None]:
    """Compile with LLVM's SLP vectoriser on (numba's ``NUMBA_SLP_VECTORIZE``, off by default).

    The kernels know k + 1 at compile time, so LLVM unrolls every column loop completely; the
    loop vectoriser then has no loop left, and only the SLP vectoriser packs the unrolled
    columns into vector instructions. Packing independent columns performs the same IEEE
    operations on each, so the results are bit for bit those of scalar code (no reassociation,
    no contraction into fused multiply-adds: numba allows neither without ``fastmath``). The
    setting is restored afterwards; it matters only while a kernel compiles (a kernel loaded
    from numba's cache is already machine code).
    """
    before = numba_config.SLP_VECTORIZE  # type: ignore[attr-defined]  # set by numba at import
    numba_config.SLP_VECTORIZE = 1  # type: ignore[attr-defined]
    try:
        yield
    finally:
        numba_config.SLP_VECTORIZE = before  # type: ignore[attr-defined]


@intrinsic
def _stack_columns(typingctx, width):
    """A float64 scratch array of ``len(width)`` entries on the kernel's stack (``width``: a tuple
    of k + 1 zeros, so its length is a compile-time constant).

    Unlike a slice of a heap array, LLVM can prove that a stack buffer never aliases the
    parameters, so the column loops that write it while reading θ vectorise without run-time
    overlap checks, and a sample's column sums stay in registers.
    """
    count = len(width)
    array_type = types.Array(types.float64, 1, "C")

    def codegen(context, builder, signature, args):
        data = cgutils.alloca_once(builder, context.get_value_type(types.float64), size=count)
        array = context.make_array(array_type)(context, builder)
        itemsize = context.get_constant(types.intp, 8)
        shape = [context.get_constant(types.intp, count)]
        context.populate_array(array, data=data, shape=shape, strides=[itemsize], itemsize=itemsize, meminfo=None)
        return array._getvalue()

    return array_type(width), codegen


def newton_z(B: float, A: float, C: float, d: int, eta: float, y: float) -> float:
    """z* of the exact prox step from the sample scalars, as the compiled kernel computes it."""
    return float(_newton_z(float(B), float(A), float(C), float(d), float(eta), float(y), 100)[0])


def set_threads(threads: int | None = None) -> int:
    """Numba threads: ``threads``, else $FMEDU_THREADS, else all cores. Returns the number used.

    A count below 1, above numba's NUMBA_NUM_THREADS, or not an integer raises FMInputError.
    """
    maximum = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    if threads is None:
        threads = env_threads(maximum) or maximum
    threads = check_threads(threads, "threads", maximum)
    numba.set_num_threads(threads)
    return threads


@jit.cpu_inlined  # so that LLVM sees the stack buffers it fills
def _scalars(w0, theta, data, row, col_s, col_sq, K1):
    """(ŷ, y, d, B, A, C) of sample ``row``; fills the column sums (of the K1 = k + 1 columns)."""
    idx, nnz, y = data
    d = nnz[row]
    rules.column_sums(theta, idx, row, d, 0, K1, 1, col_s, col_sq)
    B, A, C = rules.sample_scalars(w0, col_s, col_sq)
    return B + 0.5 * (C - A), y[row], d, B, A, C


_COEFS = (0,) * (adam.SERIES_TERMS + 1)  # the length of Adam's gap coefficients, as a compile-time constant


@_kernel
def _prox_run(exact, eta, w0, theta, order, data, lam_w, lam_v, linearised, width):
    """One epoch of a prox run over ``order``; returns (summed pre-update loss, w0).

    ``width``: a tuple of K1 = k + 1 zeros; its length is part of its type, so K1 is a
    compile-time constant (one compiled kernel per k) and every column loop has a known trip
    count (see :func:`_slp_vectorised`).
    """
    idx, K1 = data[0], len(width)
    col_s, col_sq = _stack_columns(width), _stack_columns(width)
    total = 0.0
    for pos in range(order.shape[0]):
        row = order[pos]
        y_hat, y, d, B, A, C = _scalars(w0, theta, data, row, col_s, col_sq, K1)
        total += scalar.softplus_neg(y * y_hat)
        beta, c, inv_E, rho = rules.prox_step_coefficients(B, A, C, d, eta, y, w0, col_s[0], lam_w, lam_v, linearised)
        w0 += beta
        rules.prox_columns(theta, idx, row, d, 0, K1, 1, col_s, beta, c, inv_E, exact, rho)
    return total, w0


@_kernel
def _sgd_run(eta, w0, theta, order, data, lam_w, lam_v, width):
    """One epoch of an SGD run; returns (summed pre-update loss, w0)."""
    idx, K1 = data[0], len(width)
    col_s, col_sq = _stack_columns(width), _stack_columns(width)
    total = 0.0
    for pos in range(order.shape[0]):
        row = order[pos]
        y_hat, y, d, _, _, _ = _scalars(w0, theta, data, row, col_s, col_sq, K1)
        loss, dl = rules.logistic_loss_slope(y, y_hat)
        total += loss
        w0 = rules.sgd_update(w0, dl, eta)
        rules.sgd_columns(theta, idx, row, d, 0, K1, 1, col_s, dl, eta, lam_w, lam_v)
    return total, w0


@_kernel
def _adagrad_run(eta, w0, sum_w0, theta, sum_theta, order, data, lam_w, lam_v, width):
    """One epoch of an Adagrad run; returns (summed pre-update loss, w0, w0's state_sum)."""
    idx, K1 = data[0], len(width)
    col_s, col_sq = _stack_columns(width), _stack_columns(width)
    total = 0.0
    for pos in range(order.shape[0]):
        row = order[pos]
        y_hat, y, d, _, _, _ = _scalars(w0, theta, data, row, col_s, col_sq, K1)
        loss, dl = rules.logistic_loss_slope(y, y_hat)
        total += loss
        w0, sum_w0 = rules.adagrad_update(w0, sum_w0, dl, eta)
        rules.adagrad_columns(theta, sum_theta, idx, row, d, 0, K1, 1, col_s, dl, eta, lam_w, lam_v)
    return total, w0, sum_w0


@njit(inline="always", **_OPTIONS)
def _adam_sample(
    eta, w0, m0, v0, theta, exp_avg, exp_avg_sq, last_step, t, row, data, tables, scratch, factors, K1, lams
):
    """Adam step t on sample ``row``, its rows caught up first; returns (pre-update loss, w0, m, v of w0).

    ``factors`` = (lr / c1(t), √c2(t)); inlined into both loops of :func:`_adam_run`, so that
    where they are the constants (η, 1.0) the compiler drops the division by √c2.
    """
    idx, nnz = data[0], data[1]
    col_s, col_sq, coef = scratch
    step_size, c2_sqrt = factors
    rules.adam_catch_up_rows(
        theta, exp_avg, exp_avg_sq, last_step, idx, row, nnz[row], t - 1, eta, 0, K1, 1, tables, coef
    )
    y_hat, y, d, _, _, _ = _scalars(w0, theta, data, row, col_s, col_sq, K1)
    loss, dl = rules.logistic_loss_slope(y, y_hat)
    w0, m0, v0 = adam.adam_update(w0, m0, v0, dl, step_size, c2_sqrt)
    rules.adam_columns(
        theta, exp_avg, exp_avg_sq, last_step, idx, row, d, 0, K1, 1, col_s, dl, step_size, c2_sqrt, t, lams[0], lams[1]
    )
    return loss, w0, m0, v0


@_kernel
def _adam_run(eta, w0, m0, v0, theta, exp_avg, exp_avg_sq, last_step, t_start, order, data, tables, width, lams):
    """One epoch of an Adam run from step ``t_start``, rows caught up lazily; returns (loss, w0, m, v of w0).

    Steps before ``adam.T_BC`` carry torch's bias corrections; from it on they are exactly 1.0,
    and a second loop takes (η, 1.0) as constants. ``width`` as in :func:`_prox_run`.
    """
    K1 = len(width)
    scratch = (_stack_columns(width), _stack_columns(width), _stack_columns(_COEFS))
    total = 0.0
    steps = order.shape[0]
    early = min(max(tables[0].shape[0] - 1 - t_start - 1, 0), steps)  # steps t < T_BC
    for pos in range(early):
        t = t_start + pos + 1
        factors = adam.step_factors(t, eta, tables)
        loss, w0, m0, v0 = _adam_sample(
            eta, w0, m0, v0, theta, exp_avg, exp_avg_sq, last_step, t, order[pos], data, tables, scratch, factors, K1,
            lams,
        )  # fmt: skip
        total += loss
    for pos in range(early, steps):
        loss, w0, m0, v0 = _adam_sample(
            eta, w0, m0, v0, theta, exp_avg, exp_avg_sq, last_step, t_start + pos + 1, order[pos], data, tables,
            scratch, (eta, 1.0), K1, lams,
        )  # fmt: skip
        total += loss
    t_end = t_start + steps
    rules.adam_flush_columns(theta, exp_avg, exp_avg_sq, last_step, t_end, eta, 0, K1, 1, tables, scratch[2])
    last_step[:] = t_end
    return total, w0, m0, v0


@_kernel
def _train_run(r, runs, order, t_start, params, adagrad, adam_state, data, tables, width):
    """Run r's epoch by its method; updates its parameters and state in place, returns the summed loss."""
    methods, etas, slots, lams = runs
    w0, theta = params
    method, eta, s = methods[r], etas[r], slots[r]
    lam_w, lam_v = lams[r, 0], lams[r, 1]
    if method == PROX or method == PROX_PUB or method == PROX_LIN:
        total, w0[r] = _prox_run(
            method != PROX_PUB, eta, w0[r], theta[r], order, data, lam_w, lam_v, method == PROX_LIN, width
        )
    elif method == SGD:
        total, w0[r] = _sgd_run(eta, w0[r], theta[r], order, data, lam_w, lam_v, width)
    elif method == ADAGRAD:
        sum_w0, sum_theta = adagrad
        total, w0[r], sum_w0[s] = _adagrad_run(
            eta, w0[r], sum_w0[s], theta[r], sum_theta[s], order, data, lam_w, lam_v, width
        )
    else:
        m0, v0, exp_avg, exp_avg_sq, last_step = adam_state
        total, w0[r], m0[s], v0[s] = _adam_run(
            eta, w0[r], m0[s], v0[s], theta[r], exp_avg[s], exp_avg_sq[s], last_step[s], t_start, order, data,
            tables, width, (lam_w, lam_v),
        )  # fmt: skip
    return total


@_kernel
def _held_out_loss(w0, theta, data, width):
    """Mean logistic loss of one run over the held-out samples ``data`` = (idx, nnz, y), copied
    contiguous in row order (NaN for none)."""
    count = data[1].shape[0]
    if count == 0:
        return math.nan
    col_s, col_sq = _stack_columns(width), _stack_columns(width)
    total = 0.0
    for row in range(count):
        y_hat, y, _, _, _, _ = _scalars(w0, theta, data, row, col_s, col_sq, len(width))
        total += scalar.softplus_neg(y * y_hat)
    return total / count


@_kernel
def _v_rms(theta, width):
    """RMS norm of the latent rows: √(Σ_i ‖v_i‖² / n)."""
    col_sq = _stack_columns(width)
    rules.column_squares(theta, 0, len(width), 1, col_sq)
    acc = 0.0
    for j in range(1, len(width)):
        acc += col_sq[j]
    return math.sqrt(acc / theta.shape[0])


@njit(parallel=True, **_OPTIONS)
def _epoch_kernel(
    runs, visits, order_of_run, schedule, t_start, params, adagrad, adam_state, held_out, tables, out, width
):  # fmt: skip
    """One epoch of every run, then its held-out losses: ``out[r]`` = (train, val, test loss, RMS norm).

    The threads take the runs in the order ``schedule`` (a permutation, :func:`run_schedule`):
    ``prange`` hands each thread one contiguous block of it.

    ``visits`` = (idx, nnz, y, steps): each shuffle's samples copied in the order the runs visit
    them (``(S, N_train, m)``, ``(S, N_train)``, ``(S, N_train)``) and ``steps`` = 0, 1, ..., so
    that a run reads its samples' data sequentially (from a shuffled order, each sample's index
    row, count and label were three cache misses: about half the time of an SGD step).
    ``held_out`` = (idx, nnz, y) of the validation samples, then of the test samples, each
    copied contiguous once. ``width``: a tuple of K1 = k + 1 zeros (see :func:`_prox_run`);
    each run's scratch (column sums, Adam's coefficients) lives on its thread's stack.
    """
    w0, theta = params
    visit_idx, visit_nnz, visit_y, steps = visits
    for q in prange(theta.shape[0]):
        r = schedule[q]
        s = order_of_run[r]
        visited = (visit_idx[s], visit_nnz[s], visit_y[s])
        total = _train_run(r, runs, steps, t_start, params, adagrad, adam_state, visited, tables, width)
        out[r, 0] = total / steps.shape[0]
        val = (held_out[0], held_out[1], held_out[2])
        test = (held_out[3], held_out[4], held_out[5])
        out[r, 1] = _held_out_loss(w0[r], theta[r], val, width)
        out[r, 2] = _held_out_loss(w0[r], theta[r], test, width)
        out[r, 3] = _v_rms(theta[r], width)


def run_schedule(R: int, threads: int) -> np.ndarray:
    """The order ``(R,)`` in which the threads take the runs: run r goes to thread r mod ``threads``.

    ``prange`` splits its range into one contiguous block per thread, and a sweep lists its runs
    step size by step size, the costlier large steps last; taken in that order one thread would
    get the small steps and the other the large ones. Dealt out in turn, each thread gets a share
    of every step size. A run's arithmetic does not depend on its thread.
    """
    T = max(1, min(threads, R))
    return np.concatenate([np.arange(t, R, T, dtype=np.int64) for t in range(T)])


@njit(parallel=True, **_OPTIONS)
def _gather_visits(orders, idx, nnz, y, visit_idx, visit_nnz, visit_y):
    """Each shuffle's samples in visiting order: ``visit_*[s, pos]`` = sample ``orders[s, pos]``.

    Whole index rows are copied (a loop of fixed length: a branch on each sample's nnz would be
    mispredicted and stall the independent loads); the buffers are the trainer's own, reused
    every epoch.
    """
    S, N = orders.shape
    m = idx.shape[1]
    for s in range(S):
        for pos in prange(N):
            row = orders[s, pos]
            visit_nnz[s, pos] = nnz[row]
            visit_y[s, pos] = y[row]
            for a in range(m):
                visit_idx[s, pos, a] = idx[row, a]


class Trainer(TrainerBase):
    """R runs trained together on the CPU; ``epoch()`` advances all of them by one epoch.

    Arguments as :class:`fmedu.engine.common.TrainerBase`. Parameters and optimiser state stay
    in the numpy arrays of the base class; after every epoch each Adam row has been caught up,
    so the parameters are those of dense ``torch.optim.Adam``.
    """

    def _epoch(self, orders, order_of_run, t_start: int):
        R, K1 = len(self.runs), self.k + 1
        out = np.zeros((R, 4))
        # each shuffle's samples in visiting order (one gather per distinct seed, shared by its runs)
        S, N = orders.shape
        # int32 feature indices where they fit: half the bytes a run reads per sample
        index_type = np.int32 if self.n < 2**31 else np.int64
        visits: tuple[np.ndarray, ...] | None = getattr(self, "_visits", None)
        if visits is None or visits[1].shape != (S, N):
            visits = (
                np.zeros((S, N, self.idx.shape[1]), dtype=index_type),
                np.zeros((S, N), dtype=np.int64),
                np.zeros((S, N), dtype=np.float64),
                np.arange(N, dtype=np.int64),
            )
            self._visits = visits
        _gather_visits(orders, self.idx, self.nnz, self.y, visits[0], visits[1], visits[2])
        held_out = getattr(self, "_held_out", None)
        if held_out is None:  # the validation and test samples, copied contiguous once
            held_out = tuple(
                part
                for rows in (self.val_rows, self.test_rows)
                for part in (self.idx[rows].astype(index_type), self.nnz[rows], self.y[rows])
            )
            self._held_out = held_out
        with _slp_vectorised():  # while the kernel compiles, if it does
            _epoch_kernel(
                (self.methods, self.epoch_etas(), self.slots, self.lams),
                visits,
                order_of_run,
                run_schedule(R, numba.get_num_threads()),
                t_start,
                (self.w0, self.theta),
                self.adagrad,
                self.adam,
                held_out,
                adam.tables(),
                out,
                (0,) * K1,
            )
        return out, self.w0.copy()

    def _params_of(self, r: int) -> tuple[float, np.ndarray, np.ndarray]:
        return float(self.w0[r]), self.theta[r, :, 0].copy(), self.theta[r, :, 1:].copy()
