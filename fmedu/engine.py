"""Fast multi-run training of logistic FMs on one-hot data (batch size 1), used by notebook 06.

Many independent runs (method × step size × attempt) are trained at once: each run has
its own parameters, its own seed (initialisation and per-epoch shuffle) and its own step
size. The compiled CPU backend (numba) runs the runs in parallel (``prange`` over runs);
inside a run the samples are visited one by one, exactly as the single-run algorithm does.

Methods (``METHODS``), each with the semantics of its reference:

* ``prox`` — the exact stochastic proximal-point step of ``fmedu.prox``: the dual variable
  z* maximises the concave q(z) on [0, 1]; the biases move by η z* y along the feature
  indicator and the touched latent rows become S(z*)⁻¹ V_idx (Sherman–Morrison closed form).
  The whole step depends on a sample only through four scalars (bias sum ``B``, the squared
  norms ``P = Σ‖v_i‖²`` and ``Q = ‖Σ v_i‖²``, and ``d = nnz``), so z* is found by a
  safeguarded Newton iteration on q'(z) = 0 in the logit of z, in a handful of flops.
* ``prox-published`` — erratum E3: z* from the same full q, but only ``w0`` and ``w[idx]``
  are written; the latent vectors stay at their initial values (the published trainer's
  write to ``V[idx]`` is lost).
* ``sgd``, ``adagrad``, ``adam`` — ``torch.optim.SGD/Adagrad/Adam`` with default settings
  apart from the learning rate, on the dense parameters of ``fmedu.FactorizationMachine``.
  SGD and Adagrad change only the rows of ``idx`` (a zero gradient leaves them unchanged).
  Adam moves *every* parameter at every step (its moments decay and the decayed first moment
  keeps moving the parameter); the engine reproduces this lazily and exactly: a row's
  skipped zero-gradient steps are replayed when the row is next touched (or at the end of
  the epoch), until the replayed moves fall below 2⁻⁵⁵ of the parameter (a quarter of an
  ulp), after which the remaining, shrinking moves cannot change it in float64 and the
  moments are decayed in closed form.

Per epoch the engine records the published training loss (each sample's logistic loss
before its own update, averaged over the epoch), the held-out loss on ``val_rows`` after
the epoch, the RMS norm of the latent rows and ``w0``.

Shapes: ``idx`` int64 ``(N, m)`` padded with −1, ``nnz`` int64 ``(N,)``, ``y`` float64
``(N,)`` in {−1, +1}; parameters of run r: ``w0[r]`` scalar, ``w[r]`` ``(n,)``,
``V[r]`` ``(n, k)``. Internally ``w`` and ``V`` share one array ``(R, n, k + 1)`` (column 0 is
``w``) so that a touched feature is one contiguous row.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from .validation import FMInputError

try:  # numba is a dependency, but keep import errors readable
    import numba
    from numba import njit, prange
except ImportError as exc:  # pragma: no cover
    raise ImportError("fmedu.engine needs numba (pip install -e .)") from exc

__all__ = [
    "METHODS",
    "Run",
    "Trainer",
    "TrainResult",
    "train",
    "init_params",
    "epoch_permutation",
    "prox_step_scalar",
    "prox_bound",
    "set_threads",
]

METHODS = ("prox", "prox-published", "sgd", "adagrad", "adam")
_CODE = {m: i for i, m in enumerate(METHODS)}
PROX, PROX_PUB, SGD, ADAGRAD, ADAM = range(5)

ADAM_BETA1, ADAM_BETA2, ADAM_EPS = 0.9, 0.999, 1e-8  # torch.optim.Adam defaults
ADAGRAD_EPS = 1e-10  # torch.optim.Adagrad default
_ADAM_CUTOFF = 2.0**-55  # replayed move below this fraction of |p|: the rest cannot change p


def set_threads(threads: int | None = None) -> int:
    """Numba threads: ``threads``, else $FMEDU_THREADS, else all cores. Returns the number used."""
    if threads is None:
        env = os.environ.get("FMEDU_THREADS")
        threads = int(env) if env else numba.config.NUMBA_NUM_THREADS
    threads = max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(threads)
    return threads


# --------------------------------------------------------------------------- scalar kernels


@njit(cache=True, inline="always")
def _softplus_neg(margin):
    """log(1 + exp(−margin)), the logistic loss at margin y·ŷ, without overflow."""
    if margin > 0:
        return math.log1p(math.exp(-margin))
    return -margin + math.log1p(math.exp(margin))


@njit(cache=True, inline="always")
def _sigmoid(t):
    if t >= 0:
        return 1.0 / (1.0 + math.exp(-t))
    e = math.exp(t)
    return e / (1.0 + e)


@njit(cache=True, inline="always")
def _yhat_star(z, B, P, Q, d, eta, y):
    """ŷ(x*(z)) and its z-derivative, from the four scalars of the sample.

    β = η y z, E = 1 + β, D = 1 − (d−1)β. Biases: B + (d+1)β. Latent rows
    v_i* = (v_i + β/D · s)/E with s = Σ v_i, so ‖s*‖² = Q/D² and the pairwise term is
    ½[Q (1 + (d−1)β²)/(D²E²) − P/E²].
    """
    beta = eta * y * z
    E = 1.0 + beta
    D = 1.0 - (d - 1.0) * beta
    num = 1.0 + (d - 1.0) * beta * beta
    A = num / (D * D * E * E)
    f = B + (d + 1.0) * beta + 0.5 * (Q * A - P / (E * E))
    dA = A * (2.0 * (d - 1.0) * beta / num + 2.0 * (d - 1.0) / D - 2.0 / E)
    dpair = 0.5 * (Q * dA + 2.0 * P / (E * E * E))
    df = eta * y * ((d + 1.0) + dpair)
    return f, df


@njit(cache=True)
def _prox_z(B, P, Q, d, eta, y, yhat0):
    """z* = argmax q on [0, 1]: root of q'(z) = −y ŷ(x*(z)) − logit(z), Newton in t = logit(z).

    G(t) = −y ŷ*(σ(t)) − t is strictly decreasing (q is strictly concave inside the step-size
    bound), so every Newton step points towards the root; a bracket [lo, hi] catches overshoot.
    Start: t = −y ŷ_t, the root for η → 0. Converges to machine precision in a few steps.
    """
    t = -y * yhat0
    lo = -math.inf
    hi = math.inf
    for _ in range(100):
        z = _sigmoid(t)
        f, df = _yhat_star(z, B, P, Q, d, eta, y)
        G = -y * f - t
        # residual at rounding level: since G' ≤ −1, |t − t*| ≤ |G| ≈ 1e-15 (1 + |t| + |ŷ|)
        if abs(G) <= 1e-15 * (1.0 + abs(t) + abs(f) + abs(B)):
            break
        # G' ≤ −1, so |t − t*| ≤ |G(t)|: the first evaluation already gives a finite bracket
        if G > 0.0:
            lo = t
            hi = min(hi, t + G)
        else:
            hi = t
            lo = max(lo, t + G)
        dG = -y * df * z * (1.0 - z) - 1.0
        tn = t - G / dG
        if not (tn > lo and tn < hi):
            tn = 0.5 * (lo + hi)
        if abs(tn - t) <= 1e-15 * (1.0 + abs(t)):
            t = tn
            break
        t = tn
    return _sigmoid(t)


def prox_step_scalar(B: float, P: float, Q: float, d: int, eta: float, y: float) -> float:
    """z* of the exact prox step from the four sample scalars (Python entry to the kernel)."""
    return float(_prox_z(float(B), float(P), float(Q), float(d), float(eta), float(y), float(B + 0.5 * (Q - P))))


def prox_bound(max_nnz: int) -> float:
    """Exact step-size bound of the prox step for samples with at most ``max_nnz`` one-hot
    non-zeros: η < 1/(d − 1) keeps S(z) positive definite for y = +1 (erratum E2), and η < 1
    for y = −1 (then S(z) ⪰ (1 − η)I)."""
    return 1.0 / (max_nnz - 1) if max_nnz >= 2 else math.inf


# --------------------------------------------------------------------------- one run, one epoch


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
        yhat = B + 0.5 * (Qsq - Psq)
        total += _softplus_neg(yy * yhat)

        if method == PROX or method == PROX_PUB:
            z = _prox_z(B, Psq, Qsq, float(d), eta, yy, yhat)
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

        dl = -yy * _sigmoid(-yy * yhat)  # dℓ/dŷ of ℓ = log(1 + exp(−y ŷ))
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
        out[r] = _run_epoch(r, methods[r], etas[r], w0, P, S1, S2, S10, S20, last, tstep,
                            idx, nnz, y, perm, sbuf, gbuf)


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


# --------------------------------------------------------------------------- Python API


@dataclass(frozen=True)
class Run:
    """One training run: method, step size and seed (initialisation and shuffles)."""

    method: str
    eta: float
    seed: int


def init_params(seed: int, n: int, k: int, init_std: float = 0.01):
    """(w0, w, V) of a run: w0 = 0, w and V ~ N(0, init_std²) from ``SeedSequence([seed, 0])``."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0]))
    w = init_std * rng.standard_normal(n)
    V = init_std * rng.standard_normal((n, k))
    return 0.0, w, V


