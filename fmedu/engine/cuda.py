"""The engine's GPU backend: numba-cuda kernels, one launch per epoch (chapter 07).

One thread block, a single warp, per run walks that run's own shuffled samples in order. Lane
``j`` owns column j of every parameter row (w and the k latent columns; with fewer lanes than
columns, lane j owns j, j + lanes, ...), so a touched row's values and its optimiser state stay
in one lane and never cross lanes. A sample's feature indices arrive in one coalesced load (lane
a reads the a-th) and reach every lane by shuffles (:func:`_touched`); the next sample's indices
and label are loaded before the current sample is worked on (:func:`_fetch`), so that those
loads are in flight meanwhile. When each lane owns at most one column (k + 1 ≤ lanes) and the
sample's rows fit (d ≤ ``D_REG``, d ≤ lanes; :func:`_held`), the lane loads its column of every
row, then every row's optimiser state, into registers before using any (:func:`_gather`: an
unrolled loop, so the loads are in flight together), and the update reuses those values;
otherwise it reads row by row. Per sample each lane sums its own columns over the sample's rows,
and the sample scalars (B, A, C) are reduced by warp shuffles: every
lane reads column j's sums from their owner, j = 1..k in order, and adds them in the CPU
engine's order, so the simulator reproduces the CPU's floats; no shared memory and no barrier
on the per-sample path (hence at most 32 lanes per run). Each lane then takes the same scalar
decisions (a prox run's Newton solve for z* runs in every lane and stops on its own, run by
run) and updates its own columns. Wide launches follow the epoch's: Adam's end-of-epoch
catch-up of every row, one thread per run and row (:func:`_adam_flush_kernel`); each run's RMS
latent norm (:func:`_v_rms_kernel`); the held-out losses, one thread per run and held-out row
(:func:`_held_out_kernel`), each run's mean then summed in row order (:func:`_mean_kernel`), as
the CPU sums it. Parameters and state stay on the GPU across epochs and only the per-run records
come back. Feature indices, sample and row numbers are 32-bit on the device (the host checks
that they fit).

The per-sample mathematics is :mod:`fmedu.engine.rules` and :mod:`fmedu.engine.adam`, the
source the CPU kernels compile. numba-cuda's simulator (``NUMBA_ENABLE_CUDASIM=1``) runs these
kernels unchanged on a CPU, which is how they are tested without a GPU; it has no warp
intrinsics, so under it ``_shfl`` and ``_syncwarp`` are stand-ins made of the block's shared
memory and barriers (the kernel source is the same). Importing this module needs numba-cuda
(``pip install -e '.[cuda]'``); running it needs a GPU or the simulator.
"""

from __future__ import annotations

import math
import os
import types

import numba
import numpy as np
from numba import cuda

from ..errors import FMInputError
from ..prox import scalar
from . import adam, jit, rules
from .common import ADAGRAD, ADAM, PROX, PROX_LIN, PROX_PUB, SGD, TrainerBase

if getattr(cuda, "implementation", None) != "NVIDIA":  # numba's own, deprecated CUDA target
    raise FMInputError("device='cuda' needs numba-cuda: install the GPU extra with pip install -e '.[cuda]'")

if not numba.config.ENABLE_CUDASIM:  # type: ignore[attr-defined]  # the simulator calls the Python functions
    jit.register_for_gpu()  # the shared pieces as device functions (fmedu.engine.jit)
    from numba.cuda.core import caching as _caching

    class _EngineSourcesLocator(_caching._UserProvidedCacheLocator):
        """numba-cuda's cache locator for the epoch kernel, stamped with every source it compiles.

        The compiled kernel is kept on disk (numba's cache folder, see :mod:`fmedu.cache`) so that
        a new process loads it instead of compiling it again; numba-cuda checks a cached kernel
        against this file only, so the stamp is :func:`fmedu.engine.jit.sources_digest`, which an
        edit to any of the shared pieces changes too.
        """

        @classmethod
        def from_function(cls, py_func, py_file):
            if os.path.realpath(py_file) != os.path.realpath(__file__):
                return None
            return super().from_function(py_func, py_file)

        def get_source_stamp(self):
            return jit.sources_digest("engine/cuda.py")

    if _EngineSourcesLocator not in _caching.CacheImpl._locator_classes:
        _caching.CacheImpl._locator_classes.insert(0, _EngineSourcesLocator)

__all__ = [
    "CudaTrainer",
    "K1_MAX",
    "LANES_MAX",
    "gpu_available",
    "simulator",
    "device_info",
    "kernel_signatures",
    "KERNELS",
    "compile_ptx",
    "assemble",
]

K1_MAX = 64  # columns per row the lanes' local buffers hold: k ≤ 63 on the GPU
_WIDE = 128  # threads per block of the held-out and mean kernels
COEFS = adam.SERIES_TERMS + 1
D_REG = 12  # a sample's rows (d ≤ 12; MovieLens has 11) held in registers when each lane owns one column


