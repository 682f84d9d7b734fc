"""What V Vᵀ can express and how many columns k it takes (chapter 03,
``notebooks/03_expressiveness``, teaches every function here); user–item data and what the
predictions determine are in :mod:`fmedu.user_item` (chapter 04).

Symbols (one meaning each, as in chapter 03):

* ``W`` ``(n, n)``: a symmetric *interaction matrix*, the weight W_ij of every pair i ≠ j. An FM's
  pairwise term Σ_{i<j} ⟨v_i, v_j⟩ x_i x_j never reads a diagonal entry, so the diagonal of W
  carries no meaning; the functions here ignore it.
* ``Δ = diag(δ)``: a diagonal we choose; ``W + Δ`` (W's diagonal replaced by δ) is a *completion*
  of W. A V with k columns and (V Vᵀ)_ij = W_ij for all i ≠ j exists iff some completion is
  positive semidefinite (PSD) of rank ≤ k.

Exact functions take and return ``sympy.Matrix`` (rationals or symbols); float ones take
``torch.float64`` tensors. Bad input raises :class:`fmedu.FMInputError` saying how to fix it.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy as sp
import torch
from torch import Tensor

from .errors import FMInputError
from .validation import require_finite

F64 = torch.float64

__all__ = [
    "check_symmetric",
    "offdiag",
    "offdiag_error",
    "notes_dominance_rule_exact",
    "dominant_completion",
    "pair_factor",
    "ldl_factor_exact",
    "schur_completion_exact",
    "psd_factor",
    "trace_identity",
    "trace_lower_bound_exact",
    "block_rank_exact",
    "dimension_count_k",
    "ones_offdiag",
    "planted_offdiag",
    "random_sign_offdiag",
    "offdiag_loss",
    "fit_offdiag",
    "k_examples",
    "k_scan_rows",
    "observed_k",
]


# ---------------------------------------------------------------------------------------------
# Input checks and the off-diagonal
# ---------------------------------------------------------------------------------------------


def check_symmetric(W, name: str = "W") -> None:
    """W must be a square symmetric matrix (sympy Matrix or finite float tensor)."""
    if isinstance(W, sp.MatrixBase):
        if W.rows != W.cols:
            raise FMInputError(f"{name} must be square (n, n), got shape {W.shape}")
        if not (W - W.T).is_zero_matrix:
            raise FMInputError(
                f"{name} must be symmetric; an FM's interactions are symmetric (use (W + W.T) / 2 to symmetrise)"
            )
        return
    if not isinstance(W, Tensor):
        raise FMInputError(
            f"{name} must be a torch.Tensor or a sympy Matrix, got {type(W).__name__}; "
            f"convert it with torch.as_tensor({name}, dtype=torch.float64)"
        )
    if W.dim() != 2 or W.shape[0] != W.shape[1]:
        raise FMInputError(f"{name} must be square (n, n), got shape {tuple(W.shape)}")
    if not W.is_floating_point():
        raise FMInputError(f"{name} has dtype {W.dtype}; use {name}.to(torch.float64)")
    require_finite(name, W)
    gap = (W - W.T).abs().max() if W.numel() else torch.tensor(0.0)
    if float(gap) > 1e-12 * max(1.0, float(W.abs().max())):
        raise FMInputError(
            f"{name} must be symmetric (max |W - W.T| = {float(gap):.3g}); use (W + W.T) / 2 to symmetrise"
        )


def _n(W) -> int:
    return W.rows if isinstance(W, sp.MatrixBase) else W.shape[0]


def offdiag(W) -> Tensor | sp.Matrix:
    """W with its diagonal set to 0 (the only part an FM reads). sympy or torch."""
    check_symmetric(W)
    if isinstance(W, sp.MatrixBase):
        return sp.Matrix(W.rows, W.cols, lambda i, j: 0 if i == j else W[i, j])
    return W - torch.diag(torch.diagonal(W))


def offdiag_error(V, W) -> Tensor | sp.Expr:
    """max_{i≠j} |(V Vᵀ)_ij − W_ij|: how far V is from expressing W (exact 0 for sympy input when it does)."""
    G = V * V.T if isinstance(V, sp.MatrixBase) else V @ V.T
    D = offdiag(G - W)
    if isinstance(D, sp.MatrixBase):
        return max((sp.Abs(sp.simplify(e)) for e in D), default=sp.Integer(0))
    return D.abs().max()


# ---------------------------------------------------------------------------------------------
# A free diagonal: dominance, the pair factor, LDLᵀ
# ---------------------------------------------------------------------------------------------


def notes_dominance_rule_exact(M: sp.Matrix) -> tuple[bool, bool, sp.Expr]:
    """(rule as written holds, strict diagonal dominance holds, smallest eigenvalue) for an exact M.

    "Rule as written" (the research notes): M_ii > Σ_{j≠i} M_ij, no absolute values. Strict
    diagonal dominance: M_ii > Σ_{j≠i} |M_ij|. Chapter 03, erratum E7.
    """
    check_symmetric(M, "M")
    rows = range(M.rows)
    written = all(M[i, i] > sum(M[i, j] for j in rows if j != i) for i in rows)
    strict = all(M[i, i] > sum(abs(M[i, j]) for j in rows if j != i) for i in rows)
    return bool(written), bool(strict), min(M.eigenvals())


def dominant_completion(W, eps=0) -> Tensor | sp.Matrix:
    """W + Δ with δ_i = Σ_{j≠i} |W_ij| + eps: the diagonally dominant completion.

    PSD for eps ≥ 0 (:func:`pair_factor` writes it as V Vᵀ), positive definite for eps > 0.
    Exact for sympy input (use a Rational eps).
    """
    check_symmetric(W)
    if isinstance(eps, (int, float)) and eps < 0 or (isinstance(eps, sp.Basic) and eps.is_negative):
        raise FMInputError(f"eps must be ≥ 0 (a negative margin can break PSD), got {eps}")
    W0 = offdiag(W)
    if isinstance(W0, sp.MatrixBase):
        return W0 + sp.diag(*[sum(sp.Abs(e) for e in W0.row(i)) + eps for i in range(W0.rows)])
    return W0 + torch.diag(W0.abs().sum(1) + eps)


def pair_factor(W) -> Tensor | sp.Matrix:
    """An explicit V with V Vᵀ = dominant_completion(W, 0): one column per non-zero pair i < j.

    Column (i, j) is √|W_ij| (e_i + sign(W_ij) e_j); its outer product puts |W_ij| on the
    diagonal at i and j and W_ij at (i, j) and (j, i). Summed over pairs this is exactly the
    dominant completion, which proves that completion PSD. ``(n, #pairs)``; exact for sympy
    input (symbols allowed: √|a|² sign(a) = a for real a).
    """
    check_symmetric(W)
    n = _n(W)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if W[i, j] != 0]
    if isinstance(W, sp.MatrixBase):
        V = sp.zeros(n, max(len(pairs), 1))
        for c, (i, j) in enumerate(pairs):
            V[i, c] = sp.sqrt(sp.Abs(W[i, j]))
            V[j, c] = sp.sign(W[i, j]) * sp.sqrt(sp.Abs(W[i, j]))
        return V
    V = torch.zeros(n, max(len(pairs), 1), dtype=W.dtype)
    for c, (i, j) in enumerate(pairs):
        V[i, c] = W[i, j].abs().sqrt()
        V[j, c] = torch.sign(W[i, j]) * W[i, j].abs().sqrt()
    return V


def ldl_factor_exact(M: sp.Matrix) -> sp.Matrix:
    """Exact V with V Vᵀ = M for a PSD rational M, from M = L D Lᵀ: V = L √D (zero pivots dropped).

    Symmetric Gaussian elimination: L unit lower-triangular, D the diagonal of pivots. The
    pivots are exact rationals, so "every pivot ≥ 0" is an exact PSD certificate and the
    number of positive pivots is rank(M), the number of columns of V. Raises for a negative
    pivot (M is not PSD) or a zero pivot with non-zeros below it (M is not PSD either).
    """
    check_symmetric(M, "M")
    n = M.rows
    L, D = sp.eye(n), sp.zeros(n, n)
    S = M.copy()  # the Schur complement, updated in place
    for p in range(n):
        d = S[p, p]
        if d < 0:
            raise FMInputError(f"M is not PSD: pivot {p} is {d} < 0")
        if d == 0:
            if any(S[i, p] != 0 for i in range(p + 1, n)):
                raise FMInputError(
                    f"zero pivot {p} with non-zeros below it: M is not PSD "
                    "(a PSD matrix with a zero diagonal entry has a zero row)"
                )
            continue
        D[p, p] = d
        for i in range(p + 1, n):
            L[i, p] = S[i, p] / d
        for i in range(p + 1, n):
            for j in range(p + 1, n):
                S[i, j] -= L[i, p] * L[j, p] * d
    keep = [p for p in range(n) if D[p, p] != 0]
    return sp.Matrix.hstack(*[L[:, p] * sp.sqrt(D[p, p]) for p in keep]) if keep else sp.zeros(n, 1)


def schur_completion_exact(W: sp.Matrix) -> sp.Matrix:
    """A PSD completion W + Δ of rank ≤ n − 1 (n ≥ 2), exact: rational W gives a rational Δ.

    δ_i = Σ_{j≠i} |W_ij| + 1 for i < n − 1 makes the leading (n−1)×(n−1) block M₁ strictly
    dominant, hence positive definite; the last entry δ = gᵀ M₁⁻¹ g (g: the last column of W
    above the diagonal) makes the last pivot of L D Lᵀ zero. So :func:`ldl_factor_exact`
    returns n − 1 columns: k ≤ n − 1 for every W (chapter 03).
    """
    check_symmetric(W)
    n = W.rows
    if n < 2:
        raise FMInputError(f"W must be at least 2×2 to leave a zero pivot, got {W.shape}")
    W0 = sp.Matrix(offdiag(W))
    lead = W0[: n - 1, : n - 1]
    M1 = lead + sp.diag(*[sum(sp.Abs(e) for e in lead.row(i)) + 1 for i in range(n - 1)])
    g = W0[: n - 1, n - 1]
    last = (g.T * M1.inv() * g)[0, 0]
    return W0 + sp.diag(*([M1[i, i] for i in range(n - 1)] + [last]))


def psd_factor(M: Tensor, rtol: float = 1e-10) -> Tensor:
    """Float V with V Vᵀ ≈ M for PSD M, from eigh: V = U √λ over eigenvalues > rtol·λ_max.

    ``(n, r)`` with r the numerical rank. Raises if M has an eigenvalue clearly below zero.
    """
    check_symmetric(M, "M")
    lam, U = torch.linalg.eigh(M)
    top = float(lam.abs().max()) if lam.numel() else 0.0
    if float(lam.min()) < -1e-9 * max(top, 1.0):
        raise FMInputError(
            f"M is not PSD (smallest eigenvalue {float(lam.min()):.3g}); complete its diagonal "
            "first, e.g. with dominant_completion(M)"
        )
    keep = lam > rtol * max(top, 1e-300)
    return U[:, keep] * lam[keep].sqrt()


def trace_identity(n: int, k: int) -> sp.Expr:
    """trace(V Vᵀ) − Σ_{i,f} v_if² for a symbolic V ``(n, k)``, expanded (it is 0)."""
    V = sp.Matrix(n, k, lambda i, f: sp.Symbol(f"v_{i + 1}_{f + 1}", real=True))
    return sp.expand((V * V.T).trace() - sum(e**2 for e in V))


def trace_lower_bound_exact(W: sp.Matrix) -> sp.Expr:
    """2 Σ_{i<j} |W_ij| / (n − 1): no PSD completion of W has a smaller trace (n ≥ 2).

    For a PSD completion M and σ = sign(W_ij) (either sign where W_ij = 0), (e_i − σ e_j)ᵀ M (e_i − σ e_j) =
    M_ii + M_jj − 2|W_ij| ≥ 0; summed over the pairs, (n − 1)·trace M ≥ 2 Σ_{i<j} |W_ij|.
    The dominant completion's trace is 2 Σ_{i<j} |W_ij|, exactly n − 1 times the bound.
    """
    check_symmetric(W)
    n = W.rows
    if n < 2:
        raise FMInputError(f"W must be at least 2×2, got {W.shape}")
    return 2 * sum(sp.Abs(W[i, j]) for i, j in itertools.combinations(range(n), 2)) / (n - 1)


# ---------------------------------------------------------------------------------------------
# How large must k be
# ---------------------------------------------------------------------------------------------


def block_rank_exact(W: sp.Matrix, rows, cols) -> int:
    """rank W[rows, cols] for disjoint index sets: a lower bound on k.

    For i ∈ rows, j ∈ cols the entries are off the diagonal, so V[rows] V[cols]ᵀ must equal
    W[rows, cols], and a product through k columns has rank ≤ k.
    """
    if set(rows) & set(cols):
        raise FMInputError("rows and cols must be disjoint: a block that touches the diagonal is not fixed by W")
    return W.extract(list(rows), list(cols)).rank()


def dimension_count_k(n: int) -> int:
    """Smallest k with n·k − k(k−1)/2 ≥ n(n−1)/2: free numbers in V (up to rotations) ≥ pairs.

    With fewer columns, the off-diagonals V can reach form a set of volume zero in the
    n(n−1)/2-dimensional space of off-diagonals (Sard's theorem), so almost every W drawn
    from a continuous distribution needs at least this many columns (chapter 03).
    """
    if not (isinstance(n, int) and n >= 1):
        raise FMInputError(f"n must be a positive int, got {n!r}")
    return next(k for k in range(n + 1) if n * k - k * (k - 1) // 2 >= n * (n - 1) // 2)


def ones_offdiag(n: int, sign: int = 1) -> sp.Matrix:
    """sign·(11ᵀ − I): every pair interacts with the same weight ±1 (exact)."""
    return sign * (sp.ones(n, n) - sp.eye(n))


def planted_offdiag(n: int, r: int, seed: int) -> tuple[sp.Matrix, sp.Matrix]:
    """(W, V0): W = off-diagonal of V0 V0ᵀ for an integer V0 ``(n, r)`` with entries in −3…3."""
    rng = np.random.default_rng(seed)
    V0 = sp.Matrix(rng.integers(-3, 4, size=(n, r)).tolist())
    return offdiag(V0 * V0.T), V0


def random_sign_offdiag(n: int, seed: int) -> sp.Matrix:
    """Symmetric W with independent random ±1 off-diagonal entries and zero diagonal (exact)."""
    rng = np.random.default_rng(seed)
    W = sp.zeros(n, n)
    for i, j in itertools.combinations(range(n), 2):
        W[i, j] = W[j, i] = int(rng.choice([-1, 1]))
    return W


def offdiag_loss(V: np.ndarray, W: np.ndarray) -> tuple[float, np.ndarray]:
    """Σ_{i≠j} ((V Vᵀ)_ij − W_ij)² and its gradient 4·R·V (R the residual off the diagonal, symmetric)."""
    R = V @ V.T - W
    np.fill_diagonal(R, 0.0)
    return float((R * R).sum()), 4.0 * R @ V


def fit_offdiag(W, k: int, seeds=(0, 1, 2, 3), maxiter: int = 3000) -> tuple[float, np.ndarray]:
    """Least-squares fit of V ``(n, k)`` to W's off-diagonal, best of several random starts.

    Returns (relative error ‖off(V Vᵀ − W)‖_F / ‖off(W)‖_F, V). scipy L-BFGS-B with the
    analytic gradient of :func:`offdiag_loss`. A small error is evidence (observed, not
    proof) that k columns suffice; a large one after several starts suggests they do not.
    """
    from scipy.optimize import minimize

    if not (isinstance(k, int) and k >= 1):
        raise FMInputError(f"k must be a positive int, got {k!r}")
    Wn = np.array(W.tolist(), dtype=float) if isinstance(W, sp.MatrixBase) else np.asarray(W, dtype=float)
    np.fill_diagonal(Wn, 0.0)
    n = Wn.shape[0]
    norm = np.sqrt((Wn * Wn).sum())
    scale = np.sqrt(np.abs(Wn).sum() / max(n * (n - 1), 1)) + 1e-3
    best_rel, best_V = np.inf, np.zeros((n, k))
    for seed in seeds:
        x0 = scale * np.random.default_rng(seed).standard_normal(n * k)

        def fun(flat):
            value, grad = offdiag_loss(flat.reshape(n, k), Wn)
            return value, grad.ravel()

        res = minimize(
            fun,
            x0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": maxiter, "ftol": 1e-30, "gtol": 1e-14, "maxcor": 30},
        )
        rel = np.sqrt(max(res.fun, 0.0)) / norm if norm > 0 else np.sqrt(max(res.fun, 0.0))
        if rel < best_rel:
            best_rel, best_V = rel, res.x.reshape(n, k)
    return float(best_rel), best_V


def all_minus_one_lower_bound(n: int) -> int:
    """Chapter 03's rank argument for the all −1 pattern, computed rather than stated: every
    completion is P − 11ᵀ with P = diag(p) and every p_i ≥ 1 (a PSD matrix has a non-negative
    diagonal), and rank(P) ≤ rank(P − 11ᵀ) + rank(11ᵀ), so rank(P − 11ᵀ) ≥ rank(P) − rank(11ᵀ).
    The ranks are computed: P with positive symbolic p_i, and 11ᵀ."""
    if not isinstance(n, int) or n < 2:
        raise FMInputError(f"n must be an int >= 2, got {n!r}")
    P = sp.diag(*sp.symbols(f"p_1:{n + 1}", positive=True))
    return int(P.rank() - sp.ones(n, n).rank())


def simplex_factor(n: int) -> sp.Matrix:
    """An exact V matching the all −1 pattern off the diagonal: v_i = √n (e_i − 1/n) have
    ⟨v_i, v_j⟩ = −1 for i ≠ j; their Gram matrix nI − 11ᵀ, factored by :func:`ldl_factor_exact`,
    gives a V with one column per positive pivot (the regular simplex; 120° apart for n = 3)."""
    if not isinstance(n, int) or n < 2:
        raise FMInputError(f"n must be an int >= 2, got {n!r}")
    return ldl_factor_exact(n * sp.eye(n) - sp.ones(n, n))


def k_examples(n: int = 10, seed: int = 0) -> dict[str, tuple[sp.Matrix, int, int, sp.Matrix]]:
    """Named off-diagonals with proven bounds on the smallest k: name → (W, lower, upper, V).

    Every bound is computed, none is typed in. ``V`` is an exact factor that matches W off the
    diagonal, and ``upper`` is its number of columns (the certificate of the upper bound).
    Lower bounds:

    * planted rank 3: the rank of an off-diagonal block; upper from the planted V0;
    * all +1: lower 1 (the rank of a non-zero block), upper from v_i = 1 for all i;
    * all −1: lower from :func:`all_minus_one_lower_bound`, upper from :func:`simplex_factor`;
    * random ±1: lower = the largest rank of the off-diagonal blocks tried, upper from the Schur
      completion (:func:`schur_completion_exact` factored by :func:`ldl_factor_exact`).
    """
    planted, V0 = planted_offdiag(n, 3, seed)
    signs = random_sign_offdiag(n, seed)
    plus = ones_offdiag(n, 1)
    half = list(range(n // 2)), list(range(n // 2, n))
    rng = np.random.default_rng(seed)
    splits = [half] + [(list(p[: n // 2]), list(p[n // 2 :])) for p in (rng.permutation(n) for _ in range(20))]
    sign_lower = max(block_rank_exact(signs, r, c) for r, c in splits)
    V_signs = ldl_factor_exact(schur_completion_exact(signs))
    V_minus = simplex_factor(n)
    return {
        "planted rank 3": (planted, block_rank_exact(planted, *half), V0.shape[1], V0),
        "all +1": (plus, block_rank_exact(plus, *half), 1, sp.ones(n, 1)),
        "all -1": (ones_offdiag(n, -1), all_minus_one_lower_bound(n), V_minus.shape[1], V_minus),
        "random ±1": (signs, sign_lower, V_signs.shape[1], V_signs),
    }


K_SCAN_N = 10


def k_scan_rows(n: int = K_SCAN_N, seeds=(0, 1, 2, 3)) -> list[dict]:
    """Rows ``{example, k, rel_error, proven_lower, proven_upper}``: :func:`fit_offdiag` for the
    examples of :func:`k_examples` and every k = 1 … n (chapter 03's figure)."""
    rows = []
    for name, (W, lower, upper, _) in k_examples(n).items():
        for k in range(1, n + 1):
            rel = fit_offdiag(W, k, seeds, maxiter=1500)[0]
            rows.append({"example": name, "k": k, "rel_error": rel, "proven_lower": lower, "proven_upper": upper})
    return rows


def observed_k(rows: list[dict], tol: float = 1e-8) -> dict[str, int]:
    """Smallest k whose best fit has relative error ≤ tol, per example (an observation, not a proof)."""
    out: dict[str, int] = {}
    for r in rows:
        if r["rel_error"] <= tol and r["example"] not in out:
            out[r["example"]] = r["k"]
    return out
