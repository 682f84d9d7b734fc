"""The engine's CPU backend: numba kernels, parallel over runs (chapter 06).

Each run walks its own shuffled samples one by one, exactly as the single-run algorithm
does; ``prange`` spreads the runs over the cores. The per-sample prox mathematics is
:mod:`fmedu.prox.scalar`, compiled here with ``numba.njit``. See :mod:`fmedu.engine` for the
methods and their reference semantics.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from ..errors import FMInputError
from ..prox import scalar
from ..validation import check_threads, env_threads
from .common import (
    _ADAM_CUTOFF,
    ADAGRAD,
    ADAGRAD_EPS,
    ADAM,
    ADAM_BETA1,
    ADAM_BETA2,
    ADAM_EPS,
    CODES,
    PROX,
    PROX_PUB,
    SGD,
    check_data,
    check_rows,
    check_runs,
    check_settings,
    epoch_permutation,
    init_params,
)

__all__ = ["Trainer", "set_threads", "newton_z"]

# the shared scalar mathematics, compiled for the CPU
_softplus_neg = njit(cache=True, inline="always")(scalar.softplus_neg)
_sigmoid = njit(cache=True, inline="always")(scalar.sigmoid)
_logit = njit(cache=True, inline="always")(scalar.logit)
_prediction_after = njit(cache=True, inline="always")(scalar.prediction_after)
_newton_z = njit(cache=True)(scalar.newton_z)


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


@njit(cache=True, inline="always")
def _adam_catch_up(Pr, M, S, row, last, t_to, lr):
    """Replay the zero-gradient Adam steps last[row]+1 .. t_to of one row (k+1 parameters).

    The moves m̂/(√v̂ + ε) of an untouched parameter shrink monotonically (m decays by β1 per
    step, √v̂ + ε by at most √β2). Once every move is below 2⁻⁵⁵|p|, less than a quarter of
    an ulp of p, dense Adam's remaining subtractions round back to p exactly; only the
    moments still decay, which is done in closed form (β1^r, β2^r).
    """
    K1 = Pr.shape[1]
    s = last[row] + 1
    b1p = ADAM_BETA1 ** (s - 1)  # β1^(s−1), β2^(s−1), advanced by one multiplication per step
    b2p = ADAM_BETA2 ** (s - 1)
    Mr = M[row]
    Sr = S[row]
    Pw = Pr[row]
    while s <= t_to:
        b1p *= ADAM_BETA1
        b2p *= ADAM_BETA2
        step_size = lr / (1.0 - b1p)
        inv_bc2_sqrt = 1.0 / math.sqrt(1.0 - b2p)
        big = 0
        for j in range(K1):  # branch-free so that it vectorises
            m = Mr[j] * ADAM_BETA1  # zero gradient: exp_avg.lerp_(0, 1 − β1) = β1·m
            v = Sr[j] * ADAM_BETA2  # exp_avg_sq.mul_(β2).addcmul_(0, 0)
            Mr[j] = m
            Sr[j] = v
            upd = step_size * m / (math.sqrt(v) * inv_bc2_sqrt + ADAM_EPS)
            p = Pw[j]
            Pw[j] = p - upd
            big += abs(upd) > _ADAM_CUTOFF * abs(p)
        s += 1
        if big == 0 and s <= t_to:
            rest = t_to - s + 1
            f1 = ADAM_BETA1**rest
            f2 = ADAM_BETA2**rest
            for j in range(K1):
                Mr[j] *= f1
                Sr[j] *= f2
            break
    last[row] = t_to


@njit(cache=True)
def _run_epoch(r, method, eta, w0, P, S1, S2, S10, S20, last, tstep, idx, nnz, y, perm, sbuf, gbuf):
    """One epoch of run r over the rows ``perm[r]``; returns the mean pre-update loss."""
    Pr = P[r]
    K1 = Pr.shape[1]
    k = K1 - 1
    s = sbuf[r]
    g = gbuf[r]
    total = 0.0
    N = perm.shape[1]
    for pos in range(N):
        row = perm[r, pos]
        d = nnz[row]
        yy = y[row]
        t = tstep[r] + 1
        tstep[r] = t
        if method == ADAM:  # bring the touched rows up to step t − 1
            for a in range(d):
                i = idx[row, a]
                if last[r, i] < t - 1:
                    _adam_catch_up(Pr, S1[r], S2[r], i, last[r], t - 1, eta)
        # the four sample scalars: B = w0 + Σ w_i, s = Σ v_i, P = Σ‖v_i‖², Q = ‖s‖²
        B = w0[r]
        Psq = 0.0
        for f in range(k):
            s[f] = 0.0
        for a in range(d):
            i = idx[row, a]
            B += Pr[i, 0]
            for f in range(k):
                v = Pr[i, 1 + f]
                s[f] += v
                Psq += v * v
        Qsq = 0.0
        for f in range(k):
            Qsq += s[f] * s[f]
        y_hat = B + 0.5 * (Qsq - Psq)
        total += _softplus_neg(yy * y_hat)

        if method == PROX or method == PROX_PUB:
            z = _newton_z(B, Psq, Qsq, float(d), eta, yy, 100)[0]
            beta = eta * yy * z
            w0[r] += beta
            for a in range(d):
                Pr[idx[row, a], 0] += beta
            if method == PROX:
                inv_E = 1.0 / (1.0 + beta)  # v_i ← (v_i + c s)/(1 + β), c = β/(1 − (d−1)β)
                c = beta / (1.0 - (d - 1.0) * beta)
                for f in range(k):
                    s[f] *= c
                for a in range(d):
                    i = idx[row, a]
                    for f in range(k):
                        Pr[i, 1 + f] = (Pr[i, 1 + f] + s[f]) * inv_E
            continue

        dl = -yy * _sigmoid(-yy * y_hat)  # dℓ/dŷ of ℓ = log(1 + exp(−y ŷ))
        # gradients of the touched rows: ∂ŷ/∂w_i = 1, ∂ŷ/∂v_i = s − v_i (all from the
        # pre-update parameters, as autograd computes them before the optimizer step)
        for a in range(d):
            i = idx[row, a]
            g[a, 0] = dl
            for f in range(k):
                g[a, 1 + f] = dl * (s[f] - Pr[i, 1 + f])
        if method == SGD:
            w0[r] -= eta * dl
            for a in range(d):
                i = idx[row, a]
                for j in range(K1):
                    Pr[i, j] -= eta * g[a, j]
        elif method == ADAGRAD:
            S10[r] += dl * dl
            w0[r] -= eta * (dl / (math.sqrt(S10[r]) + ADAGRAD_EPS))
            G = S1[r]
            for a in range(d):
                i = idx[row, a]
                for j in range(K1):
                    gj = g[a, j]
                    G[i, j] += gj * gj
                    Pr[i, j] -= eta * (gj / (math.sqrt(G[i, j]) + ADAGRAD_EPS))
        else:  # ADAM, step t on w0 and on the touched rows
            bc1 = 1.0 - ADAM_BETA1**t
            bc2 = 1.0 - ADAM_BETA2**t
            step_size = eta / bc1
            bc2_sqrt = math.sqrt(bc2)
            m = S10[r]
            m = m + (1.0 - ADAM_BETA1) * (dl - m)
            v = S20[r] * ADAM_BETA2 + (1.0 - ADAM_BETA2) * dl * dl
            S10[r] = m
            S20[r] = v
            w0[r] -= step_size * (m / (math.sqrt(v) / bc2_sqrt + ADAM_EPS))
            M = S1[r]
            Vv = S2[r]
            for a in range(d):
                i = idx[row, a]
                for j in range(K1):
                    gj = g[a, j]
                    m = M[i, j]
                    m = m + (1.0 - ADAM_BETA1) * (gj - m)
                    v = Vv[i, j] * ADAM_BETA2 + (1.0 - ADAM_BETA2) * gj * gj
                    M[i, j] = m
                    Vv[i, j] = v
                    Pr[i, j] -= step_size * (m / (math.sqrt(v) / bc2_sqrt + ADAM_EPS))
                last[r, i] = t
    return total / N


@njit(cache=True, parallel=True)
def _epoch_kernel(methods, etas, w0, P, S1, S2, S10, S20, last, tstep, idx, nnz, y, perm, sbuf, gbuf, out):
    for r in prange(methods.shape[0]):
        out[r] = _run_epoch(r, methods[r], etas[r], w0, P, S1, S2, S10, S20, last, tstep, idx, nnz, y, perm, sbuf, gbuf)


@njit(cache=True, parallel=True)
def _adam_flush_kernel(methods, etas, P, S1, S2, last, tstep):
    """Bring every row of every Adam run up to its current step (dense-exact parameters)."""
    for r in prange(methods.shape[0]):
        if methods[r] == ADAM:
            for i in range(P.shape[1]):
                if last[r, i] < tstep[r]:
                    _adam_catch_up(P[r], S1[r], S2[r], i, last[r], tstep[r], etas[r])


@njit(cache=True, parallel=True)
def _eval_kernel(w0, P, idx, nnz, y, rows, out_loss, out_vrms):
    """Mean logistic loss over ``rows`` and RMS latent-row norm, per run."""
    R = P.shape[0]
    n = P.shape[1]
    K1 = P.shape[2]
    for r in prange(R):
        total = 0.0
        for pos in range(rows.shape[0]):
            row = rows[pos]
            B = w0[r]
            Psq = 0.0
            Qsq = 0.0
            for f in range(1, K1):
                sf = 0.0
                for a in range(nnz[row]):
                    v = P[r, idx[row, a], f]
                    sf += v
                    Psq += v * v
                Qsq += sf * sf
            for a in range(nnz[row]):
                B += P[r, idx[row, a], 0]
            total += _softplus_neg(y[row] * (B + 0.5 * (Qsq - Psq)))
        out_loss[r] = total / max(rows.shape[0], 1)
        acc = 0.0
        for i in range(n):
            for f in range(1, K1):
                acc += P[r, i, f] * P[r, i, f]
        out_vrms[r] = math.sqrt(acc / n)


class Trainer:
    """State of R runs trained together; ``epoch()`` advances all of them by one epoch.

    ``runs``: a list of :class:`Run`. ``train_rows`` / ``val_rows``: int64 row numbers into
    ``idx`` (the training set visited each epoch; the held-out rows, may be empty).
    ``allow_beyond_bound``: permit prox step sizes beyond the exact bound η < 1/(d−1).
    """

    def __init__(
        self,
        runs,
        idx,
        nnz,
        y,
        *,
        n_features: int,
        train_rows=None,
        val_rows=None,
        k: int = 20,
        init_std: float = 0.01,
        allow_beyond_bound: bool = False,
    ) -> None:
        self.idx, self.nnz, self.y = check_data(idx, nnz, y, n_features)
        k, init_std = check_settings(k, init_std)
        N = self.idx.shape[0]
        self.train_rows = (
            np.arange(N, dtype=np.int64) if train_rows is None else check_rows(train_rows, N, "train_rows")
        )
        self.val_rows = np.zeros(0, np.int64) if val_rows is None else check_rows(val_rows, N, "val_rows")
        if not len(self.train_rows):
            raise FMInputError("train_rows is empty: pass at least one training row")
        self.runs = check_runs(runs, int(self.nnz[self.train_rows].max()), allow_beyond_bound)
        R = len(self.runs)
        self.n, self.k = int(n_features), int(k)
        self.methods = np.array([CODES[r.method] for r in self.runs], dtype=np.int64)
        self.etas = np.array([float(r.eta) for r in self.runs], dtype=np.float64)
        self.w0 = np.zeros(R)
        self.P = np.empty((R, self.n, self.k + 1))
        for r, run in enumerate(self.runs):
            w0, w, V = init_params(run.seed, self.n, self.k, init_std)
            self.w0[r] = w0
            self.P[r, :, 0] = w
            self.P[r, :, 1:] = V
        need_state = bool(np.any(self.methods >= ADAGRAD))
        need_two = bool(np.any(self.methods == ADAM))
        shape = (R, self.n, self.k + 1) if need_state else (R, 1, 1)
        self.S1 = np.zeros(shape)
        self.S2 = np.zeros(shape if need_two else (R, 1, 1))
        self.S10 = np.zeros(R)
        self.S20 = np.zeros(R)
        self.last = np.zeros((R, self.n if need_two else 1), dtype=np.int64)
        self.tstep = np.zeros(R, dtype=np.int64)
        self.sbuf = np.zeros((R, self.k))
        self.gbuf = np.zeros((R, self.idx.shape[1], self.k + 1))
        self.epochs_done = 0

    # parameters of run r as plain arrays (dense-exact: Adam rows are flushed first)
    def params(self, r: int) -> tuple[float, np.ndarray, np.ndarray]:
        self._flush()
        return float(self.w0[r]), self.P[r, :, 0].copy(), self.P[r, :, 1:].copy()

    def _flush(self):
        if np.any(self.methods == ADAM):
            _adam_flush_kernel(self.methods, self.etas, self.P, self.S1, self.S2, self.last, self.tstep)

    def permutations(self, epoch: int) -> np.ndarray:
        cache: dict[int, np.ndarray] = {}
        out = np.empty((len(self.runs), len(self.train_rows)), dtype=np.int64)
        for r, run in enumerate(self.runs):
            if run.seed not in cache:
                cache[run.seed] = epoch_permutation(run.seed, epoch, self.train_rows)
            out[r] = cache[run.seed]
        return out

    def epoch(self) -> dict:
        """Train every run for one epoch; returns per-run arrays ``train_loss``, ``val_loss``,
        ``v_rms`` (RMS latent-row norm) and ``w0`` after the epoch."""
        perm = self.permutations(self.epochs_done)
        train_loss = np.zeros(len(self.runs))
        _epoch_kernel(
            self.methods,
            self.etas,
            self.w0,
            self.P,
            self.S1,
            self.S2,
            self.S10,
            self.S20,
            self.last,
            self.tstep,
            self.idx,
            self.nnz,
            self.y,
            perm,
            self.sbuf,
            self.gbuf,
            train_loss,
        )
        self._flush()
        val_loss = np.full(len(self.runs), np.nan)
        v_rms = np.zeros(len(self.runs))
        rows = self.val_rows if len(self.val_rows) else np.zeros(0, np.int64)
        _eval_kernel(self.w0, self.P, self.idx, self.nnz, self.y, rows, val_loss, v_rms)
        if not len(self.val_rows):
            val_loss[:] = np.nan
        self.epochs_done += 1
        return {"train_loss": train_loss, "val_loss": val_loss, "v_rms": v_rms, "w0": self.w0.copy()}
