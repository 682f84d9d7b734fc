"""The step-size bound of the prox step and the matrix S(z) behind it (chapter 05).

S(z) = (1 + β) I − β 11ᵀ (d × d) with β = η y z is η times the V-block Hessian of the prox
subproblem for fixed z; it must stay positive definite for every z in [0, 1].
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..validation import FMInputError, check_label, check_nnz

__all__ = ["step_size_bound", "s_matrix", "s_eigenvalues", "s_inverse", "solve_vectors"]


def step_size_bound(nnz: int, kind: str = "exact", y=None) -> float:
    """Largest step size for which the prox step is well posed on a sample with ``nnz`` ones.

    ``kind="published"``: the proximal-point blog post's 1/(2·nnz + 1) (derived with a bookkeeping
    slip, erratum E2; it is safe but (nnz − 1)/(2·nnz + 1) of the exact bound: 1/5 at nnz = 2,
    10/23 at nnz = 11, approaching 1/2 only for large nnz).

    ``kind="exact"``: the supremum of η such that S(z) = (1+ηyz)I − ηyz·11ᵀ (nnz × nnz) is
    positive definite for every z ∈ [0, 1]; η must be *strictly* below it. The eigenvalues
    are 1 − ηyz(nnz−1) (along 1) and 1 + ηyz (orthogonal to 1, present when nnz ≥ 2):

    * y = +1: 1 − ηz(nnz−1) > 0 for all z ⇔ η < 1/(nnz−1);
    * y = −1: 1 − ηz > 0 for all z ⇔ η < 1 (only when nnz ≥ 2);
    * y = None: valid for both labels, min of the two = 1/(nnz−1) for nnz ≥ 2;
    * nnz ≤ 1: no pairs, S = I (or empty): ``math.inf``.

    Notebook 04 derives and plots it; :func:`prox_step` refuses η at or beyond it.
    """
    nnz = check_nnz(nnz)
    if kind == "published":
        return 1.0 / (2 * nnz + 1)
    if kind != "exact":
        raise FMInputError(f"kind must be 'exact' or 'published', got {kind!r}")
    if nnz <= 1:
        return math.inf
    if y is None:
        return 1.0 / (nnz - 1)  # = min(1/(nnz-1), 1)
    return 1.0 / (nnz - 1) if check_label(y) > 0 else 1.0


def s_matrix(nnz: int, eta: float, y, z: float, dtype=torch.float64) -> Tensor:
    """S(z) = (1 + β) I − β 11ᵀ with β = η y z, shape ``(nnz, nnz)`` (η × the V-block Hessian)."""
    beta = float(eta) * check_label(y) * float(z)
    return (1 + beta) * torch.eye(nnz, dtype=dtype) - beta * torch.ones(nnz, nnz, dtype=dtype)


def s_eigenvalues(nnz: int, eta: float, y, z: float) -> tuple[float, float]:
    """(λ_mean, λ_perp) = (1 − β(nnz−1), 1 + β): along 1, and on 1's orthogonal complement."""
    beta = float(eta) * check_label(y) * float(z)
    return 1.0 - beta * (nnz - 1), 1.0 + beta


def s_inverse(nnz: int, eta: float, y, z: float, dtype=torch.float64) -> Tensor:
    """S(z)⁻¹ by Sherman–Morrison: (I + c 11ᵀ)/(1 + β), c = β/(1 − β(nnz−1)) (notebook 05)."""
    beta = float(eta) * check_label(y) * float(z)
    c = beta / (1.0 - beta * (nnz - 1))
    return (torch.eye(nnz, dtype=dtype) + c * torch.ones(nnz, nnz, dtype=dtype)) / (1.0 + beta)


def solve_vectors(V_idx: Tensor, eta: float, y, z: float) -> Tensor:
    """S(z)⁻¹ V_idx without forming a matrix (formula (C)): ``(nnz, k)`` → ``(nnz, k)``.

    (V_idx + c·1 sᵀ)/(1 + β) with s = Σ_i v_i (the column sums): O(nnz·k).
    """
    beta = float(eta) * check_label(y) * float(z)
    nnz = V_idx.shape[0]
    c = beta / (1.0 - beta * (nnz - 1))
    return (V_idx + c * V_idx.sum(0, keepdim=True)) / (1.0 + beta)
