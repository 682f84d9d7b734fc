"""Sympy builders for the prox step: the V-part of its objective, the blog's decomposition, S(z).

Chapters 04 and 05 use them; sympy proves the structure exactly for concrete and symbolic d.
"""

from __future__ import annotations

import sympy as sp

from ..errors import FMInputError

__all__ = ["sym_brown", "sym_blog_decomposition", "sym_s_matrix", "ij_mul", "sym_s_general_d", "hessian_is_kron_s"]


def sym_brown(d: int, k: int, y: int) -> tuple[sp.Expr, sp.Matrix, sp.Matrix, sp.Symbol, sp.Symbol]:
    """The V-part of φ for a sample with d ones: −z y Σ_{i<j}⟨v_i,v_j⟩ + Σ_i ‖v_i − v_i,t‖²/(2η).

    Returns ``(expr, V, Vt, z, eta)`` with V, Vt sympy ``(d, k)`` matrices of symbols.
    """

    z, eta = sp.symbols("z eta", positive=True)
    V = sp.Matrix(d, k, lambda i, f: sp.Symbol(f"v_{i + 1}_{f + 1}", real=True))
    Vt = sp.Matrix(d, k, lambda i, f: sp.Symbol(f"vt_{i + 1}_{f + 1}", real=True))
    dot = lambda A, B, i, j: sum(A[i, f] * B[j, f] for f in range(k))
    pairs = sum(dot(V, V, i, j) for i in range(d) for j in range(i + 1, d))
    prox_term = sum(dot(V - Vt, V - Vt, i, i) for i in range(d)) / (2 * eta)
    return -z * y * pairs + prox_term, V, Vt, z, eta


def sym_blog_decomposition(d: int, k: int, y: int, coefficient: str) -> sp.Expr:
    """The blog's rewriting of :func:`sym_brown` via v_iᵀv_j = ½‖v_i + v_j‖² − ½‖v_i‖² − ½‖v_j‖².

    With α_ij = −z y x_i x_j (= −z y for the sample's pairs; |α_ij| = z, sign(α_ij) = −y):
    ½ Σ_{i<j} |α_ij| ‖v_i + sign(α_ij) v_j‖² + Σ_i (1/(2η) − c_i) ‖v_i‖² − Σ_i v_iᵀv_i,t/η + Σ_i ‖v_i,t‖²/(2η),
    where c_i = ½ Σ_j |α_ij| (``coefficient="corrected"``) or Σ_j |α_ij| (``"published"``).
    Returns ``brown − decomposition``, expanded (0 exactly when the bookkeeping is right).
    """

    if coefficient not in ("corrected", "published"):
        raise FMInputError(f"coefficient must be 'corrected' or 'published', got {coefficient!r}")
    brown, V, Vt, z, eta = sym_brown(d, k, y)
    abs_alpha, sign_alpha = z, -y
    sq = lambda row: sum(e**2 for e in row)
    squares = sum(abs_alpha * sq(V[i, :] + sign_alpha * V[j, :]) for i in range(d) for j in range(i + 1, d)) / 2
    row_sum = abs_alpha * (d - 1)  # Σ_{j≠i} |α_ij|, the same for every i
    c = row_sum / 2 if coefficient == "corrected" else row_sum
    diagonal = sum((1 / (2 * eta) - c) * sq(V[i, :]) for i in range(d))
    linear = sum(-sum(V[i, f] * Vt[i, f] for f in range(k)) / eta + sq(Vt[i, :]) / (2 * eta) for i in range(d))
    return sp.expand(brown - (squares + diagonal + linear))


def sym_s_matrix(d: int, beta=None) -> sp.Matrix:
    """S = (1 + β) I − β 11ᵀ as a sympy ``(d, d)`` matrix (β a symbol unless given)."""

    beta = sp.Symbol("beta") if beta is None else beta
    return (1 + beta) * sp.eye(d) - beta * sp.ones(d, d)


def ij_mul(A, B, d) -> tuple[sp.Expr, sp.Expr]:
    """Product in the algebra of matrices a I + b J (J = 11ᵀ, J² = d J), for symbolic d.

    ``A = (a, b)`` stands for a I + b J; (a I + b J)(a' I + b' J) = a a' I + (a b' + b a' + b b' d) J.
    Notebooks 04 and 05 use it to reason about S(z) without fixing its size.
    """
    (a1, b1), (a2, b2) = A, B
    return (a1 * a2, a1 * b2 + b1 * a2 + b1 * b2 * d)


def sym_s_general_d() -> dict[str, sp.Expr]:
    """Facts about S = (1+β) I − β J for symbolic d, each as an expression that must simplify to 0.

    * ``eig_mean``: S 1 = (a + b d) 1 must equal (1 − β(d−1)) 1 (J 1 = d 1);
    * ``eig_perp``: S u = a u for 1ᵀu = 0 (J u = 0) must equal (1 + β) u;
    * ``inverse_I``, ``inverse_J``: S · (I + c J)/(1+β), c = β/(1 − β(d−1)), has coefficients (1, 0);
    * ``determinant``: det(a I + b J) = a^(d−1) (a + b d) (eigenvalues' product) equals
      (1+β)^(d−1) (1 − β(d−1)).
    """

    d, beta = sp.symbols("d beta")
    S = (1 + beta, -beta)
    c = beta / (1 - beta * (d - 1))
    S_inv = (1 / (1 + beta), c / (1 + beta))
    product = ij_mul(S, S_inv, d)
    a, b = S
    return {
        "eig_mean": sp.simplify((a + b * d) - (1 - beta * (d - 1))),
        "eig_perp": sp.simplify(a - (1 + beta)),
        "inverse_I": sp.simplify(product[0] - 1),
        "inverse_J": sp.simplify(product[1]),
        "inverse_other_side_J": sp.simplify(ij_mul(S_inv, S, d)[1]),
        "determinant": sp.simplify(a ** (d - 1) * (a + b * d) - (1 + beta) ** (d - 1) * (1 - beta * (d - 1))),
    }


def hessian_is_kron_s(d: int, k: int, y: int) -> bool:
    """True when the V-Hessian of :func:`sym_brown` equals S(z)/η ⊗ I_k exactly (chapter 04).

    V is flattened row-major, so the Hessian is d·k × d·k and S(z) = (1 + β) I − β 11ᵀ
    with β = η y z.
    """
    brown, V, _, z, eta = sym_brown(d, k, y)
    H = sp.hessian(brown, list(V))
    return bool(sp.simplify(H - sp.kronecker_product(sym_s_matrix(d, eta * y * z) / eta, sp.eye(k))).is_zero_matrix)
