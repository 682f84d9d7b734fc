"""The step-size bound of the prox step and the matrix S(z) behind it (chapter 05), with penalties.

S(z) = (1 + β) I − β 11ᵀ (d × d) with β = η y z is η times the V-block Hessian of the prox
subproblem for fixed z; it must stay positive definite for every z in [0, 1].
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..validation import FMInputError, check_label, check_nnz, check_penalty

__all__ = [
    "step_size_bound",
    "step_size_bound_per_feature",
    "smallest_eigenvalue_k",
    "s_matrix",
    "s_eigenvalues",
    "s_inverse",
    "solve_vectors",
]


def step_size_bound(nnz: int, kind: str = "exact", y=None, lam_v=0.0) -> float:
    """Largest step size for which the prox step is well posed on a sample with ``nnz`` ones.

    ``kind="published"``: the proximal-point blog post's 1/(2·nnz + 1) (derived with a bookkeeping
    slip, erratum E2; it is safe but (nnz − 1)/(2·nnz + 1) of the exact bound: 1/5 at nnz = 2,
    10/23 at nnz = 11, approaching 1/2 only for large nnz). It knows no penalty.

    ``kind="exact"``: the supremum of η such that S(z) = (1+ηyz)I − ηyz·11ᵀ (nnz × nnz) is
    positive definite for every z ∈ [0, 1]; η must be *strictly* below it. The eigenvalues
    are 1 − ηyz(nnz−1) (along 1) and 1 + ηyz (orthogonal to 1, present when nnz ≥ 2):

    * y = +1: 1 − ηz(nnz−1) > 0 for all z ⇔ η < 1/(nnz−1);
    * y = −1: 1 − ηz > 0 for all z ⇔ η < 1 (only when nnz ≥ 2);
    * y = None: valid for both labels, min of the two = 1/(nnz−1) for nnz ≥ 2;
    * nnz ≤ 1: no pairs, S = I (or empty): ``math.inf``.

    With the per-touch penalty ``lam_v`` = λ_v ≥ 0 (one number; for one strength per feature
    see :func:`step_size_bound_per_feature`) the matrix is S_λ(z) = S(z) + ηλ_v I, whose
    eigenvalues are 1 + ηλ_v − ηyz(nnz−1) and 1 + ηλ_v + ηyz: η < 1/(nnz − 1 − λ_v) for
    y = +1 (``math.inf`` once λ_v ≥ nnz − 1) and η < 1/(1 − λ_v) for y = −1 (``math.inf``
    once λ_v ≥ 1). At λ_v = 0 these are the bounds above.

    Chapter 05 derives and plots it; :func:`~fmedu.prox.prox_step` refuses η at or beyond it.
    """
    nnz = check_nnz(nnz)
    lam = check_penalty("lam_v", lam_v)
    assert isinstance(lam, float)
    if kind == "published":
        if lam != 0.0:
            raise FMInputError("the published bound knows no penalty; pass lam_v=0.0 or use kind='exact'")
        return 1.0 / (2 * nnz + 1)
    if kind != "exact":
        raise FMInputError(f"kind must be 'exact' or 'published', got {kind!r}")
    if nnz <= 1:
        return math.inf
    if y is None:
        return min(step_size_bound(nnz, kind, 1.0, lam), step_size_bound(nnz, kind, -1.0, lam))
    if lam == 0.0:
        return 1.0 / (nnz - 1) if check_label(y) > 0 else 1.0
    if check_label(y) > 0:
        return 1.0 / (nnz - 1 - lam) if nnz - 1 > lam else math.inf
    return 1.0 / (1.0 - lam) if lam < 1.0 else math.inf


def _bisect_increasing(f, lo: float, hi: float) -> float:
    """The root of an increasing function with f(lo) < 0 < f(hi), bisected to adjacent floats."""
    for _ in range(2100):  # far more than enough: each halving fixes a bit of a float64
        mid = 0.5 * (lo + hi)
        if not (lo < mid < hi):
            break
        if f(mid) < 0.0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def smallest_eigenvalue_k(lam_v_idx, y) -> float:
    """μ_min of K = diag(λ_i) + y (I − 11ᵀ), the sample's per-feature penalties λ_i (d of them).

    The secular equation of a diagonal-plus-rank-one matrix: with c_i = λ_i + y,
    K = diag(c) − y 11ᵀ, and K x = μ x with 1ᵀx ≠ 0 gives Σ_i 1/(c_i − μ) = y.

    * y = +1: f(μ) = Σ 1/(c_i − μ) − 1 increases from −1 to +∞ on (−∞, min c), and
      f(min c − d) ≤ 0, so μ_min is its root in [min c − d, min c): bisection.
    * y = −1: K = diag(c) + 11ᵀ; adding a positive semidefinite rank one moves eigenvalues up
      and interlaces them, so μ_min ∈ [c_(1), c_(2)] (sorted c). When the smallest c repeats,
      μ_min = c_(1) (its eigenvector sums to 0); otherwise g(μ) = 1 − Σ 1/(μ − c_i) increases
      from −∞ to +∞ on (c_(1), c_(2)) and μ_min is its root: bisection.
    * d ≤ 1: K = (λ_1) (no pairs): μ_min = λ_1 (``math.inf`` for d = 0).
    """
    lam = [float(v) for v in lam_v_idx]
    sign = check_label(y)
    d = len(lam)
    if d == 0:
        return math.inf
    if d == 1:
        return lam[0]
    c = sorted(v + sign for v in lam)
    if sign > 0:
        return _bisect_increasing(lambda mu: sum(1.0 / (ci - mu) for ci in c) - 1.0, c[0] - d, c[0])
    if c[1] == c[0]:
        return c[0]
    return _bisect_increasing(lambda mu: 1.0 - sum(1.0 / (mu - ci) for ci in c), c[0], c[1])


def step_size_bound_per_feature(lam_v_idx, y=None) -> float:
    """The exact bound for one penalty strength per feature: λ_i for the sample's d features.

    For fixed z the V-block matrix is S_λ(z) = diag(1 + ηλ_i) + ηyz(I − 11ᵀ) = I + η(diag(λ) + yz(I − 11ᵀ)).
    It is linear in z and positive definite at z = 0, so it is positive definite on all of
    [0, 1] exactly when it is at z = 1 (the PD matrices form a convex set), i.e. when
    I + ηK ≻ 0 with K = diag(λ) + y(I − 11ᵀ). That holds for every η when μ_min(K) ≥ 0 and
    for η < −1/μ_min(K) otherwise; μ_min comes from the secular equation
    (:func:`smallest_eigenvalue_k`). ``y=None``: the smaller of the two labels' bounds.
    With all λ_i equal this is :func:`step_size_bound` (``"exact"``).
    """
    if isinstance(lam_v_idx, Tensor):
        lam_v_idx = lam_v_idx.detach().to(torch.float64).flatten().tolist()
    if y is None:
        return min(step_size_bound_per_feature(lam_v_idx, 1.0), step_size_bound_per_feature(lam_v_idx, -1.0))
    mu = smallest_eigenvalue_k(lam_v_idx, y)
    return -1.0 / mu if mu < 0.0 else math.inf


def s_matrix(nnz: int, eta: float, y, z: float, dtype=torch.float64) -> Tensor:
    """S(z) = (1 + β) I − β 11ᵀ with β = η y z, shape ``(nnz, nnz)`` (η × the V-block Hessian)."""
    beta = float(eta) * check_label(y) * float(z)
    return (1 + beta) * torch.eye(nnz, dtype=dtype) - beta * torch.ones(nnz, nnz, dtype=dtype)


def s_eigenvalues(nnz: int, eta: float, y, z: float) -> tuple[float, float]:
    """(λ_mean, λ_perp) = (1 − β(nnz−1), 1 + β): along 1, and on 1's orthogonal complement."""
    beta = float(eta) * check_label(y) * float(z)
    return 1.0 - beta * (nnz - 1), 1.0 + beta


