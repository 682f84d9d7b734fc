"""Per-sample pieces shared by the CPU and the GPU kernels: one source for both (chapter 07).

Every function is plain Python decorated with :func:`fmedu.engine.jit.shared`: the CPU kernels
(:mod:`fmedu.engine.cpu`, ``numba.njit``, which inline them) and the GPU kernels
(:mod:`fmedu.engine.cuda`, ``numba.cuda.jit``) call the same code, and so does the GPU
simulator in the tests.

**Column ownership.** A run's parameters are ``theta`` ``(n, k + 1)`` (column 0 is w, columns
1..k are V) and the scalar ``w0``. The column functions below work on the *owned* columns
``range(j0, j1, dj)`` of the touched rows, j1 = k + 1: the CPU passes (0, k + 1, 1) and owns
them all; on the GPU lane ``j0`` of a block of ``dj`` lanes owns its columns, so a touched row's
value and its optimiser state stay in one lane. (j1 is passed rather than read from
``theta.shape``, so that a CPU kernel compiled for one k knows its loops' trip counts.) Each
column's sums run over the sample's rows in the same order on both targets, and
:func:`sample_scalars` reduces the columns in a fixed order, so the CPU and the GPU simulator
agree to the last bit.

Buffers: ``col_s``, ``col_sq`` ``(k + 1,)`` hold one sample's column sums Σ_a θ[i_a, j] and
Σ_a θ[i_a, j]² (``col_s[0]`` is Σ w_i, ``col_s[j]`` for j ≥ 1 is the j-th entry of Σ v_i).
"""

from __future__ import annotations

import math

from ..prox import scalar
from . import adam, penalised
from .common import ADAGRAD_EPS, MAX_NEWTON
from .jit import shared

__all__ = [
    "clear_columns",
    "add_value",
    "add_row",
    "column_sums",
    "sample_scalars",
    "logistic_slope",
    "logistic_loss_slope",
    "prox_coefficients",
    "prox_step_coefficients",
    "prox_row",
    "prox_w",
    "prox_v",
    "prox_columns",
    "first_latent",
    "w_gradient",
    "v_gradient",
    "sgd_update",
    "sgd_row",
    "sgd_columns",
    "adagrad_update",
    "adagrad_row",
    "adagrad_columns",
    "adam_columns",
    "adam_row",
    "adam_catch_up_row",
    "adam_catch_up_rows",
    "adam_flush_columns",
    "column_squares",
]


@shared
def clear_columns(j0, j1, dj, col_s, col_sq):
    """Zero the owned entries of ``col_s`` and ``col_sq`` (before a sample's first row)."""
    for j in range(j0, j1, dj):
        col_s[j] = 0.0
        col_sq[j] = 0.0


@shared
def add_value(s, sq, v):
    """One column's sums (Σ θ, Σ θ²) with one more row's value ``v`` added."""
    return s + v, sq + v * v


@shared
def add_row(theta_i, j0, j1, dj, col_s, col_sq):
    """Add one touched row ``theta_i`` ``(k + 1,)`` to the owned column sums."""
    for j in range(j0, j1, dj):
        col_s[j], col_sq[j] = add_value(col_s[j], col_sq[j], theta_i[j])


@shared
def column_sums(theta, idx, row, d, j0, j1, dj, col_s, col_sq):
    """``col_s[j]``, ``col_sq[j]`` for the owned columns j of sample ``row`` (its d rows, in order)."""
    clear_columns(j0, j1, dj, col_s, col_sq)
    for a in range(d):
        add_row(theta[idx[row, a]], j0, j1, dj, col_s, col_sq)  # one contiguous row


@shared
def sample_scalars(w0, col_s, col_sq):
    """The sample scalars (B, A, C) from all column sums: B = w0 + Σ w_i, A = Σ‖v_i‖², C = ‖Σ v_i‖².

    The prediction is ŷ = B + ½(C − A) (Rendle's form, chapter 01).
    """
    A = 0.0
    C = 0.0
    for j in range(1, col_s.shape[0]):
        A += col_sq[j]
        C += col_s[j] * col_s[j]
    return w0 + col_s[0], A, C


@shared
def logistic_slope(y, y_hat):
    """dℓ/dŷ of the logistic loss ℓ = log(1 + exp(−y ŷ)): −y σ(−y ŷ)."""
    return -y * scalar.sigmoid(-y * y_hat)


@shared
def first_latent(j0, dj):
    """The first latent column (j ≥ 1) among the owned columns j0, j0 + dj, ...: the loops over
    latent columns start there, and the owner of column 0 (w) handles it apart, so that no
    column loop has a branch (on the CPU, (j0, dj) = (0, 1) and this is the constant 1)."""
    return j0 if j0 > 0 else dj


