"""Derivation helpers of the lectures on the prox step (chapters 05 and 06).

Each helper sets up one step of a chain derived on the page, so that the chapter can check it
against sympy or autograd; none of them is needed to take a step. Kept apart from the step
itself (``fmedu.prox.step``, ``fmedu.prox.dual``) so that the lectures can change without
touching the library.

* :func:`hessian_entries_match` — chapter 05, (5.5): ∂²φ/∂v_if∂v_jg = δ_fg(δ_ij/η − zy(1 − δ_ij)),
  i.e. the V-Hessian is (1/η) S(z) ⊗ I_k.
* :func:`strong_convexity` and :func:`optimiser_gap_bound` — chapter 06: the derived tolerance
  for the closed-form step against a generic optimiser, ‖θ − θ*‖ ≤ ‖∇F(θ)‖₂/μ.
* :func:`latent_split` — chapter 06, (6.4): V_t split along 1 and its complement.
"""

from __future__ import annotations

import math

import sympy as sp
from torch import Tensor

from .bounds import s_eigenvalues
from .symbolic import sym_latent_part, sym_s_matrix

__all__ = ["hessian_entries_match", "strong_convexity", "optimiser_gap_bound", "latent_split"]


def hessian_entries_match(d: int, k: int, y: int) -> tuple[bool, bool]:
    """Chapter 05, (5.5): sympy's V-Hessian of the latent part against the entry formula and the
    Kronecker form.

    Returns ``(entries, kronecker)``: every entry ∂²φ/∂v_if∂v_jg equals
    δ_fg(δ_ij/η − zy(1 − δ_ij)); and the whole matrix equals (1/η) S(z) ⊗ I_k with V flattened
    row-major (row (i, f) at position i·k + f).
    """
    part, V, _, z, eta = sym_latent_part(d, k, y)
    H = sp.hessian(part, list(V))

    def formula(i: int, f: int, j: int, g: int) -> sp.Expr:
        if f != g:
            return sp.Integer(0)
        return 1 / eta if i == j else -z * y

    entries = all(
        sp.simplify(H[i * k + f, j * k + g] - formula(i, f, j, g)) == 0
        for i in range(d)
        for f in range(k)
        for j in range(d)
        for g in range(k)
    )
    kron = sp.kronecker_product(sym_s_matrix(d, eta * y * z) / eta, sp.eye(k))
    return entries, bool(sp.simplify(H - kron).is_zero_matrix)


def strong_convexity(d: int, eta: float, y: int) -> float:
    """Chapter 06: μ with ∇²F ⪰ μ I for the prox objective F of a sample with d ones, below the bound.

    ∇²F = σ'·∇ŷ∇ŷᵀ + ∇²_θ φ(θ, z(θ)) with z(θ) ∈ (0, 1), and ∇²_θ φ has the eigenvalues 1/η
    (biases) and λ(S(z))/η (latent part, (5.5)); the smallest over z ∈ [0, 1] is at z = 1.
    """
    low = min(s_eigenvalues(d, eta, y, 1.0)) if d >= 2 else 1.0
    return min(1.0, low) / eta


def optimiser_gap_bound(d: int, k: int, eta: float, y: int, kkt_ours: float, kkt_theirs: float) -> float:
    """Chapter 06: the largest coordinate difference two points can have when both have the given
    KKT residuals max|∇F|, for a μ-strongly convex F (:func:`strong_convexity`).

    ‖θ − θ*‖₂ ≤ ‖∇F(θ)‖₂/μ for each point, ‖·‖₂ ≤ √N ‖·‖_∞ over the N = 1 + d + d·k coordinates
    whose gradient is not zero, and the triangle inequality:
    max|θ_a − θ_b| ≤ √N (kkt_a + kkt_b)/μ.
    """
    n_coords = 1 + d + d * k
    return math.sqrt(n_coords) * (kkt_ours + kkt_theirs) / strong_convexity(d, eta, y)


def latent_split(V_idx: Tensor) -> tuple[Tensor, Tensor, float, float]:
    """Chapter 06, (6.4): V_t = M + P with M = 1 sᵀ/d (every row the mean row) and P = V_t − M
    (columns summing to zero); returns ``(M, P, m, p)`` with m = ‖M‖² = C/d, p = ‖P‖² = A − C/d."""
    d = V_idx.shape[0]
    M = V_idx.mean(dim=0, keepdim=True).expand(d, -1).clone()
    P = V_idx - M
    return M, P, float(M.square().sum()), float(P.square().sum())