def epoch_permutation(seed: int, epoch: int, rows: np.ndarray) -> np.ndarray:
    """The order in which a run with ``seed`` visits ``rows`` in ``epoch`` (fresh each epoch)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 1, int(epoch)]))
    return np.asarray(rows, dtype=np.int64)[rng.permutation(len(rows))]


def _check_data(idx, nnz, y, n_features):
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    nnz = np.ascontiguousarray(nnz, dtype=np.int64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    if idx.ndim != 2 or nnz.shape != (idx.shape[0],) or y.shape != (idx.shape[0],):
        raise FMInputError(
            f"idx must be (N, m), nnz and y (N,); got {idx.shape}, {nnz.shape}, {y.shape}")
    if not np.all(np.isin(y, (-1.0, 1.0))):
        raise FMInputError("labels y must be in {-1, +1}; map 0/1 labels with y = 2*label - 1")
    if np.any(nnz < 1) or np.any(nnz > idx.shape[1]):
        raise FMInputError("every sample needs 1 ≤ nnz ≤ idx.shape[1]")
    cols = np.arange(idx.shape[1])[None, :]
    present = cols < nnz[:, None]
    if np.any(idx[present] < 0) or np.any(idx[present] >= n_features):
        raise FMInputError(f"feature indices must lie in [0, {n_features}) for the first nnz entries of each row")
    if np.any(idx[~present] != -1):
        raise FMInputError("idx must be padded with -1 after the first nnz entries of each row")
    return idx, nnz, y


class Trainer:
    """State of R runs trained together; ``epoch()`` advances all of them by one epoch.

    ``runs``: a list of :class:`Run`. ``train_rows`` / ``val_rows``: int64 row numbers into
    ``idx`` (the training set visited each epoch; the held-out rows, may be empty).
    ``allow_beyond_bound``: permit prox step sizes beyond the exact bound η < 1/(d−1).
    """

    def __init__(self, runs, idx, nnz, y, *, n_features: int, train_rows=None, val_rows=None,
                 k: int = 20, init_std: float = 0.01, device: str = "cpu",
                 allow_beyond_bound: bool = False):
        if device != "cpu":
            raise FMInputError(f"device {device!r}: the compiled engine backend runs on 'cpu'; "
                               "use fmedu.engine_cuda for 'cuda'")
        self.idx, self.nnz, self.y = _check_data(idx, nnz, y, n_features)
        self.runs = list(runs)
        if not self.runs:
            raise FMInputError("runs is empty: pass at least one fmedu.engine.Run")
        N = self.idx.shape[0]
        self.train_rows = np.arange(N, dtype=np.int64) if train_rows is None else np.asarray(train_rows, np.int64)
        self.val_rows = np.zeros(0, np.int64) if val_rows is None else np.asarray(val_rows, np.int64)
        dmax = int(self.nnz[self.train_rows].max())
        for run in self.runs:
            if run.method not in _CODE:
                raise FMInputError(f"unknown method {run.method!r}; choose one of {', '.join(METHODS)}")
            if not (math.isfinite(run.eta) and run.eta > 0):
                raise FMInputError(f"step size eta must be positive and finite, got {run.eta!r}")
            if run.method == "prox" and run.eta >= prox_bound(dmax) and not allow_beyond_bound:
                raise FMInputError(
                    f"prox step size eta={run.eta:g} is not below the convexity bound 1/(d-1) = "
                    f"{prox_bound(dmax):g} for max nnz d={dmax}; pick a smaller eta or pass "
                    "allow_beyond_bound=True for a demonstration")
        R = len(self.runs)
        self.n, self.k = int(n_features), int(k)
        self.methods = np.array([_CODE[r.method] for r in self.runs], dtype=np.int64)
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
    def params(self, r: int):
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
        _epoch_kernel(self.methods, self.etas, self.w0, self.P, self.S1, self.S2, self.S10, self.S20,
                      self.last, self.tstep, self.idx, self.nnz, self.y, perm, self.sbuf, self.gbuf,
                      train_loss)
        self._flush()
        val_loss = np.full(len(self.runs), np.nan)
        v_rms = np.zeros(len(self.runs))
        rows = self.val_rows if len(self.val_rows) else np.zeros(0, np.int64)
        _eval_kernel(self.w0, self.P, self.idx, self.nnz, self.y, rows, val_loss, v_rms)
        if not len(self.val_rows):
            val_loss[:] = np.nan
        self.epochs_done += 1
        return {"train_loss": train_loss, "val_loss": val_loss, "v_rms": v_rms, "w0": self.w0.copy()}


@dataclass
class TrainResult:
    """Per-run, per-epoch records (arrays ``(R, epochs)``) and the trainer (final parameters)."""

    runs: list
    train_loss: np.ndarray
    val_loss: np.ndarray
    v_rms: np.ndarray
    w0: np.ndarray
    trainer: Trainer = field(repr=False)


def train(runs, idx, nnz, y, *, n_features: int, epochs: int, train_rows=None, val_rows=None,
          k: int = 20, init_std: float = 0.01, device: str = "cpu", allow_beyond_bound: bool = False,
          progress=None) -> TrainResult:
    """Train ``runs`` for ``epochs`` epochs; ``progress(epoch, record)`` is called after each."""
    if not (isinstance(epochs, int) and epochs >= 1):
        raise FMInputError(f"epochs must be a positive int, got {epochs!r}")
    if device == "cuda":
        from . import engine_cuda

        trainer = engine_cuda.Trainer(runs, idx, nnz, y, n_features=n_features, train_rows=train_rows,
                                      val_rows=val_rows, k=k, init_std=init_std,
                                      allow_beyond_bound=allow_beyond_bound)
    else:
        trainer = Trainer(runs, idx, nnz, y, n_features=n_features, train_rows=train_rows,
                          val_rows=val_rows, k=k, init_std=init_std, device=device,
                          allow_beyond_bound=allow_beyond_bound)
    recs = []
    for e in range(epochs):
        rec = trainer.epoch()
        recs.append(rec)
        if progress is not None:
            progress(e, rec)
    stack = {key: np.stack([rec[key] for rec in recs], axis=1) for key in recs[0]}
    return TrainResult(list(runs), stack["train_loss"], stack["val_loss"], stack["v_rms"], stack["w0"], trainer)