def simulator() -> bool:
    """True when numba-cuda runs its CPU simulator (``NUMBA_ENABLE_CUDASIM=1``) instead of a GPU."""
    return bool(numba.config.ENABLE_CUDASIM)  # type: ignore[attr-defined]  # set at run time


def gpu_available() -> bool:
    """True when a real CUDA GPU is usable (the simulator does not count)."""
    return not simulator() and cuda.is_available()


def device_info() -> dict:
    """The GPU's name and compute capability for provenance (``"simulator"`` under the simulator)."""
    if simulator():
        return {"gpu": "numba-cuda simulator (NUMBA_ENABLE_CUDASIM=1, runs on the CPU)"}
    device = cuda.get_current_device()
    name = device.name.decode() if isinstance(device.name, bytes) else str(device.name)
    return {"gpu": name, "compute_capability": list(device.compute_capability)}


LANES_MAX = 32  # one warp per run: the per-sample reduction is a warp shuffle


if numba.config.ENABLE_CUDASIM:  # type: ignore[attr-defined]  # the simulator has no warp intrinsics
    import threading

    _lane = threading.local()  # the simulator runs each lane as a thread of its own

    def _boards():
        """This lane's handles on its block's exchange boards, fetched once per lane (the
        simulator finds a block's shared array by inspecting the call stack, a slow step).

        The simulator's ``cuda.shared.array`` looks a board up in its table and, when missing,
        creates and stores one without a lock: two lanes asking at once can each get a board of
        their own, and their exchanges then read garbage (an intermittent failure, seen in CI).
        So every lane asks, the lanes meet, and every lane asks again, now finding the one board
        that stayed. Every lane makes its first exchange at the same point, so the barriers
        match."""
        if not hasattr(_lane, "parity"):
            for _ in range(2):
                _lane.f = cuda.shared.array((2, LANES_MAX), numba.float64)
                _lane.i = cuda.shared.array((2, LANES_MAX), numba.int32)
                cuda.syncthreads()
            _lane.parity = 0
        return _lane

    def _shfl(mask, value, src):
        """The simulator's stand-in for ``cuda.shfl_sync``: lane ``src``'s ``value``. Every lane
        writes its own to one half of a shared board, meets the others at a barrier (the block
        is one warp) and reads. Successive exchanges (of either board) alternate halves, so one
        barrier per exchange suffices: a lane writes a half again only after the next
        exchange's barrier, which every lane reaches after its read of this one."""
        lane = _boards()
        half = lane.parity
        lane.parity = 1 - half
        lane.f[half, cuda.threadIdx.x] = value
        cuda.syncthreads()  # (the block is one warp)
        return lane.f[half, src]

    def _shfl_i(mask, value, src):
        """:func:`_shfl` for a 32-bit integer (a feature index)."""
        lane = _boards()
        half = lane.parity
        lane.parity = 1 - half
        lane.i[half, cuda.threadIdx.x] = value
        cuda.syncthreads()
        return lane.i[half, src]

    def _syncwarp(mask):
        """The simulator's stand-in for ``cuda.syncwarp``: a barrier of the block (one warp)."""
        cuda.syncthreads()

else:

    @cuda.jit(device=True)
    def _shfl(mask, value, src):
        """Lane ``src``'s ``value`` in every lane of ``mask`` (a register exchange, no memory)."""
        return cuda.shfl_sync(mask, value, src)

    @cuda.jit(device=True)
    def _shfl_i(mask, value, src):
        """Lane ``src``'s 32-bit integer ``value`` in every lane of ``mask``."""
        return cuda.shfl_sync(mask, value, src)

    @cuda.jit(device=True)
    def _syncwarp(mask):
        """The lanes of ``mask`` meet; their memory writes before it are seen after it."""
        cuda.syncwarp(mask)


@cuda.jit(device=True)
def _warp_scalars(w0, col_s, col_sq, K1, lanes, mask):
    """The sample scalars (B, A, C) and Σ w_i from the lanes' owned column sums, in every lane.

    Column j's sums live in lane j mod ``lanes``; every lane reads them by a shuffle from that
    lane, column by column in order, and adds them as :func:`fmedu.engine.rules.sample_scalars`
    does on the CPU (A = Σ_j col_sq[j], C = Σ_j col_s[j]² over j = 1..k in order,
    B = w0 + col_s[0]), so every lane holds the CPU's floats.
    """
    w_sum = _shfl(mask, col_s[0], 0)
    A = 0.0
    C = 0.0
    for j in range(1, K1):
        src = j % lanes
        s_j = _shfl(mask, col_s[j], src)
        A += _shfl(mask, col_sq[j], src)
        C += s_j * s_j
    return w0 + w_sum, A, C, w_sum


