"""What V Vᵀ can express: free diagonal, PSD completions, how large k must be, user–item
blocks, and what is identifiable. Used by notebook 03 (03_expressiveness).

An FM's pairwise term Σ_{i<j} ⟨v_i, v_j⟩ x_i x_j reads only the *off-diagonal* entries of the
Gram matrix G = V Vᵀ (``(n, n)``). So the question "which interaction matrices W can an FM
express?" is: for which symmetric W is there a V ``(n, k)`` with (V Vᵀ)_ij = W_ij for all i ≠ j,
the diagonal being free. A symmetric matrix that agrees with W off the diagonal is a
*completion* of W; V exists with k columns iff W has a positive semidefinite (PSD) completion
of rank ≤ k.

Two kinds of functions:

* exact ones take and return ``sympy.Matrix`` (rationals, or symbols) and end in ``_exact``
  or are documented as exact;
* float ones take ``torch.float64`` tensors.

Bad input raises :class:`fmedu.FMInputError` with a message that says how to fix it.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy as sp
import torch
from torch import Tensor

from .errors import FMInputError
from .model import FactorizationMachine, predict_sparse
from .validation import require_finite

F64 = torch.float64

__all__ = [
    "check_symmetric",
    "offdiag",
    "offdiag_error",
    "dominant_completion",
    "pair_factor",
    "ldl_factor_exact",
    "psd_factor",
    "shift_completion",
    "trace_identity",
    "notes_dominance_rule_exact",
    "block_rank_exact",
    "dimension_count_k",
    "ones_offdiag",
    "planted_offdiag",
    "random_sign_offdiag",
    "offdiag_loss",
    "fit_offdiag",
    "k_scan",
    "user_item_idx",
    "all_pairs_idx",
    "full_interaction_predict",
    "svd_factor",
    "rank_factor_exact",
    "param_counts",
    "cayley_exact",
    "random_orthogonal",
    "frobenius_sq",
    "pair_interaction_sq",
    "nuclear_norm",
    "procrustes",
    "double_centre",
    "fit_fm",
    "diagonal_pinned_exact",
]


# ---------------------------------------------------------------------------------------------
# Input checks
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


# ---------------------------------------------------------------------------------------------
# Free diagonal → PSD completion → V
# ---------------------------------------------------------------------------------------------


def offdiag(W) -> Tensor | sp.Matrix:
    """W with its diagonal set to 0 (the only part an FM reads). sympy or torch."""
    check_symmetric(W)
    if isinstance(W, sp.MatrixBase):
        return sp.Matrix(W.rows, W.cols, lambda i, j: 0 if i == j else W[i, j])
    return W - torch.diag(torch.diagonal(W))


def offdiag_error(V, W) -> Tensor | sp.Expr:
    """max_{i≠j} |(V Vᵀ)_ij − W_ij|: how far V is from expressing W. Exact for sympy input."""
    G = V * V.T if isinstance(V, sp.MatrixBase) else V @ V.T
    D = offdiag(G - W)
    if isinstance(D, sp.MatrixBase):
        return max((sp.Abs(sp.simplify(e)) for e in D), default=sp.Integer(0))
    return D.abs().max()


def dominant_completion(W, eps=0) -> Tensor | sp.Matrix:
    """The diagonally dominant completion: off-diagonal of W, diagonal Σ_{j≠i}|W_ij| + eps.

    PSD for eps ≥ 0 (``pair_factor`` writes it as V Vᵀ), positive definite for eps > 0
    (Gershgorin: every eigenvalue is ≥ eps). Exact for sympy input (use a Rational eps).
    """
    check_symmetric(W)
    if isinstance(eps, (int, float)) and eps < 0 or (isinstance(eps, sp.Basic) and eps.is_negative):
        raise FMInputError(f"eps must be ≥ 0 (a negative margin can break PSD), got {eps}")
    W0 = offdiag(W)
    if isinstance(W, sp.MatrixBase):
        return W0 + sp.diag(*[sum(sp.Abs(e) for e in W0.row(i)) + eps for i in range(W.rows)])  # type: ignore[union-attr]
    return W0 + torch.diag(W0.abs().sum(1) + eps)


def pair_factor(W) -> Tensor | sp.Matrix:
    """An explicit V with V Vᵀ = dominant_completion(W, 0): one column per non-zero pair i < j.

    Column (i, j) is √|W_ij| (e_i + sign(W_ij) e_j); its outer product puts |W_ij| on the
    diagonal at i and j and W_ij at (i, j) and (j, i). Summing over pairs gives exactly the
    dominant completion, which proves that completion PSD (a Gram matrix). ``(n, #pairs)``;
    exact for sympy input (symbols allowed: the identity √|a|² sign(a) = a holds for real a).
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


def ldl_factor_exact(A: sp.Matrix) -> sp.Matrix:
    """Exact V with V Vᵀ = A for a PSD rational A, from A = L D Lᵀ: V = L √D (zero pivots dropped).

    The pivots D_ii are exact rationals, so "all pivots ≥ 0" is an exact PSD certificate and
    the number of positive pivots is rank(A) = k. Raises for a negative pivot (A is not PSD)
    or a zero pivot with non-zeros below it (this elimination order cannot finish).
    """
    check_symmetric(A, "A")
    n = A.rows
    L, D = sp.eye(n), sp.zeros(n, n)
    S = A.copy()  # the Schur complement, updated in place
    for p in range(n):
        d = S[p, p]
        if d < 0:
            raise FMInputError(f"A is not PSD: pivot {p} is {d} < 0")
        if d == 0:
            if any(S[i, p] != 0 for i in range(p + 1, n)):
                raise FMInputError(
                    f"zero pivot {p} with non-zeros below it: A is not PSD "
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
    V = sp.Matrix.hstack(*[L[:, p] * sp.sqrt(D[p, p]) for p in keep]) if keep else sp.zeros(n, 1)
    return V


def psd_factor(A: Tensor, rtol: float = 1e-10) -> Tensor:
    """Float V with V Vᵀ ≈ A for PSD A, from eigh: V = U √λ over eigenvalues > rtol·λ_max.

    ``(n, r)`` with r the numerical rank. Raises if A has an eigenvalue clearly below zero.
    """
    check_symmetric(A, "A")
    lam, U = torch.linalg.eigh(A)
    top = float(lam.abs().max()) if lam.numel() else 0.0
    if float(lam.min()) < -1e-9 * max(top, 1.0):
        raise FMInputError(
            f"A is not PSD (smallest eigenvalue {float(lam.min()):.3g}); complete its diagonal "
            "first, e.g. with dominant_completion(A) or shift_completion(A)"
        )
    keep = lam > rtol * max(top, 1e-300)
    return U[:, keep] * lam[keep].sqrt()


def shift_completion(W: Tensor) -> Tensor:
    """W0 − λ_min(W0)·I with W0 = offdiag(W): PSD with a zero eigenvalue, so rank ≤ n − 1.

    Its diagonal is the constant −λ_min(W0) ≥ 0 (trace(W0) = 0 forces λ_min ≤ 0).
    """
    W0 = offdiag(W)
    lam_min = torch.linalg.eigvalsh(W0)[0]
    return W0 - lam_min * torch.eye(W0.shape[0], dtype=W0.dtype)


def trace_identity(n: int, k: int) -> sp.Expr:
    """trace(V Vᵀ) − Σ_{i,f} v_if² for a symbolic V ``(n, k)``, expanded (it is 0)."""
    V = sp.Matrix(n, k, lambda i, f: sp.Symbol(f"v_{i + 1}_{f + 1}", real=True))
    return sp.expand((V * V.T).trace() - sum(e**2 for e in V))


def notes_dominance_rule_exact(A: sp.Matrix) -> tuple[bool, bool, sp.Expr]:
    """(rule as written holds, true dominance holds, smallest eigenvalue) for an exact A.

    "Rule as written": A_ii > Σ_{j≠i} A_ij (no absolute values). True diagonal dominance:
    A_ii > Σ_{j≠i} |A_ij|. Notebook 03 shows a matrix passing the first but not PD.
    """
    check_symmetric(A, "A")
    rows = range(A.rows)
    written = all(A[i, i] > sum(A[i, j] for j in rows if j != i) for i in rows)
    strict = all(A[i, i] > sum(abs(A[i, j]) for j in rows if j != i) for i in rows)
    return bool(written), bool(strict), min(A.eigenvals())


# ---------------------------------------------------------------------------------------------
# How large must k be
# ---------------------------------------------------------------------------------------------


def block_rank_exact(W: sp.Matrix, rows, cols) -> int:
    """rank W[rows, cols] for disjoint index sets: a lower bound on k.

    For i ∈ rows, j ∈ cols the entries are off-diagonal, so (V Vᵀ)[rows, cols] =
    V[rows] V[cols]ᵀ must equal W[rows, cols]; a product through k columns has rank ≤ k.
    """
    if set(rows) & set(cols):
        raise FMInputError("rows and cols must be disjoint: a block that touches the diagonal is not fixed by W")
    return W.extract(list(rows), list(cols)).rank()


def dimension_count_k(n: int) -> int:
    """Smallest k with n·k − k(k−1)/2 ≥ n(n−1)/2 (parameters of V modulo rotations ≥ pairs).

    Below it, the off-diagonals reachable with k columns form the image of a smooth map
    from a space of smaller dimension, a set of measure zero (Sard): almost every real W
    needs at least this many columns.
    """
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


def offdiag_loss(V: np.ndarray, W: np.ndarray) -> tuple[float, np.ndarray | None]:
    """Σ_{i≠j} ((V Vᵀ)_ij − W_ij)² and its gradient 4·R·V (R the masked residual, symmetric)."""
    R = V @ V.T - W
    np.fill_diagonal(R, 0.0)
    return float((R * R).sum()), 4.0 * R @ V


def fit_offdiag(W, k: int, seeds=(0, 1, 2, 3), maxiter: int = 3000) -> tuple[float, np.ndarray | None]:
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
    best = (np.inf, None)
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
        if rel < best[0]:
            best = (rel, res.x.reshape(n, k))
    return float(best[0]), best[1]


def k_scan(examples: dict, ks, seeds=(0, 1, 2, 3)) -> list[dict]:
    """Rows ``{example, k, rel_error}`` of :func:`fit_offdiag` over ``ks`` for each named W."""
    return [
        {"example": name, "k": k, "rel_error": fit_offdiag(W, k, seeds)[0]} for name, W in examples.items() for k in ks
    ]


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


def full_interaction_predict(w0: Tensor, w: Tensor, B: Tensor) -> Tensor:
    """The full model on every user–item pair: w0 + w_u + w_{n_u+i} + B_ui, ``(n_u·n_i,)``.

    ``w`` is ``(n_u + n_i,)`` (users first), ``B`` the free ``(n_u, n_i)`` interaction block.
    """
    n_u, n_i = B.shape
    if w.shape != (n_u + n_i,):
        raise FMInputError(f"w must have shape (n_u + n_i,) = ({n_u + n_i},), got {tuple(w.shape)}")
    return (w0 + w[:n_u, None] + w[None, n_u:] + B).reshape(-1)


def svd_factor(B: Tensor, rtol: float = 1e-10) -> tuple[Tensor, Tensor]:
    """Balanced rank factorisation B = V_u V_iᵀ from the SVD: V_u = U√σ, V_i = W√σ, k = rank.

    "Balanced" means V_uᵀV_u = V_iᵀV_i = diag(σ); among all factorisations of B it has the
    smallest ‖V_u‖² + ‖V_i‖², namely 2‖B‖_* (notebook 03).
    """
    U, s, Wt = torch.linalg.svd(B, full_matrices=False)
    keep = s > rtol * max(float(s.max()) if s.numel() else 0.0, 1e-300)
    root = s[keep].sqrt()
    return U[:, keep] * root, Wt[keep].T * root


def rank_factor_exact(B: sp.Matrix) -> tuple[sp.Matrix, sp.Matrix]:
    """Exact rational rank factorisation B = V_u V_iᵀ with k = rank(B) (no square roots).

    V_u = the pivot columns of B, V_iᵀ = the non-zero rows of its reduced row echelon form.
    """
    R, pivots = B.rref()
    if not pivots:
        return sp.zeros(B.rows, 1), sp.zeros(B.cols, 1)
    return B.extract(list(range(B.rows)), list(pivots)), R[: len(pivots), :].T


def param_counts(n_u: int, n_i: int, k: int) -> dict:
    """Exact parameter counts: full model 1 + n_u + n_i + n_u·n_i against the FM's 1 + n + n·k."""
    n = n_u + n_i
    return {"n_u": n_u, "n_i": n_i, "k": k, "full": 1 + n + n_u * n_i, "fm": 1 + n + n * k}


# ---------------------------------------------------------------------------------------------
# Identifiability
# ---------------------------------------------------------------------------------------------


def cayley_exact(S: sp.Matrix) -> sp.Matrix:
    """Q = (I − S)(I + S)⁻¹ for skew-symmetric S: an exactly orthogonal matrix (rational if S is)."""
    if not (S + S.T).is_zero_matrix:
        raise FMInputError("S must be skew-symmetric (S.T == -S) for the Cayley transform")
    eye = sp.eye(S.rows)
    return (eye - S) * (eye + S).inv()


def random_orthogonal(k: int, gen: torch.Generator) -> Tensor:
    """A random orthogonal ``(k, k)`` float64 matrix (QR of a Gaussian, signs fixed)."""
    Q, R = torch.linalg.qr(torch.randn(k, k, dtype=F64, generator=gen))
    return Q * torch.sign(torch.diagonal(R))


def frobenius_sq(V) -> Tensor:
    """‖V‖_F² = Σ_{i,f} v_if², the usual FM regulariser (exact for sympy)."""
    return sum(e**2 for e in V) if isinstance(V, sp.MatrixBase) else (V * V).sum()


def pair_interaction_sq(V, n_u: int) -> Tensor:
    """Σ_{u,i} (v_u·v_i)² = ‖V_u V_iᵀ‖_F²: the regulariser the notes call more natural."""
    if isinstance(V, sp.MatrixBase):
        B = V[:n_u, :] * V[n_u:, :].T
        return sum(e**2 for e in B)
    B = V[:n_u] @ V[n_u:].T
    return (B * B).sum()


def nuclear_norm(B: Tensor) -> Tensor:
    """‖B‖_* = Σ singular values."""
    return torch.linalg.svdvals(B).sum()


def procrustes(A: Tensor, B: Tensor) -> Tensor:
    """Orthogonal Q ``(k, k)`` minimising ‖A Q − B‖_F (A, B ``(n, k)``): Q = U Wᵀ, UΣWᵀ = AᵀB."""
    if A.shape != B.shape:
        raise FMInputError(f"A and B must have the same shape, got {tuple(A.shape)} and {tuple(B.shape)}")
    U, _, Wt = torch.linalg.svd(A.T @ B)
    return U @ Wt


def double_centre(M) -> Tensor:
    """J_u M J_i with J = I − 11ᵀ/m: removes row and column constants (sympy or torch)."""
    if isinstance(M, sp.MatrixBase):
        Ju = sp.eye(M.rows) - sp.ones(M.rows, M.rows) / M.rows
        Ji = sp.eye(M.cols) - sp.ones(M.cols, M.cols) / M.cols
        return Ju * M * Ji
    return M - M.mean(0, keepdim=True) - M.mean(1, keepdim=True) + M.mean()


def fit_fm(
    idx: Tensor, y: Tensor, n: int, k: int, seed: int, *, init_std: float = 0.5, rounds: int = 20, max_iter: int = 200
) -> FactorizationMachine:
    """Fit an FM to (idx, y) by full-batch L-BFGS on the mean squared error (float64, seeded).

    Notebook 03 fits noiseless data from a planted FM, so the loss can go to ~1e-25; the
    run stops early once the loss (at the start of a round) is below 1e-24 or the gradient
    below 1e-13.
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


def diagonal_pinned_exact(G: sp.Matrix, k: int) -> bool:
    """True if every diagonal entry of a rank-k G is fixed by its off-diagonal (exact).

    For each i, look for disjoint I, J of size k, not containing i, with det G[I, J] ≠ 0.
    Every rank-≤k completion has det G[{i}∪I, {i}∪J] = 0, which is linear in the (i, i) entry
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


# ---------------------------------------------------------------------------------------------
# Named examples and experiments of notebook 03
# ---------------------------------------------------------------------------------------------


def k_examples(n: int = 10, seed: int = 0) -> dict:
    """Named off-diagonals with proven bounds on the smallest k: name → (W, lower, upper).

    * planted rank 3: lower = rank of an off-diagonal block, upper = 3 (the planted V0);
    * all +1: lower 1 (W ≠ 0), upper 1 (v_i = 1 for all i);
    * all −1: lower n − 1 (rank argument of notebook 03), upper n − 1 (shift completion);
    * random ±1: lower = the largest rank of the blocks tried, upper n − 1.
    """
    planted, _ = planted_offdiag(n, 3, seed)
    signs = random_sign_offdiag(n, seed)
    half = list(range(n // 2)), list(range(n // 2, n))
    rng = np.random.default_rng(seed)
    splits = [half] + [(list(p[: n // 2]), list(p[n // 2 :])) for p in (rng.permutation(n) for _ in range(20))]
    sign_lower = max(block_rank_exact(signs, r, c) for r, c in splits)
    return {
        "planted rank 3": (planted, block_rank_exact(planted, *half), 3),
        "all +1": (ones_offdiag(n, 1), 1, 1),
        "all -1": (ones_offdiag(n, -1), n - 1, n - 1),
        "random ±1": (signs, sign_lower, n - 1),
    }


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
    raise FMInputError(f"unknown setting {setting!r}; use 'pairs' or 'pairs+triples'")


def planted_recovery(
    setting: str, seed: int, *, n_u: int = 10, n_i: int = 12, n: int = 10, k: int = 3, planted_seed: int = 3
) -> dict:
    """Fit an FM to the noiseless predictions of a planted one; max-abs errors of what it recovered.

    ``setting``: ``"user-item"`` (all n_u·n_i pairs), ``"pairs"`` or ``"pairs+triples"``
    (see :func:`recovery_samples`, n features). Keys: ``predictions``, ``V`` (raw),
    ``V aligned`` (after orthogonal Procrustes), ``w``; for user–item also ``B``
    (= V_u V_iᵀ), ``centred B`` (J B J) and ``balanced centred`` (balanced factor of J B J,
    aligned by Procrustes to the planted one). Notebook 03.
    """
    features = n_u + n_i if setting == "user-item" else n
    w0, w, V = _planted(features, k, planted_seed)
    idx = user_item_idx(n_u, n_i) if setting == "user-item" else recovery_samples(setting, n)
    y = predict_sparse(idx, w0, w, V)
    model = fit_fm(idx, y, features, k, seed)
    with torch.no_grad():
        Vh = model.V.detach()
        out = {
            "predictions": (predict_sparse(idx, model.w0, model.w, Vh) - y).abs().max(),
            "V": (Vh - V).abs().max(),
            "V aligned": (Vh @ procrustes(Vh, V) - V).abs().max(),
            "w": (model.w - w).abs().max(),
        }
        if setting == "user-item":
            B, Bh = V[:n_u] @ V[n_u:].T, Vh[:n_u] @ Vh[n_u:].T
            P, Ph = torch.cat(svd_factor(double_centre(B))), torch.cat(svd_factor(double_centre(Bh)))
            out["B"] = (Bh - B).abs().max()
            out["centred B"] = (double_centre(Bh) - double_centre(B)).abs().max()
            out["balanced centred"] = (
                (Ph @ procrustes(Ph, P) - P).abs().max() if Ph.shape == P.shape else torch.tensor(float("inf"))
            )
    return {key: float(v) for key, v in out.items()}


# --------------------------------------------------------------------------- tables behind chapter 03

K_SCAN_N = 10


def k_scan_rows(n: int = K_SCAN_N, seeds=(0, 1, 2, 3)) -> list[dict]:
    """Rows ``{example, k, rel_error, proven_lower, proven_upper}`` for the examples of
    :func:`fmedu.expressiveness.k_examples` and every k = 1 … n."""
    rows = []
    for name, (W, lower, upper) in k_examples(n).items():
        for k in range(1, n + 1):
            rows.append(
                {
                    "example": name,
                    "k": k,
                    "rel_error": fit_offdiag(W, k, seeds, maxiter=1500)[0],
                    "proven_lower": lower,
                    "proven_upper": upper,
                }
            )
    return rows


def observed_k(rows: list[dict], tol: float = 1e-8) -> dict[str, int]:
    """Smallest k whose best fit has relative error ≤ tol, per example (an observation)."""
    out = {}
    for r in rows:
        if r["rel_error"] <= tol and r["example"] not in out:
            out[r["example"]] = r["k"]
    return out


def gauge_rows(seed: int = 3, n_u: int = 10, n_i: int = 12, k: int = 3, ts=None) -> list[dict]:
    """Both regularisers along V_u A_t, V_i A_t⁻ᵀ with A_t = diag(t, 1/t, 1) from the balanced factor.

    Every member gives the same B = V_u V_iᵀ, hence the same user–item predictions.
    """
    ts = np.logspace(-1, 1, 41) if ts is None else ts
    gen = torch.Generator().manual_seed(seed)
    V = torch.randn(n_u + n_i, k, dtype=torch.float64, generator=gen)
    B = V[:n_u] @ V[n_u:].T
    Vu, Vi = svd_factor(B)
    rows = []
    for t in ts:
        A = torch.diag(torch.tensor([t, 1 / t] + [1.0] * (k - 2), dtype=torch.float64))
        Vt = torch.cat([Vu @ A, Vi @ torch.linalg.inv(A).T])
        rows.append(
            {
                "t": float(t),
                "frobenius_sq": float(frobenius_sq(Vt)),
                "pair_interaction_sq": float(pair_interaction_sq(Vt, n_u)),
                "two_nuclear_norm": float(2 * nuclear_norm(B)),
                "max_B_change": float((Vt[:n_u] @ Vt[n_u:].T - B).abs().max()),
            }
        )
    return rows
