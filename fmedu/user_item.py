"""User–item data and what the predictions determine (chapter 04,
``notebooks/04_user_item``, teaches every function here).

Symbols (one meaning each, as in chapter 04): ``n_u`` users (features 0 … n_u − 1), ``n_i`` items
(features n_u … n − 1), ``V_u``, ``V_i`` the user and item rows of V, ``B`` ``(n_u, n_i)`` the
user–item block (B_ui = W_{u, n_u+i}), ``a`` ``(n_u,)`` and ``b`` ``(n_i,)`` row and column
effects, ``J_m = I − 11ᵀ/m`` the centring matrix.

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

F64 = torch.float64

__all__ = [
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

    sympy (exact) or torch. Chapter 04: the linear terms of an FM absorb a and b.
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
    reproduces the full model with block B (chapter 04). Exact for sympy; numerical rank for torch."""
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
    it has the smallest ‖V_u‖² + ‖V_i‖², namely 2‖B‖_* (chapter 04, "Going further").
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

    Returns ``(w0, w, V)``; sympy (s, t row matrices ``(1, k)``) or torch (``(k,)``). Chapter 04.
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
    so w_a ← w_a − (d − 1) v_a·c and w0 ← w0 − C(d, 2)‖c‖². sympy (c ``(1, k)``) or torch. Chapter 04."""
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

    Chapter 04 fits noiseless data from a planted FM, so the loss can go to ~1e-25; the run
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
    quantity does not apply (B and JBJ outside user–item data). Chapter 04.
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
# Tables behind chapter 04's regulariser figure
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