@cuda.jit(device=True)
def _fetch(order, pos, data, lane):
    """Sample ``order[pos]``'s (row, d, y, i_lane): lane a holds the sample's a-th feature index
    (a < d; lane 0's index in the lanes beyond d), so that the whole index row arrives in one
    coalesced load and each lane's copy comes by a shuffle (:func:`_touched`). The kernels fetch
    the next sample before working on the current one, so that these loads are in flight while
    it computes (only indices and labels: θ may change before the next sample)."""
    idx, nnz, y = data
    row = order[pos]
    d = nnz[row]
    return row, d, y[row], idx[row, lane if lane < d else 0]


@cuda.jit(device=True)
def _touched(idx, row, a, i_lane, lanes, mask):
    """The sample's a-th feature index in every lane: a shuffle from lane a (a < lanes; a is the
    same in every lane, so every lane takes the same branch), else a load."""
    if a < lanes:
        return _shfl_i(mask, i_lane, a)
    return idx[row, a]


@cuda.jit(device=True)
def _sample(w0, theta, idx, sample, lane, lanes, mask, col_s, col_sq):
    """The sample's scalars in every lane: the lane's owned column sums (its own ``col_s``,
    ``col_sq``) over the rows in order (:func:`fmedu.engine.rules.add_row`, the pieces of
    :func:`fmedu.engine.rules.column_sums`), then one warp-shuffle reduction (no shared memory,
    no barrier). ``sample`` is :func:`_fetch`'s tuple."""
    row, d, y, i_lane = sample
    K1 = theta.shape[1]
    rules.clear_columns(lane, K1, lanes, col_s, col_sq)
    for a in range(d):
        rules.add_row(theta[_touched(idx, row, a, i_lane, lanes, mask)], lane, K1, lanes, col_s, col_sq)
    B, A, C, w_sum = _warp_scalars(w0, col_s, col_sq, K1, lanes, mask)
    return B + 0.5 * (C - A), B, A, C, w_sum


@cuda.jit(device=True)
def _held(K1, lanes, d):
    """Whether a sample takes the registers path: each lane owns at most one column (K1 ≤ lanes)
    and the sample's d rows fit the registers and the lanes (d ≤ D_REG, d ≤ lanes). The same in
    every lane."""
    return K1 <= lanes and d <= D_REG and d <= lanes


@cuda.jit(device=True)
def _gather(theta, sample, lane, mask, rows, vals):
    """``rows[a]``, ``vals[a]`` = the sample's a-th feature index and θ[i_a, lane] for a < d: the
    loop has a constant trip count, so it is unrolled and every shuffle and load is issued
    before any value is used (the arrays become registers). Lanes beyond the columns read w."""
    row, d, y, i_lane = sample
    j = lane if lane < theta.shape[1] else 0
    for a in range(D_REG):
        if a < d:
            i = _shfl_i(mask, i_lane, a)
            rows[a] = i
            vals[a] = theta[i, j]


@cuda.jit(device=True)
def _held_sums(vals, d):
    """The lane's column sums (Σ θ, Σ θ²) over the held rows in order, as
    :func:`fmedu.engine.rules.add_row` adds them."""
    s = 0.0
    sq = 0.0
    for a in range(D_REG):
        if a < d:
            s, sq = rules.add_value(s, sq, vals[a])
    return s, sq


@cuda.jit(device=True)
def _warp_owned_scalars(w0, s, sq, K1, mask):
    """:func:`_warp_scalars` when lane j holds column j's sums ``s``, ``sq`` in registers."""
    w_sum = _shfl(mask, s, 0)
    A = 0.0
    C = 0.0
    for j in range(1, K1):
        s_j = _shfl(mask, s, j)
        A += _shfl(mask, sq, j)
        C += s_j * s_j
    return w0 + w_sum, A, C, w_sum


@cuda.jit(device=True)
def _scalars(w0, theta, idx, sample, held, lane, lanes, mask, col_s, col_sq, rows, vals):
    """(ŷ, B, A, C, Σ w_i, s) of the sample in every lane, s being the lane's own column sum when
    ``held`` (:func:`_gather`, :func:`_held_sums`, :func:`_warp_owned_scalars`); otherwise the
    sums are in ``col_s``, ``col_sq`` (:func:`_sample`). The floats are the same either way."""
    if held:
        _gather(theta, sample, lane, mask, rows, vals)
        s, sq = _held_sums(vals, sample[1])
        B, A, C, w_sum = _warp_owned_scalars(w0, s, sq, theta.shape[1], mask)
        return B + 0.5 * (C - A), B, A, C, w_sum, s
    y_hat, B, A, C, w_sum = _sample(w0, theta, idx, sample, lane, lanes, mask, col_s, col_sq)
    return y_hat, B, A, C, w_sum, 0.0


@cuda.jit(device=True)
def _next(order, pos, data, lane, sample):
    """:func:`_fetch` of position pos + 1 while there is one (else ``sample`` again)."""
    if pos + 1 < order.shape[0]:
        return _fetch(order, pos + 1, data, lane)
    return sample