def s_inverse(nnz: int, eta: float, y, z: float, dtype=torch.float64) -> Tensor:
    """S(z)⁻¹ by Sherman–Morrison: (I + c 11ᵀ)/(1 + β), c = β/(1 − β(nnz−1)) (chapter 06)."""
    beta = float(eta) * check_label(y) * float(z)
    c = beta / (1.0 - beta * (nnz - 1))
    return (torch.eye(nnz, dtype=dtype) + c * torch.ones(nnz, nnz, dtype=dtype)) / (1.0 + beta)


def solve_vectors(V_idx: Tensor, eta: float, y, z: float, lam_v: float | Tensor = 0.0) -> Tensor:
    """S(z)⁻¹ V_idx without forming a matrix (formula (C)): ``(nnz, k)`` → ``(nnz, k)``.

    (V_idx + c·1 sᵀ)/(1 + β) with s = Σ_i v_i (the column sums): O(nnz·k).

    With a penalty the matrix is S_λ(z) = S(z) + η diag(λ_i):

    * one strength ``lam_v`` (a float > 0): v_i ← (v_i + c s) f with (c, f) from
      :func:`fmedu.engine.penalised.latent_coefficients` (c = β/D, f = 1/E, a = 1 + ηλ_v);
    * one strength per touched row (``lam_v`` a tensor of length nnz): S_λ = diag(e) − β 11ᵀ
      with e_i = 1 + ηλ_i + β. Sherman–Morrison with u_i = 1/e_i, γ = Σ u_i, D' = 1 − βγ:
      S_λ⁻¹ = diag(u) + (β/D') u uᵀ, so v_i ← u_i (v_i + (β/D') r) with r = Σ_j u_j v_j, O(nnz·k).
    """
    beta = float(eta) * check_label(y) * float(z)
    nnz = V_idx.shape[0]
    if isinstance(lam_v, Tensor):
        u = 1.0 / (1.0 + float(eta) * lam_v.to(V_idx.dtype) + beta)
        r = (u[:, None] * V_idx).sum(0, keepdim=True)
        return u[:, None] * (V_idx + (beta / (1.0 - beta * float(u.sum()))) * r)
    if lam_v != 0.0:
        from ..engine.penalised import latent_coefficients  # here: fmedu.engine imports this module

        c, f = latent_coefficients(beta, float(nnz), 1.0 + float(eta) * lam_v, False)
        return (V_idx + c * V_idx.sum(0, keepdim=True)) * f
    c = beta / (1.0 - beta * (nnz - 1))
    return (V_idx + c * V_idx.sum(0, keepdim=True)) / (1.0 + beta)
