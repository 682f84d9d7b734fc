"""What V Vᵀ can express, how large k must be, user–item blocks, and what the predictions
determine. Chapter 03 (``notebooks/03_expressiveness``) teaches every function here.

Symbols (one meaning each, as in chapter 03):

* ``W`` ``(n, n)``: a symmetric *interaction matrix*, the weight W_ij of every pair i ≠ j. An FM's
  pairwise term Σ_{i<j} ⟨v_i, v_j⟩ x_i x_j never reads a diagonal entry, so the diagonal of W
  carries no meaning; the functions here ignore it.
* ``Δ = diag(δ)``: a diagonal we choose; ``W + Δ`` (W's diagonal replaced by δ) is a *completion*
  of W. A V with k columns and (V Vᵀ)_ij = W_ij for all i ≠ j exists iff some completion is
  positive semidefinite (PSD) of rank ≤ k.
* user–item data: ``n_u`` users (features 0 … n_u − 1), ``n_i`` items (features n_u … n − 1),
  ``V_u``, ``V_i`` the user and item rows of V, ``B`` ``(n_u, n_i)`` the user–item block
  (B_ui = W_{u, n_u+i}), ``a`` ``(n_u,)`` and ``b`` ``(n_i,)`` row and column effects,
  ``J_m = I − 11ᵀ/m`` the centring matrix.

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
from .model import FactorizationMachine, predict_sparse
from .symbolic import fm_prediction
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
    "user_item_idx",
    "all_pairs_idx",
    "one_hot_pair",
    "user_item_table_exact",
    "full_model_table",
    "full_interaction_predict",
    "double_centre",
    "row_column_effects",
    "user_item_min_k",
    "user_item_fm",
    "rank_factor_exact",
    "svd_factor",
    "param_counts",
    "rational_rotation",
    "random_orthogonal",
    "translate_user_item",
    "translate_fixed_nnz",
    "frobenius_sq",
    "pair_interaction_sq",
    "nuclear_norm",
    "procrustes",
    "fit_fm",
    "recovery_samples",
    "planted_recovery",
    "reparametrisation_rows",
    "translation_rows",
    "diagonal_pinned_exact",
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


def k_examples(n: int = 10, seed: int = 0) -> dict[str, tuple[sp.Matrix, int, int, sp.Matrix | None]]:
    """Named off-diagonals with proven bounds on the smallest k: name → (W, lower, upper, V).

    ``V`` is an exact factor with ``upper`` columns that matches W off the diagonal (the
    certificate of the upper bound), or None where the upper bound n − 1 comes from
    :func:`schur_completion_exact` (computed by the caller when wanted). Lower bounds:

    * planted rank 3: the rank of an off-diagonal block; upper 3 from the planted V0;
    * all +1: lower 1 (W ≠ 0), upper 1 (v_i = 1 for all i);
    * all −1: lower n − 1 (chapter 03's rank argument), upper n − 1;
    * random ±1: lower = the largest rank of the off-diagonal blocks tried, upper n − 1.
    """
    planted, V0 = planted_offdiag(n, 3, seed)
    signs = random_sign_offdiag(n, seed)
    half = list(range(n // 2)), list(range(n // 2, n))
    rng = np.random.default_rng(seed)
    splits = [half] + [(list(p[: n // 2]), list(p[n // 2 :])) for p in (rng.permutation(n) for _ in range(20))]
    sign_lower = max(block_rank_exact(signs, r, c) for r, c in splits)
    return {
        "planted rank 3": (planted, block_rank_exact(planted, *half), 3, V0),
        "all +1": (ones_offdiag(n, 1), 1, 1, sp.ones(n, 1)),
        "all -1": (ones_offdiag(n, -1), n - 1, n - 1, None),
        "random ±1": (signs, sign_lower, n - 1, None),
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


# ---------------------------------------------------------------------------------------------
# User–item data
# ---------------------------------------------------------------------------------------------


def user_item_idx(n_u: int, n_i: int) -> Tensor:
    """Every user–item pair as an index batch ``(n_u·n_i, 2)``: [u, n_u + i], user-major order."""
    u, i = torch.meshgrid(torch.arange(n_u), torch.arange(n_i), indexing="ij")
    return torch.stack([u.reshape(-1), n_u + i.reshape(-1)], dim=1)


def all_pairs_idx(n: int) -> Tensor:
    """Every pair of distinct features [a, b], a < b, as an index batch ``(n(n−1)/2, 2)``."""
    return torch.tensor(list(itertools.combinations(range(n), 2)), dtype=torch.int64).reshape(-1, 2)


def one_hot_pair(u: int, i: int, n_u: int, n_i: int) -> sp.Matrix:
    """x = e_u + e_{n_u+i} ``(n_u + n_i, 1)``: user u rates item i (exact)."""
    if not (0 <= u < n_u and 0 <= i < n_i):
        raise FMInputError(f"need 0 ≤ u < n_u = {n_u} and 0 ≤ i < n_i = {n_i}, got u = {u}, i = {i}")
    return sp.Matrix([1 if f in (u, n_u + i) else 0 for f in range(n_u + n_i)])


def user_item_table_exact(w0, w: sp.Matrix, V: sp.Matrix, n_u: int) -> sp.Matrix:
    """The FM's predictions Ŷ_ui = ŷ(e_u + e_{n_u+i}) on every user–item pair, ``(n_u, n_i)``, exact.

    Each entry is the FM's definition (:func:`fmedu.symbolic.fm_prediction`) at a one-hot x.
    """
    n_i = V.rows - n_u
    if not (1 <= n_u < V.rows) or w.rows != V.rows:
        raise FMInputError(f"need 1 ≤ n_u < n = {V.rows} and w of length n, got n_u = {n_u}, len(w) = {w.rows}")
    return sp.Matrix(n_u, n_i, lambda u, i: sp.expand(fm_prediction(one_hot_pair(u, i, n_u, n_i), w0, w, V)))


def full_model_table(w0, w, B) -> Tensor | sp.Matrix:
    """The full model w0 + w_u + w_{n_u+i} + B_ui on every pair, ``(n_u, n_i)`` (sympy or torch).

    ``w`` has length n_u + n_i (users first); ``B`` is the free ``(n_u, n_i)`` interaction block.
    """
    n_u, n_i = B.shape
    if isinstance(B, sp.MatrixBase):
        if w.rows != n_u + n_i:
            raise FMInputError(f"w must have n_u + n_i = {n_u + n_i} entries, got {w.rows}")
        return sp.Matrix(n_u, n_i, lambda u, i: w0 + w[u] + w[n_u + i] + B[u, i])
    if w.shape != (n_u + n_i,):
        raise FMInputError(f"w must have shape (n_u + n_i,) = ({n_u + n_i},), got {tuple(w.shape)}")
    return w0 + w[:n_u, None] + w[None, n_u:] + B


def full_interaction_predict(w0: Tensor, w: Tensor, B: Tensor) -> Tensor:
    """:func:`full_model_table` flattened in the order of :func:`user_item_idx`, ``(n_u·n_i,)``."""
    return full_model_table(w0, w, B).reshape(-1)


def double_centre(M) -> Tensor | sp.Matrix:
    """J M J with J = I − 11ᵀ/m on each side: removes every row and column effect (sympy or torch)."""
    if isinstance(M, sp.MatrixBase):
        Ju = sp.eye(M.rows) - sp.ones(M.rows, M.rows) / M.rows
        Ji = sp.eye(M.cols) - sp.ones(M.cols, M.cols) / M.cols
        return Ju * M * Ji
    return M - M.mean(0, keepdim=True) - M.mean(1, keepdim=True) + M.mean()


def row_column_effects(B) -> tuple[Tensor, Tensor] | tuple[sp.Matrix, sp.Matrix]:
    """(a, b) with B − a 1ᵀ − 1 bᵀ = J B J: a = row means − grand mean, b = column means.

    sympy (exact) or torch. Chapter 03: the linear terms of an FM absorb a and b.
    """
    if isinstance(B, sp.MatrixBase):
        n_u, n_i = B.shape
        grand = sum(B) / (n_u * n_i)
        a = sp.Matrix([sum(B.row(u)) / n_i - grand for u in range(n_u)])
        b = sp.Matrix([sum(B.col(i)) / n_u for i in range(n_i)])
        return a, b
    return B.mean(1) - B.mean(), B.mean(0)


def user_item_min_k(B, rtol: float = 1e-10) -> int:
    """min over a, b of rank(B − a1ᵀ − 1bᵀ) = rank(J B J): the smallest k of a user–item FM that
    reproduces the full model with block B (chapter 03). Exact for sympy; numerical rank for torch."""
    C = double_centre(B)
    if isinstance(C, sp.MatrixBase):
        return int(C.rank())
    s = torch.linalg.svdvals(C)
    return int((s > rtol * max(float(s.max()) if s.numel() else 0.0, 1e-300)).sum())


def rank_factor_exact(B: sp.Matrix) -> tuple[sp.Matrix, sp.Matrix]:
    """Exact rational rank factorisation B = V_u V_iᵀ with rank(B) columns (no square roots).

    V_u = the pivot columns of B, V_iᵀ = the non-zero rows of its reduced row echelon form.
    """
    R, pivots = B.rref()
    if not pivots:
        return sp.zeros(B.rows, 1), sp.zeros(B.cols, 1)
    return B.extract(list(range(B.rows)), list(pivots)), R[: len(pivots), :].T


def svd_factor(B: Tensor, rtol: float = 1e-10) -> tuple[Tensor, Tensor]:
    """Balanced rank factorisation B = V_u V_iᵀ from the SVD B = U Σ Gᵀ: V_u = U√Σ, V_i = G√Σ.

    k = the numerical rank. "Balanced": V_uᵀV_u = V_iᵀV_i = Σ; among all factorisations of B
    it has the smallest ‖V_u‖² + ‖V_i‖², namely 2‖B‖_* (chapter 03, "Going further").
    """
    U, s, Gt = torch.linalg.svd(B, full_matrices=False)
    keep = s > rtol * max(float(s.max()) if s.numel() else 0.0, 1e-300)
    root = s[keep].sqrt()
    return U[:, keep] * root, Gt[keep].T * root


def user_item_fm(w0, w, B) -> tuple:
    """An FM ``(w0, w_fm, V)`` with k = rank(J B J) that reproduces the full model (w0, w, B) on
    every user–item pair: w_fm adds the row and column effects a, b to w, and V stacks a rank
    factorisation of J B J = B − a1ᵀ − 1bᵀ. Exact (rational) for sympy, SVD-based for torch.
    """
    n_u, n_i = B.shape
    a, b = row_column_effects(B)
    C = double_centre(B)
    if isinstance(B, sp.MatrixBase):
        if w.rows != n_u + n_i:
            raise FMInputError(f"w must have n_u + n_i = {n_u + n_i} entries, got {w.rows}")
        V_u, V_i = rank_factor_exact(C)
        return w0, w + sp.Matrix.vstack(a, b), V_u.col_join(V_i)
    if w.shape != (n_u + n_i,):
        raise FMInputError(f"w must have shape (n_u + n_i,) = ({n_u + n_i},), got {tuple(w.shape)}")
    V_u, V_i = svd_factor(C)
    return w0, w + torch.cat([a, b]), torch.cat([V_u, V_i])


def param_counts(n_u: int, n_i: int, k: int) -> dict:
    """Exact parameter counts: full model 1 + n_u + n_i + n_u·n_i against the FM's 1 + n + n·k."""
    n = n_u + n_i
    return {"n_u": n_u, "n_i": n_i, "k": k, "full": 1 + n + n_u * n_i, "fm": 1 + n + n * k}


# ---------------------------------------------------------------------------------------------
# What the predictions determine: rotations, reparametrisations, translations
# ---------------------------------------------------------------------------------------------


def rational_rotation(k: int, i: int, j: int, p: int, q: int) -> sp.Matrix:
    """An exactly orthogonal rational ``(k, k)`` matrix: the rotation in the plane (i, j) with
    cos φ = (p² − q²)/(p² + q²), sin φ = 2pq/(p² + q²) (a Pythagorean triple; p = 2, q = 1 gives 3/5, 4/5)."""
    if not (0 <= i < k and 0 <= j < k and i != j):
        raise FMInputError(f"need two different axes 0 ≤ i, j < k = {k}, got i = {i}, j = {j}")
    if p == 0 and q == 0:
        raise FMInputError("p and q must not both be 0")
    r = sp.Integer(p * p + q * q)
    c, s = sp.Integer(p * p - q * q) / r, sp.Integer(2 * p * q) / r
    Q = sp.eye(k)
    Q[i, i], Q[j, j], Q[i, j], Q[j, i] = c, c, -s, s
    return Q


def random_orthogonal(k: int, gen: torch.Generator) -> Tensor:
    """A random orthogonal ``(k, k)`` float64 matrix (QR of a Gaussian, signs fixed)."""
    Q, R = torch.linalg.qr(torch.randn(k, k, dtype=F64, generator=gen))
    return Q * torch.sign(torch.diagonal(R))


def translate_user_item(w0, w, V, n_u: int, s, t) -> tuple:
    """Shift every user vector by s and every item vector by t ``(k,)``, and move what the shift
    adds to the predictions into the linear terms, so that every user–item prediction is unchanged:

        (v_u + s)·(v_i + t) = v_u·v_i + v_u·t + s·v_i + s·t,
        w_u ← w_u − v_u·t,   w_{n_u+i} ← w_{n_u+i} − s·v_i,   w0 ← w0 − s·t.

    Returns ``(w0, w, V)``; sympy (s, t row matrices ``(1, k)``) or torch (``(k,)``). Chapter 03.
    """
    if isinstance(V, sp.MatrixBase):
        s, t = sp.Matrix(s).reshape(1, V.cols), sp.Matrix(t).reshape(1, V.cols)
        Vt, wt = V.copy(), w.copy()
        for f in range(V.rows):
            user = f < n_u
            Vt[f, :] = V[f, :] + (s if user else t)
            wt[f] = w[f] - ((V[f, :] * (t if user else s).T)[0])
        return w0 - (s * t.T)[0], wt, Vt
    shift = torch.cat([s.expand(n_u, -1), t.expand(V.shape[0] - n_u, -1)])
    other = torch.cat([t.expand(n_u, -1), s.expand(V.shape[0] - n_u, -1)])
    return w0 - s @ t, w - (V * other).sum(1), V + shift


def translate_fixed_nnz(w0, w, V, c, d: int) -> tuple:
    """Shift every latent vector by c and absorb the change for samples with exactly d binary
    non-zeros: Σ_{a<b∈S}(v_a + c)·(v_b + c) = Σ_{a<b∈S} v_a·v_b + (d − 1) Σ_{a∈S} v_a·c + C(d, 2)‖c‖²,
    so w_a ← w_a − (d − 1) v_a·c and w0 ← w0 − C(d, 2)‖c‖². sympy (c ``(1, k)``) or torch. Chapter 03."""
    if isinstance(V, sp.MatrixBase):
        c = sp.Matrix(c).reshape(1, V.cols)
        Vc = V + sp.ones(V.rows, 1) * c
        wc = sp.Matrix([w[a] - (d - 1) * (V[a, :] * c.T)[0] for a in range(V.rows)])
        return w0 - sp.binomial(d, 2) * (c * c.T)[0], wc, Vc
    return w0 - d * (d - 1) / 2 * (c @ c), w - (d - 1) * (V @ c), V + c


def frobenius_sq(V) -> Tensor | sp.Expr:
    """‖V‖_F² = Σ_{i,f} v_if², the usual FM regulariser (exact for sympy)."""
    return sum(e**2 for e in V) if isinstance(V, sp.MatrixBase) else (V * V).sum()


def pair_interaction_sq(V, n_u: int) -> Tensor | sp.Expr:
    """Σ_{u,i} (v_u·v_i)² = ‖V_u V_iᵀ‖_F² = ‖B‖_F²: the regulariser the research notes call more natural."""
    if isinstance(V, sp.MatrixBase):
        B = V[:n_u, :] * V[n_u:, :].T
        return sum(e**2 for e in B)
    B = V[:n_u] @ V[n_u:].T
    return (B * B).sum()


def nuclear_norm(B: Tensor) -> Tensor:
    """‖B‖_* = the sum of the singular values of B."""
    return torch.linalg.svdvals(B).sum()


def procrustes(V_from: Tensor, V_to: Tensor) -> Tensor:
    """Orthogonal Q ``(k, k)`` minimising ‖V_from Q − V_to‖_F (orthogonal Procrustes): Q = U Gᵀ
    from the SVD U Σ Gᵀ = V_fromᵀ V_to."""
    if V_from.shape != V_to.shape:
        raise FMInputError(
            f"V_from and V_to must have the same shape, got {tuple(V_from.shape)} and {tuple(V_to.shape)}"
        )
    U, _, Gt = torch.linalg.svd(V_from.T @ V_to)
    return U @ Gt


# ---------------------------------------------------------------------------------------------
# What a fit recovers
# ---------------------------------------------------------------------------------------------


def fit_fm(
    idx: Tensor, y: Tensor, n: int, k: int, seed: int, *, init_std: float = 0.5, rounds: int = 20, max_iter: int = 200
) -> FactorizationMachine:
    """Fit an FM to (idx, y) by full-batch L-BFGS on the mean squared error (float64, seeded).

    Chapter 03 fits noiseless data from a planted FM, so the loss can go to ~1e-25; the run
    stops early once the loss (at the start of a round) is below 1e-24 or the gradient below 1e-13.
    """
    model = FactorizationMachine(n, k, init_std=init_std, generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.LBFGS(
        model.parameters(),
        lr=1,
        max_iter=max_iter,
        history_size=50,
        tolerance_grad=1e-13,
        tolerance_change=0.0,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = ((predict_sparse(idx, model.w0, model.w, model.V, check=False) - y) ** 2).mean()
        loss.backward()
        return loss

    for _ in range(rounds):
        loss = float(opt.step(closure).detach())
        grads = [p.grad.abs().max() for p in model.parameters() if p.grad is not None]
        if loss < 1e-24 or (grads and float(max(grads)) < 1e-13):
            break
    return model


def _planted(n: int, k: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn((), dtype=F64, generator=gen),
        torch.randn(n, dtype=F64, generator=gen),
        torch.randn(n, k, dtype=F64, generator=gen),
    )


def recovery_samples(setting: str, n: int) -> Tensor:
    """Index batches of the recovery experiments (``n`` = number of features).

    ``"pairs"``: every pair of features (each sample has exactly 2 non-zeros);
    ``"pairs+triples"``: every pair and every triple (2 or 3 non-zeros, padded with −1).
    """
    if setting == "pairs":
        return all_pairs_idx(n)
    if setting == "pairs+triples":
        rows = [list(p) + [-1] for p in itertools.combinations(range(n), 2)]
        rows += [list(p) for p in itertools.combinations(range(n), 3)]
        return torch.tensor(rows, dtype=torch.int64)
    raise FMInputError(f"unknown setting {setting!r}; use 'user-item', 'pairs' or 'pairs+triples'")


RECOVERY_QUANTITIES = ("predictions", "V", "V up to rotation", "w", "B", "JBJ")


def planted_recovery(
    setting: str, seed: int, *, n_u: int = 10, n_i: int = 12, n: int = 10, k: int = 3, planted_seed: int = 3
) -> dict[str, float | None]:
    """Fit an FM to the noiseless predictions of a planted one; max-abs errors of what it recovered.

    ``setting``: ``"user-item"`` (all n_u·n_i pairs), ``"pairs"`` or ``"pairs+triples"``
    (see :func:`recovery_samples`, n features). Keys (:data:`RECOVERY_QUANTITIES`):
    ``predictions``; ``V`` as fitted; ``V up to rotation`` (after the best rotation,
    :func:`procrustes`); ``w``; for user–item ``B`` (= V_u V_iᵀ) and ``JBJ``; None where a
    quantity does not apply (B and JBJ outside user–item data). Chapter 03.
    """
    features = n_u + n_i if setting == "user-item" else n
    w0, w, V = _planted(features, k, planted_seed)
    idx = user_item_idx(n_u, n_i) if setting == "user-item" else recovery_samples(setting, n)
    y = predict_sparse(idx, w0, w, V)
    model = fit_fm(idx, y, features, k, seed)
    with torch.no_grad():
        Vh = model.V.detach()
        out: dict[str, float | None] = {
            "predictions": float((predict_sparse(idx, model.w0, model.w, Vh) - y).abs().max()),
            "V": float((Vh - V).abs().max()),
            "V up to rotation": float((Vh @ procrustes(Vh, V) - V).abs().max()),
            "w": float((model.w - w).abs().max()),
            "B": None,
            "JBJ": None,
        }
        if setting == "user-item":
            B, Bh = V[:n_u] @ V[n_u:].T, Vh[:n_u] @ Vh[n_u:].T
            out["B"] = float((Bh - B).abs().max())
            out["JBJ"] = float((double_centre(Bh) - double_centre(B)).abs().max())
    return out


# ---------------------------------------------------------------------------------------------
# Tables behind chapter 03's regulariser figure
# ---------------------------------------------------------------------------------------------


def _planted_user_item(seed: int, n_u: int, n_i: int, k: int):
    gen = torch.Generator().manual_seed(seed)
    w0 = torch.randn((), dtype=F64, generator=gen)
    w = torch.randn(n_u + n_i, dtype=F64, generator=gen)
    V = torch.randn(n_u + n_i, k, dtype=F64, generator=gen)
    return w0, w, V


def _regulariser_row(theta: float, w0, w, V, n_u: int, y_ref: Tensor) -> dict:
    B = V[:n_u] @ V[n_u:].T
    y = predict_sparse(user_item_idx(n_u, V.shape[0] - n_u), w0, w, V)
    return {
        "theta": float(theta),
        "frobenius_sq": float(frobenius_sq(V)),
        "B_frobenius_sq": float(frobenius_sq(B)),
        "JBJ_frobenius_sq": float(frobenius_sq(double_centre(B))),
        "max_prediction_change": float((y - y_ref).abs().max()),
        "prediction_scale": float(y_ref.abs().max()),
    }


def reparametrisation_rows(seed: int = 3, n_u: int = 10, n_i: int = 12, k: int = 3, thetas=None) -> list[dict]:
    """Regularisers along V_u R_θ, V_i R_θ⁻ᵀ with R_θ = diag(θ, 1/θ, 1, …), started from the
    balanced factor of a planted B: the block B and every user–item prediction stay the same.
    Also ``two_nuclear_norm`` = 2‖B‖_*, the smallest ‖V‖² of any factorisation of B."""
    thetas = np.logspace(-1, 1, 41) if thetas is None else thetas
    w0, w, V = _planted_user_item(seed, n_u, n_i, k)
    B = V[:n_u] @ V[n_u:].T
    V_u, V_i = svd_factor(B)
    V = torch.cat([V_u, V_i])
    y_ref = predict_sparse(user_item_idx(n_u, n_i), w0, w, V)
    rows = []
    for theta in thetas:
        R = torch.diag(torch.tensor([theta, 1 / theta] + [1.0] * (V.shape[1] - 2), dtype=F64))
        Vt = torch.cat([V_u @ R, V_i @ torch.linalg.inv(R).T])
        rows.append(_regulariser_row(theta, w0, w, Vt, n_u, y_ref) | {"two_nuclear_norm": float(2 * nuclear_norm(B))})
    return rows


def translation_rows(seed: int = 3, n_u: int = 10, n_i: int = 12, k: int = 3, thetas=None) -> list[dict]:
    """Regularisers along the translations s = θ s₀, t = θ t₀ (:func:`translate_user_item`, the
    linear terms absorbing the change) of the same planted FM: every prediction stays the same,
    ‖B‖_F² changes, ‖J B J‖_F² does not."""
    thetas = np.linspace(-2, 2, 41) if thetas is None else thetas
    w0, w, V = _planted_user_item(seed, n_u, n_i, k)
    B = V[:n_u] @ V[n_u:].T
    V_u, V_i = svd_factor(B)
    V = torch.cat([V_u, V_i])
    gen = torch.Generator().manual_seed(seed + 1)
    s0, t0 = torch.randn(V.shape[1], dtype=F64, generator=gen), torch.randn(V.shape[1], dtype=F64, generator=gen)
    y_ref = predict_sparse(user_item_idx(n_u, n_i), w0, w, V)
    rows = []
    for theta in thetas:
        w0_t, w_t, V_t = translate_user_item(w0, w, V, n_u, theta * s0, theta * t0)
        rows.append(_regulariser_row(theta, w0_t, w_t, V_t, n_u, y_ref))
    return rows


# ---------------------------------------------------------------------------------------------
# Going further: when the off-diagonal pins the diagonal
# ---------------------------------------------------------------------------------------------


def diagonal_pinned_exact(G: sp.Matrix, k: int) -> bool:
    """True if every diagonal entry of a rank-k Gram matrix G is fixed by its off-diagonal (exact).

    For each i, look for disjoint I, J of size k, not containing i, with det G[I, J] ≠ 0.
    Every rank-≤k completion has det G[{i}∪I, {i}∪J] = 0, which is affine in the (i, i) entry
    with coefficient ±det G[I, J] ≠ 0, so that entry has one possible value. If this holds for
    all i, the rank-k completion is unique and V is determined up to V ↦ V Q, Q orthogonal.
    """
    n = G.rows
    for i in range(n):
        others = [j for j in range(n) if j != i]
        found = False
        for I in itertools.combinations(others, k):
            rest = [j for j in others if j not in I]
            for J in itertools.combinations(rest, k):
                if G.extract(list(I), list(J)).det() != 0:
                    found = True
                    break
            if found:
                break
        if not found:
            return False
    return True