@cuda.jit(device=True)
def _prox_run(exact, eta, w0, theta, order, data, lane, lanes, mask, col_s, col_sq, lam_w, lam_v, linearised):
    """One epoch of a prox run (see :func:`fmedu.engine.cpu._prox_run`); returns (loss sum, w0)."""
    idx, K1 = data[0], theta.shape[1]
    total = 0.0
    rows = cuda.local.array(D_REG, numba.int32)  # the registers path (_held): the rows and their values
    vals = cuda.local.array(D_REG, numba.float64)
    upcoming = _fetch(order, 0, data, lane)
    for pos in range(order.shape[0]):
        sample = upcoming
        upcoming = _next(order, pos, data, lane, sample)
        row, d, y, i_lane = sample
        held = _held(K1, lanes, d)
        y_hat, B, A, C, w_sum, s = _scalars(w0, theta, idx, sample, held, lane, lanes, mask, col_s, col_sq, rows, vals)
        total += scalar.softplus_neg(y * y_hat)
        beta, c, inv_E, rho = rules.prox_step_coefficients(B, A, C, d, eta, y, w0, w_sum, lam_w, lam_v, linearised)
        w0 += beta
        if held:
            for a in range(D_REG):  # unrolled; the rows' values are already in registers
                if a < d and lane < K1:
                    if lane == 0:
                        theta[rows[a], 0] = rules.prox_w(vals[a], beta, rho)
                    elif exact:
                        theta[rows[a], lane] = rules.prox_v(vals[a], s, c, inv_E)
        else:
            for a in range(d):
                theta_i = theta[_touched(idx, row, a, i_lane, lanes, mask)]
                rules.prox_row(theta_i, lane, K1, lanes, col_s, beta, c, inv_E, exact, rho)
    return total, w0


@cuda.jit(device=True)
def _sgd_run(eta, w0, theta, order, data, lane, lanes, mask, col_s, col_sq, lam_w, lam_v):
    """One epoch of an SGD run; returns (loss sum, w0)."""
    idx, K1 = data[0], theta.shape[1]
    total = 0.0
    rows = cuda.local.array(D_REG, numba.int32)  # the registers path (_held): the rows and their values
    vals = cuda.local.array(D_REG, numba.float64)
    upcoming = _fetch(order, 0, data, lane)
    for pos in range(order.shape[0]):
        sample = upcoming
        upcoming = _next(order, pos, data, lane, sample)
        row, d, y, i_lane = sample
        held = _held(K1, lanes, d)
        y_hat, _, _, _, _, s = _scalars(w0, theta, idx, sample, held, lane, lanes, mask, col_s, col_sq, rows, vals)
        total += scalar.softplus_neg(y * y_hat)
        dl = rules.logistic_slope(y, y_hat)
        w0 = rules.sgd_update(w0, dl, eta)
        if held:
            for a in range(D_REG):  # unrolled; the rows' values are already in registers
                if a < d and lane < K1:
                    p = vals[a]
                    g = rules.w_gradient(dl, p, lam_w) if lane == 0 else rules.v_gradient(dl, s, p, lam_v)
                    theta[rows[a], lane] = rules.sgd_update(p, g, eta)
        else:
            for a in range(d):
                theta_i = theta[_touched(idx, row, a, i_lane, lanes, mask)]
                rules.sgd_row(theta_i, lane, K1, lanes, col_s, dl, eta, lam_w, lam_v)
    return total, w0


@cuda.jit(device=True)
def _adagrad_run(eta, w0, sum_w0, theta, sum_theta, order, data, lane, lanes, mask, col_s, col_sq, lam_w, lam_v):
    """One epoch of an Adagrad run; returns (loss sum, w0, w0's state_sum)."""
    idx, K1 = data[0], theta.shape[1]
    total = 0.0
    rows = cuda.local.array(D_REG, numba.int32)  # the registers path (_held): the rows and their values
    vals = cuda.local.array(D_REG, numba.float64)
    accs = cuda.local.array(D_REG, numba.float64)
    upcoming = _fetch(order, 0, data, lane)
    for pos in range(order.shape[0]):
        sample = upcoming
        upcoming = _next(order, pos, data, lane, sample)
        row, d, y, i_lane = sample
        held = _held(K1, lanes, d)
        y_hat, _, _, _, _, s = _scalars(w0, theta, idx, sample, held, lane, lanes, mask, col_s, col_sq, rows, vals)
        total += scalar.softplus_neg(y * y_hat)
        dl = rules.logistic_slope(y, y_hat)
        w0, sum_w0 = rules.adagrad_update(w0, sum_w0, dl, eta)
        if held:
            j = lane if lane < K1 else 0
            for a in range(D_REG):  # every row's state loaded before the first update
                if a < d:
                    accs[a] = sum_theta[rows[a], j]
            for a in range(D_REG):
                if a < d and lane < K1:
                    p = vals[a]
                    g = rules.w_gradient(dl, p, lam_w) if lane == 0 else rules.v_gradient(dl, s, p, lam_v)
                    theta[rows[a], lane], sum_theta[rows[a], lane] = rules.adagrad_update(p, accs[a], g, eta)
        else:
            for a in range(d):
                i = _touched(idx, row, a, i_lane, lanes, mask)
                rules.adagrad_row(theta[i], sum_theta[i], lane, K1, lanes, col_s, dl, eta, lam_w, lam_v)
    return total, w0, sum_w0