@shared
def w_gradient(dl, p, lam_w):
    """∂f/∂w_i of a touched row, f = ℓ + ½ Σ_{i ∈ idx} (λ_w w_i² + λ_v ‖v_i‖²) (per-touch L2):
    dℓ/dŷ + λ_w w_i. With λ = 0 the added term is 0.0, the unpenalised gradient bit for bit."""
    return dl + lam_w * p


@shared
def v_gradient(dl, s_j, p, lam_v):
    """∂f/∂v_ij of a touched row (f as in :func:`w_gradient`): dℓ/dŷ · (Σ v − v_i)_j + λ_v v_ij,
    with ``s_j`` the sample's column sum (Σ v)_j and ``p`` = v_ij."""
    return dl * (s_j - p) + lam_v * p


@shared
def logistic_loss_slope(y, y_hat):
    """(ℓ, dℓ/dŷ) of the logistic loss at one sample, sharing one exponential: with m = y ŷ,
    ℓ = log(1 + e^(−m)) and dℓ/dŷ = −y σ(−m), both from e = e^(−|m|).

    The same floats as ``scalar.softplus_neg(m)`` and :func:`logistic_slope` (each of which
    computes the same e^(−|m|) in its own branch; y = ±1, so −y ŷ = −m exactly).
    """
    m = y * y_hat
    e = math.exp(-abs(m))
    if m > 0:
        return math.log1p(e), -y * (e / (1.0 + e))
    return -m + math.log1p(e), -y * (1.0 / (1.0 + e))


@shared
def prox_coefficients(B, A, C, d, eta, y):
    """(β, c, 1/E) of the exact prox step: β = η y z*, c = β/(1 − (d − 1)β), E = 1 + β (chapter 06).

    z* solves the dual problem from the sample scalars (:func:`fmedu.prox.scalar.newton_z`);
    then w0 and every w_i grow by β and each v_i ← (v_i + c Σ v)/E.
    """
    z = scalar.newton_z(B, A, C, float(d), eta, y, MAX_NEWTON)[0]
    beta = eta * y * z
    return beta, beta / (1.0 - (d - 1.0) * beta), 1.0 / (1.0 + beta)


@shared
def prox_step_coefficients(B, A, C, d, eta, y, w0, w_sum, lam_w, lam_v, linearised):
    """(β, c, f, ρ) of a prox run's step: w0 += β, w_i ← (w_i + β) ρ, v_i ← (v_i + c Σ v) f.

    Without a penalty (and not ``linearised``) the unpenalised :func:`prox_coefficients` with
    ρ = 1.0, so such runs are bit for bit the old ones; otherwise the penalised step of
    :mod:`fmedu.engine.penalised` (``w_sum`` = Σ_idx w_i).
    """
    if lam_w == 0.0 and lam_v == 0.0 and not linearised:
        beta, c, inv_E = prox_coefficients(B, A, C, d, eta, y)
        return beta, c, inv_E, 1.0
    return penalised.coefficients(w0, w_sum, A, C, float(d), eta, y, lam_w, lam_v, linearised, MAX_NEWTON)


@shared
def prox_row(theta_i, j0, j1, dj, col_s, beta, c, inv_E, exact, rho):
    """The prox step on the owned columns of one touched row; ``exact=False`` leaves V alone
    (erratum E3).

    w_i ← (w_i + β) ρ, v_i ← (v_i + c Σ v) / E; ρ = 1/(1 + ηλ_w) is the per-touch penalty's
    shrink (exactly 1.0 without it, :mod:`fmedu.engine.penalised`).
    """
    if j0 == 0:
        theta_i[0] = prox_w(theta_i[0], beta, rho)
    if exact:
        for j in range(first_latent(j0, dj), j1, dj):
            theta_i[j] = prox_v(theta_i[j], col_s[j], c, inv_E)


@shared
def prox_w(p, beta, rho):
    """The prox step's new w_i = (w_i + β) ρ from ``p`` = w_i."""
    return (p + beta) * rho


@shared
def prox_v(p, s_j, c, inv_E):
    """The prox step's new v_ij = (v_ij + c (Σ v)_j) / E from ``p`` = v_ij and ``s_j`` = (Σ v)_j."""
    return (p + c * s_j) * inv_E


@shared
def prox_columns(theta, idx, row, d, j0, j1, dj, col_s, beta, c, inv_E, exact, rho):
    """:func:`prox_row` on each of sample ``row``'s d rows."""
    for a in range(d):
        prox_row(theta[idx[row, a]], j0, j1, dj, col_s, beta, c, inv_E, exact, rho)


@shared
def sgd_update(p, g, lr):
    """``torch.optim.SGD``: p − lr g."""
    return p - lr * g


@shared
def sgd_row(theta_i, j0, j1, dj, col_s, dl, lr, lam_w, lam_v):
    """SGD on the owned columns of one touched row (gradients from the pre-update values, with
    the per-touch penalty λ_w, λ_v)."""
    if j0 == 0:
        p = theta_i[0]
        theta_i[0] = sgd_update(p, w_gradient(dl, p, lam_w), lr)
    for j in range(first_latent(j0, dj), j1, dj):
        p = theta_i[j]
        theta_i[j] = sgd_update(p, v_gradient(dl, col_s[j], p, lam_v), lr)


@shared
def sgd_columns(theta, idx, row, d, j0, j1, dj, col_s, dl, lr, lam_w, lam_v):
    """:func:`sgd_row` on each of sample ``row``'s d rows."""
    for a in range(d):
        sgd_row(theta[idx[row, a]], j0, j1, dj, col_s, dl, lr, lam_w, lam_v)


@shared
def adagrad_update(p, acc, g, lr):
    """``torch.optim.Adagrad`` (defaults): acc ← acc + g², p ← p − lr g/(√acc + 1e-10); returns (p, acc)."""
    acc = acc + g * g
    return p - lr * (g / (math.sqrt(acc) + ADAGRAD_EPS)), acc


@shared
def adagrad_row(theta_i, acc_i, j0, j1, dj, col_s, dl, lr, lam_w, lam_v):
    """Adagrad on the owned columns of one touched row; ``acc_i`` ``(k + 1,)`` is its sum of
    squared gradients."""
    if j0 == 0:
        p = theta_i[0]
        theta_i[0], acc_i[0] = adagrad_update(p, acc_i[0], w_gradient(dl, p, lam_w), lr)
    for j in range(first_latent(j0, dj), j1, dj):
        p = theta_i[j]
        theta_i[j], acc_i[j] = adagrad_update(p, acc_i[j], v_gradient(dl, col_s[j], p, lam_v), lr)


@shared
def adagrad_columns(theta, acc, idx, row, d, j0, j1, dj, col_s, dl, lr, lam_w, lam_v):
    """:func:`adagrad_row` on each of sample ``row``'s d rows; ``acc`` ``(n, k + 1)``."""
    for a in range(d):
        i = idx[row, a]
        adagrad_row(theta[i], acc[i], j0, j1, dj, col_s, dl, lr, lam_w, lam_v)


@shared
def adam_columns(
    theta, exp_avg, exp_avg_sq, last_step, idx, row, d, j0, j1, dj, col_s, dl, step_size, c2_sqrt, t, lam_w, lam_v
):
    """Adam step t on the owned columns of the touched rows (already caught up to step t − 1);
    ``step_size``, ``c2_sqrt`` from :func:`fmedu.engine.adam.step_factors`.

    The per-touch penalty adds λ p to the gradient of the *touched* rows only. That keeps the
    lazy catch-up exact: the penalised per-sample loss f = ℓ + ½ Σ_{i ∈ idx} λ‖θ_i‖² does not
    depend on an untouched row at all, so that row's gradient, penalty included, is exactly
    zero at that step, which is what :func:`adam_catch_up_rows` assumes for the skipped steps.
    (A penalty on every row at every step, as weight_decay does, would break it.)
    """
    for a in range(d):
        i = idx[row, a]
        adam_row(theta[i], exp_avg[i], exp_avg_sq[i], j0, j1, dj, col_s, dl, step_size, c2_sqrt, lam_w, lam_v)
        last_step[i] = t  # every lane writes the same value


@shared
def adam_row(theta_i, m_i, v_i, j0, j1, dj, col_s, dl, step_size, c2_sqrt, lam_w, lam_v):
    """Adam's step on the owned columns of one touched row (its moments ``m_i``, ``v_i``); see
    :func:`adam_columns`."""
    if j0 == 0:
        p = theta_i[0]
        theta_i[0], m_i[0], v_i[0] = adam.adam_update(p, m_i[0], v_i[0], w_gradient(dl, p, lam_w), step_size, c2_sqrt)
    for j in range(first_latent(j0, dj), j1, dj):
        p = theta_i[j]
        theta_i[j], m_i[j], v_i[j] = adam.adam_update(
            p, m_i[j], v_i[j], v_gradient(dl, col_s[j], p, lam_v), step_size, c2_sqrt
        )


@shared
def _series_applies_to_row(m_i, v_i, coefs, j0, j1, dj):
    """Whether the series in δ applies to every owned column of a row (its moments ``m_i``, ``v_i``)."""
    failing = 0
    for j in range(j0, j1, dj):
        failing += 0 if adam.series_applies(m_i[j], v_i[j], coefs) else 1
    return failing == 0