@cuda.jit(device=True)
def _adam_run(
    eta, w0, m0, v0, theta, exp_avg, exp_avg_sq, last_step, t_start, order, data, tables, lane, lanes, mask, col_s,
    col_sq, lam_w, lam_v,
):  # fmt: skip
    """One epoch of an Adam run from step ``t_start``, its touched rows caught up lazily; returns
    (loss, w0, m, v). Every row is caught up to the epoch's end by :func:`_adam_flush_kernel`."""
    idx, K1 = data[0], theta.shape[1]
    coef = cuda.local.array(COEFS, numba.float64)
    total = 0.0
    rows = cuda.local.array(D_REG, numba.int32)  # the registers path (_held): the rows and their values
    vals = cuda.local.array(D_REG, numba.float64)
    ms = cuda.local.array(D_REG, numba.float64)
    vs = cuda.local.array(D_REG, numba.float64)
    upcoming = _fetch(order, 0, data, lane)
    for pos in range(order.shape[0]):
        sample = upcoming
        upcoming = _next(order, pos, data, lane, sample)
        row, d, y, i_lane = sample
        t = t_start + pos + 1
        # the lanes meet: a row's last_step (every lane writes the same value below) is seen by
        # all before any catches that row up again
        _syncwarp(mask)
        for a in range(d):  # rules.adam_catch_up_rows, with the sample's indices from the lanes
            i = _touched(idx, row, a, i_lane, lanes, mask)
            t0 = last_step[i]
            if t0 < t - 1:
                rules.adam_catch_up_row(theta, exp_avg, exp_avg_sq, i, t0, t - 1, eta, lane, K1, lanes, tables, coef)
        held = _held(K1, lanes, d)
        y_hat, _, _, _, _, s = _scalars(w0, theta, idx, sample, held, lane, lanes, mask, col_s, col_sq, rows, vals)
        total += scalar.softplus_neg(y * y_hat)
        dl = rules.logistic_slope(y, y_hat)
        step_size, c2_sqrt = adam.step_factors(t, eta, tables)
        w0, m0, v0 = adam.adam_update(w0, m0, v0, dl, step_size, c2_sqrt)
        if held:
            j = lane if lane < K1 else 0
            for a in range(D_REG):  # every row's moments loaded before the first update
                if a < d:
                    ms[a] = exp_avg[rows[a], j]
                    vs[a] = exp_avg_sq[rows[a], j]
            for a in range(D_REG):
                if a < d:
                    if lane < K1:
                        p = vals[a]
                        g = rules.w_gradient(dl, p, lam_w) if lane == 0 else rules.v_gradient(dl, s, p, lam_v)
                        i = rows[a]
                        theta[i, lane], exp_avg[i, lane], exp_avg_sq[i, lane] = adam.adam_update(
                            p, ms[a], vs[a], g, step_size, c2_sqrt
                        )
                    last_step[rows[a]] = t  # every lane writes the same value
        else:
            for a in range(d):  # rules.adam_columns, likewise
                i = _touched(idx, row, a, i_lane, lanes, mask)
                rules.adam_row(
                    theta[i], exp_avg[i], exp_avg_sq[i], lane, K1, lanes, col_s, dl, step_size, c2_sqrt, lam_w, lam_v
                )
                last_step[i] = t  # every lane writes the same value
    return total, w0, m0, v0


@cuda.jit(device=True)
def _train_run(r, runs, order, t_start, params, adagrad, adam_state, data, tables, lane, lanes, mask, col_s, col_sq):
    """Run r's epoch by its method (the same in every lane of the block); returns the loss sum."""
    methods, etas, slots, lams = runs
    w0, theta = params
    method, eta, s = methods[r], etas[r], slots[r]
    lam_w, lam_v = lams[r, 0], lams[r, 1]
    if method == PROX or method == PROX_PUB or method == PROX_LIN:
        total, w = _prox_run(
            method != PROX_PUB, eta, w0[r], theta[r], order, data, lane, lanes, mask, col_s, col_sq, lam_w, lam_v,
            method == PROX_LIN,
        )  # fmt: skip
    elif method == SGD:
        total, w = _sgd_run(eta, w0[r], theta[r], order, data, lane, lanes, mask, col_s, col_sq, lam_w, lam_v)
    elif method == ADAGRAD:
        sum_w0, sum_theta = adagrad
        total, w, acc = _adagrad_run(
            eta, w0[r], sum_w0[s], theta[r], sum_theta[s], order, data, lane, lanes, mask, col_s, col_sq, lam_w, lam_v
        )
        if lane == 0:
            sum_w0[s] = acc
    else:
        m_w0, v_w0, exp_avg, exp_avg_sq, last_step = adam_state
        total, w, m, v = _adam_run(
            eta, w0[r], m_w0[s], v_w0[s], theta[r], exp_avg[s], exp_avg_sq[s], last_step[s], t_start, order, data,
            tables, lane, lanes, mask, col_s, col_sq, lam_w, lam_v,
        )  # fmt: skip
        if lane == 0:
            m_w0[s] = m
            v_w0[s] = v
    if lane == 0:
        w0[r] = w
    return total