@shared
def _replay_columns(theta_i, m_i, v_i, t0, K, lr, j0, j1, dj, tables):
    """The zero-gradient steps t0+1 .. t0+K of a row's owned columns, one by one, in lockstep.

    Stops after the first step that changes none of them (every later move is smaller, see
    :func:`fmedu.engine.adam.replay`); the moments of the remaining steps decay in closed form.
    A column that is NaN counts as unchanged: NaN stays NaN at every later step (a diverged run
    would otherwise replay every step of the gap, as NaN == NaN is false).
    """
    for step in range(1, K + 1):
        step_size, c2_sqrt = adam.step_factors(t0 + step, lr, tables)
        changed = 0
        for j in range(j0, j1, dj):
            p = theta_i[j]
            p_new, m_i[j], v_i[j] = adam.adam_update(p, m_i[j], v_i[j], 0.0, step_size, c2_sqrt)
            theta_i[j] = p_new
            changed += 0 if p_new == p or p_new != p_new else 1  # p_new != p_new: NaN
        if changed == 0:
            decay1, decay2 = adam.decay_factors(K - step, tables[5])
            for j in range(j0, j1, dj):
                m_i[j] *= decay1
                v_i[j] *= decay2
            return


@shared
def adam_catch_up_row(theta, exp_avg, exp_avg_sq, i, t0, t_to, lr, j0, j1, dj, tables, coef):
    """Row i's owned columns from step t0 (its last gradient) to step t_to, zero gradients between.

    The rule of :func:`fmedu.engine.adam.catch_up`, a row at a time: the series in δ (6 terms)
    where it applies to every owned column; otherwise, from step ``T_BC`` on, the expansion
    around δ (12 terms, valid for every δ), and before it a replay of the owned columns. The
    column loops have no branches, so the CPU's vectorise.
    """
    theta_i, m_i, v_i = theta[i], exp_avg[i], exp_avg_sq[i]
    K = t_to - t0
    decay1, decay2 = adam.decay_factors(K, tables[5])
    coefs = adam.gap_coefficients(t0, K, tables, coef)
    if _series_applies_to_row(m_i, v_i, coefs, j0, j1, dj):
        for j in range(j0, j1, dj):
            theta_i[j], m_i[j], v_i[j] = adam.series_catch_up(theta_i[j], m_i[j], v_i[j], lr, coefs, decay1, decay2)
    elif t0 + 1 >= tables[0].shape[0] - 1:
        late_coefs = adam.late_coefficients(tables[6], K)
        for j in range(j0, j1, dj):
            theta_i[j], m_i[j], v_i[j] = adam.late_catch_up(theta_i[j], m_i[j], v_i[j], lr, late_coefs, decay1, decay2)
    else:
        _replay_columns(theta_i, m_i, v_i, t0, K, lr, j0, j1, dj, tables)


@shared
def adam_catch_up_rows(theta, exp_avg, exp_avg_sq, last_step, idx, row, d, t_to, lr, j0, j1, dj, tables, coef):
    """Bring the owned columns of sample ``row``'s rows up to step ``t_to`` (before step t_to + 1).

    ``last_step`` ``(n,)`` is each row's last step with a gradient; it is advanced by
    :func:`adam_columns` once the new step is taken.
    """
    for a in range(d):
        i = idx[row, a]
        t0 = last_step[i]
        if t0 < t_to:
            adam_catch_up_row(theta, exp_avg, exp_avg_sq, i, t0, t_to, lr, j0, j1, dj, tables, coef)


@shared
def adam_flush_columns(theta, exp_avg, exp_avg_sq, last_step, t_to, lr, j0, j1, dj, tables, coef):
    """Every row's owned columns up to step ``t_to`` (the dense torch parameters); ``last_step`` is
    left for the caller to set to ``t_to`` once every lane is done reading it."""
    for i in range(theta.shape[0]):
        t0 = last_step[i]
        if t0 < t_to:
            adam_catch_up_row(theta, exp_avg, exp_avg_sq, i, t0, t_to, lr, j0, j1, dj, tables, coef)


@shared
def column_squares(theta, j0, j1, dj, out):
    """``out[j]`` = Σ_i θ[i, j]² over all rows, for the owned columns (the RMS latent norm's pieces)."""
    for j in range(j0, j1, dj):
        out[j] = 0.0
    for i in range(theta.shape[0]):
        theta_i = theta[i]
        for j in range(j0, j1, dj):
            out[j] += theta_i[j] * theta_i[j]