@cuda.jit(cache=True)  # on disk, stamped with every source it compiles (_EngineSourcesLocator)
def _epoch_kernel(runs, orders, order_of_run, t_start, params, adagrad, adam_state, data, tables, out):
    """Block r: one epoch of run r (one warp), its mean training loss in ``out[r, 0]``; then
    :func:`_adam_flush_kernel`, :func:`_v_rms_kernel` (``out[r, 3]``) and the held-out kernels
    (``out[r, 1:3]``) complete the CPU kernel's record."""
    r, lane, lanes = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    mask = 0xFFFFFFFF >> (LANES_MAX - lanes)  # the block's lanes: one warp, lanes <= 32
    K1 = params[1].shape[2]
    col_s = cuda.local.array(K1_MAX, numba.float64)[:K1]  # the lane's owned column sums
    col_sq = cuda.local.array(K1_MAX, numba.float64)[:K1]
    order = orders[order_of_run[r]]
    total = _train_run(
        r, runs, order, t_start, params, adagrad, adam_state, data, tables, lane, lanes, mask, col_s, col_sq
    )
    if lane == 0:
        out[r, 0] = total / order.shape[0]


@cuda.jit(cache=True)
def _adam_flush_kernel(adam_runs, etas, t_end, params, adam_state, tables):
    """One thread per (Adam run, row): row i of Adam slot s (run ``adam_runs[s]``) caught up from
    its last gradient to step ``t_end`` (:func:`fmedu.engine.rules.adam_catch_up_row` on all its
    columns), then its ``last_step`` set to ``t_end``: the end-of-epoch catch-up of every row,
    spread over many warps per run (rows are independent, so each gets the CPU's floats)."""
    q = cuda.grid(1)
    last_step = adam_state[4]
    n = last_step.shape[1]
    if q >= adam_runs.shape[0] * n:
        return
    s, i = q // n, q % n
    r = adam_runs[s]
    theta = params[1][r]
    t0 = last_step[s, i]
    if t0 < t_end:
        coef = cuda.local.array(COEFS, numba.float64)
        rules.adam_catch_up_row(
            theta, adam_state[2][s], adam_state[3][s], i, t0, t_end, etas[r], 0, theta.shape[1], 1, tables, coef
        )
        last_step[s, i] = t_end


@cuda.jit(cache=True)
def _v_rms_kernel(params, out):
    """Block r (one warp): ``out[r, 3]`` = the RMS norm of run r's latent rows, √(Σ_i ‖v_i‖² / n),
    each column summed over the rows in order by its lane, then the columns in order, read by
    shuffles from their owners (the CPU's floats; no shared memory)."""
    r, lane, lanes = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    mask = 0xFFFFFFFF >> (LANES_MAX - lanes)
    theta = params[1][r]
    K1 = theta.shape[1]
    col_sq = cuda.local.array(K1_MAX, numba.float64)[:K1]  # the lane's owned columns
    rules.column_squares(theta, lane, K1, lanes, col_sq)
    acc = 0.0
    for j in range(1, K1):
        acc += _shfl(mask, col_sq[j], j % lanes)
    if lane == 0:
        out[r, 3] = math.sqrt(acc / theta.shape[0])


@cuda.jit(cache=True)
def _held_out_kernel(params, data, rows, losses):
    """One thread per (run, held-out row): ``losses[r, pos]`` = the logistic loss of run r on
    sample ``rows[pos]``, its column sums and (B, A, C) in the CPU engine's order (each column
    summed over the sample's rows in order, then A and C over the columns in order)."""
    q = cuda.grid(1)
    runs, count = losses.shape[0], losses.shape[1]
    if q >= runs * count:
        return
    r, pos = q // count, q % count
    w0, theta = params[0][r], params[1][r]
    K1 = theta.shape[1]
    col_s = cuda.local.array(K1_MAX, numba.float64)[:K1]
    col_sq = cuda.local.array(K1_MAX, numba.float64)[:K1]
    idx, nnz, y = data
    row = rows[pos]
    rules.column_sums(theta, idx, row, nnz[row], 0, K1, 1, col_s, col_sq)
    B, A, C = rules.sample_scalars(w0, col_s, col_sq)
    losses[r, pos] = scalar.softplus_neg(y[row] * (B + 0.5 * (C - A)))


@cuda.jit(cache=True)
def _mean_kernel(losses, count, out, column):
    """``out[r, column]`` = the mean of ``losses[r, :count]``, summed in order as the CPU does
    (NaN for no rows)."""
    r = cuda.grid(1)
    if r >= out.shape[0]:
        return
    if count == 0:
        out[r, column] = math.nan
        return
    total = 0.0
    for pos in range(count):
        total += losses[r, pos]
    out[r, column] = total / count


def _padded(rows: np.ndarray) -> np.ndarray:
    return rows if len(rows) else np.zeros(1, dtype=np.int64)


class CudaTrainer(TrainerBase):
    """R runs trained together on the GPU, one launch per epoch; same contract as :class:`fmedu.engine.Trainer`.

    ``lanes``: threads per block (per run), one warp: 32 by default, any count from 1 to 32
    gives the same numbers (the per-sample reduction is a warp shuffle, so a run's lanes are one
    warp; more are refused).
    The parameters and optimiser state live on the GPU; ``params(r)`` copies one run's back.
    """

    def __init__(self, runs, idx, nnz, y, *, lanes: int = 32, **kwargs) -> None:
        if not cuda.is_available():
            raise FMInputError("device='cuda' but numba-cuda finds no CUDA GPU; use device='cpu'")
        super().__init__(runs, idx, nnz, y, **kwargs)
        if self.k + 1 > K1_MAX:
            raise FMInputError(f"the GPU kernels hold k + 1 <= {K1_MAX} columns per row; got k = {self.k}")
        if not (isinstance(lanes, int) and 1 <= lanes <= LANES_MAX):
            raise FMInputError(
                f"lanes must be an int in [1, {LANES_MAX}], got {lanes!r}: a run's lanes are one warp "
                "(the per-sample sums are reduced by warp shuffles); 32, the default, gives each lane one column"
            )
        self.lanes = lanes
        dev = cuda.to_device
        self._runs = (dev(self.methods), dev(self.etas), dev(self.slots), dev(self.lams))
        self._params = (dev(self.w0), dev(self.theta))
        self._adagrad = tuple(dev(_nonempty(a)) for a in self.adagrad)
        self._adam = tuple(dev(_nonempty(a)) for a in self.adam)
        # 32-bit indices on the device (checked to fit): cheaper integer arithmetic in every lane
        if max(self.n, len(self.y)) >= 2**31:
            raise FMInputError(
                f"the GPU kernels index with 32-bit integers: {self.n:,} features and {len(self.y):,} samples "
                "must each stay below 2**31; use device='cpu'"
            )
        self._data = (dev(self.idx.astype(np.int32)), dev(self.nnz.astype(np.int32)), dev(self.y))
        R = len(self.runs)
        self._held_out = tuple(
            (dev(_padded(rows).astype(np.int32)), len(rows)) for rows in (self.val_rows, self.test_rows)
        )
        # per-row held-out losses of every run, summed per run in order by _mean_kernel
        self._losses = tuple(
            cuda.device_array((R, max(len(rows), 1)), dtype=np.float64) for rows in (self.val_rows, self.test_rows)
        )
        self._tables = tuple(dev(np.ascontiguousarray(t)) for t in adam.tables())
        adam_runs = np.flatnonzero(self.methods == ADAM).astype(np.int32)  # by slot
        self._adam_runs = (dev(_nonempty(adam_runs)), len(adam_runs))
        self._flush = (self._params, self._adam, self._tables)

    def _epoch(self, orders, order_of_run, t_start: int):
        R = len(self.runs)
        out = cuda.device_array((R, 4), dtype=np.float64)
        methods, _, slots, lams = self._runs
        args = (
            (methods, cuda.to_device(self.epoch_etas()), slots, lams),
            cuda.to_device(orders.astype(np.int32)),
            cuda.to_device(order_of_run.astype(np.int32)),
            t_start,
            self._params,
            self._adagrad,
            self._adam,
            self._data,
            self._tables,
            out,
        )
        _epoch_kernel[R, self.lanes](*args)
        adam_runs, count = self._adam_runs
        if count:
            blocks = (count * self.n + _WIDE - 1) // _WIDE
            _adam_flush_kernel[blocks, _WIDE](adam_runs, args[0][1], t_start + orders.shape[1], *self._flush)
        _v_rms_kernel[R, self.lanes](self._params, out)
        for column, (rows, count) in ((1, self._held_out[0]), (2, self._held_out[1])):
            losses = self._losses[column - 1]
            if count:
                blocks = (R * count + _WIDE - 1) // _WIDE
                _held_out_kernel[blocks, _WIDE](self._params, self._data, rows, losses)
            _mean_kernel[(R + _WIDE - 1) // _WIDE, _WIDE](losses, count, out, column)
        return out.copy_to_host(), self._params[0].copy_to_host()

    def _params_of(self, r: int) -> tuple[float, np.ndarray, np.ndarray]:
        theta = self._params[1][r].copy_to_host()
        return float(self._params[0][r : r + 1].copy_to_host()[0]), theta[:, 0].copy(), theta[:, 1:].copy()


def _nonempty(a: np.ndarray) -> np.ndarray:
    """``a``, or one zero entry of the same trailing shape when a method has no runs (no empty device arrays)."""
    return a if a.shape[0] else np.zeros((1, *a.shape[1:]), dtype=a.dtype)


def kernel_signatures() -> dict[str, tuple]:
    """The numba signature of each kernel for C-contiguous arrays as :class:`CudaTrainer` passes them."""
    i32, i64, f64 = numba.int32, numba.int64, numba.float64
    vec_i, vec_f, vec_i32 = i64[::1], f64[::1], i32[::1]
    mat_i, mat_f, cube_f, mat_i32 = i64[:, ::1], f64[:, ::1], f64[:, :, ::1], i32[:, ::1]
    tup = numba.types.Tuple
    params = tup((vec_f, cube_f))  # w0, theta
    data = tup((mat_i32, vec_i32, vec_f))  # idx, nnz, y
    adam_state = tup((vec_f, vec_f, cube_f, cube_f, mat_i))
    tables = tup((vec_f, vec_f, mat_f, mat_f, mat_f, mat_f, mat_f, mat_f))
    return {
        "_epoch_kernel": (
            tup((vec_i, vec_f, vec_i, mat_f)),  # methods, etas (of the epoch), slots, penalties (R, 2)
            mat_i32,  # orders
            vec_i32,  # order_of_run
            i64,  # t_start
            params,
            tup((vec_f, cube_f)),  # Adagrad state
            adam_state,  # m, v of w0; exp_avg, exp_avg_sq, last_step
            data,
            tables,  # Adam's tables
            mat_f,  # out
        ),
        "_adam_flush_kernel": (vec_i32, vec_f, i64, params, adam_state, tables),  # Adam runs by slot, etas, t_end
        "_v_rms_kernel": (params, mat_f),
        "_held_out_kernel": (params, data, vec_i32, mat_f),  # params, data, held-out rows, losses
        "_mean_kernel": (mat_f, i64, mat_f, i64),  # losses, count, out, column
    }


KERNELS = ("_epoch_kernel", "_adam_flush_kernel", "_v_rms_kernel", "_held_out_kernel", "_mean_kernel")


def compile_ptx(cc: tuple[int, int] = (9, 0)) -> dict[str, str]:
    """PTX of every kernel (the epoch kernel with every method and device function, the held-out
    and mean kernels) for compute capability ``cc``, by kernel name.

    Needs numba-cuda with its CUDA compiler packages (the ``cu13`` extra) but no GPU. numba-cuda
    asks the current device for its compute capability when it compiles a *device* function
    called by a kernel; without a GPU that question is answered here with ``cc`` for the
    duration of the compilation.
    """
    if simulator():
        raise FMInputError("compile_ptx needs the real numba-cuda compiler; unset NUMBA_ENABLE_CUDASIM")
    from numba.cuda import dispatcher

    asked = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)
    try:
        signatures = kernel_signatures()
        return {name: cuda.compile_ptx(globals()[name].py_func, signatures[name], cc=cc)[0] for name in KERNELS}
    finally:
        dispatcher.get_current_device = asked


def assemble(ptx: str, cc: tuple[int, int] = (9, 0), kernel: str = "_epoch_kernel") -> dict:
    """Assemble one kernel's PTX to machine code for ``cc`` with nvJitLink (no GPU needed); ptxas's report.

    Returns ``registers`` (per thread), ``spill_stores``, ``spill_loads`` (bytes) of ``kernel``
    and ``cubin_bytes``. Needs the ``cu13`` packages of numba-cuda (nvJitLink).
    """
    import re

    from cuda.bindings import nvjitlink

    handle = nvjitlink.create(2, [f"-arch=sm_{cc[0]}{cc[1]}", "-verbose"])
    try:
        data = ptx.encode()
        nvjitlink.add_data(handle, nvjitlink.InputType.PTX, data, len(data), "epoch_kernel.ptx")
        nvjitlink.complete(handle)
        log = bytearray(nvjitlink.get_info_log_size(handle))
        nvjitlink.get_info_log(handle, log)
        cubin_bytes = nvjitlink.get_linked_cubin_size(handle)
    finally:
        nvjitlink.destroy(handle)
    text = log.decode(errors="replace")
    report = text[text.index(kernel) :]
    registers = re.search(r"Used (\d+) registers", report)
    spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", report)
    if registers is None or spills is None:
        raise FMInputError(f"could not read ptxas's report for {kernel}:\n{text}")
    return {
        "registers": int(registers.group(1)),
        "spill_stores": int(spills.group(1)),
        "spill_loads": int(spills.group(2)),
        "cubin_bytes": int(cubin_bytes),
    }
