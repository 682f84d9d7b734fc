"""Sympy builders for the prox step (chapters 05 and 06).

The latent-vector part of the prox subproblem, the proximal-point blog post's rewriting of it,
the matrix S(z) for concrete and for symbolic d, and the exact minimiser V* = S(z)⁻¹ V_t from
which chapter 06 derives q2, ŷ(θ(z)) and q''. Each builder only sets up expressions; the
chapters and tests compare them with the library's formulas, so that a wrong formula fails.
"""

from __future__ import annotations

from typing import NamedTuple

import sympy as sp

from ..errors import FMInputError

__all__ = [
    "sym_latent_part",
    "sym_blog_decomposition",
    "sym_s_matrix",
    "SymbolicS",
    "sym_s_symbolic_d",
    "split_terms",
    "hessian_is_kron_s",
    "sym_pairs",
    "Minimiser",
    "sym_minimiser",
]


def sym_latent_part(d: int, k: int, y: int) -> tuple[sp.Expr, sp.Matrix, sp.Matrix, sp.Symbol, sp.Symbol]:
    """The latent-vector part of φ(·, z) on a sample with d ones (the blog's "brown part").

    −z y Σ_{i<j}⟨v_i,v_j⟩ + Σ_i ‖v_i − v_i,t‖²/(2η). Returns ``(expr, V, Vt, z, eta)`` with
    V, Vt sympy ``(d, k)`` matrices of real symbols and z, η positive symbols.
    """

    z, eta = sp.symbols("z eta", positive=True)
    V = sp.Matrix(d, k, lambda i, f: sp.Symbol(f"v_{i + 1}_{f + 1}", real=True))
    Vt = sp.Matrix(d, k, lambda i, f: sp.Symbol(f"vt_{i + 1}_{f + 1}", real=True))
    move = V - Vt
    prox_term = sum(move[i, :].dot(move[i, :]) for i in range(d)) / (2 * eta)
    return -z * y * sym_pairs(V) + prox_term, V, Vt, z, eta


def sym_blog_decomposition(d: int, k: int, y: int, coefficient: str) -> sp.Expr:
    """The blog's rewriting of :func:`sym_latent_part` via v_iᵀv_j = ½‖v_i + v_j‖² − ½‖v_i‖² − ½‖v_j‖².

    With α_ij = −z y x_i x_j (= −z y for the sample's pairs; |α_ij| = z, sign(α_ij) = −y):
    ½ Σ_{i<j} |α_ij| ‖v_i + sign(α_ij) v_j‖² + Σ_i (1/(2η) − c_i) ‖v_i‖² − Σ_i v_iᵀv_i,t/η + Σ_i ‖v_i,t‖²/(2η),
    where c_i = ½ Σ_j |α_ij| (``coefficient="corrected"``) or Σ_j |α_ij| (``"published"``).
    Returns ``latent part − decomposition``, expanded (0 exactly when the bookkeeping is right).
    """

    if coefficient not in ("corrected", "published"):
        raise FMInputError(f"coefficient must be 'corrected' or 'published', got {coefficient!r}")
    part, V, Vt, z, eta = sym_latent_part(d, k, y)
    abs_alpha, sign_alpha = z, -y

    def sq(row):
        return sum(e**2 for e in row)

    squares = sum(abs_alpha * sq(V[i, :] + sign_alpha * V[j, :]) for i in range(d) for j in range(i + 1, d)) / 2
    row_sum = abs_alpha * (d - 1)  # Σ_{j≠i} |α_ij|, the same for every i
    c = row_sum / 2 if coefficient == "corrected" else row_sum
    diagonal = sum((1 / (2 * eta) - c) * sq(V[i, :]) for i in range(d))
    linear = sum(-V[i, :].dot(Vt[i, :]) / eta + sq(Vt[i, :]) / (2 * eta) for i in range(d))
    return sp.expand(part - (squares + diagonal + linear))


def sym_s_matrix(d: int, beta=None) -> sp.Matrix:
    """S = (1 + β) I − β 11ᵀ as an explicit sympy ``(d, d)`` matrix (β a symbol unless given)."""

    beta = sp.Symbol("beta") if beta is None else beta
    return (1 + beta) * sp.eye(d) - beta * sp.ones(d, d)


class SymbolicS(NamedTuple):
    """S = (1 + β) I − β J for a *symbolic* size d, as sympy matrix expressions.

    ``I`` = Identity(d), ``J`` = OneMatrix(d, d) (all ones), ``ones`` = OneMatrix(d, 1). Sympy
    itself knows J·1 = d·1 and J² = d·J, so products such as ``S * ones`` can be expanded
    (``sp.expand(...).doit()``) without fixing d.
    """

    S: sp.MatrixExpr
    I: sp.MatrixExpr
    J: sp.MatrixExpr
    ones: sp.MatrixExpr
    beta: sp.Symbol
    d: sp.Symbol


def sym_s_symbolic_d() -> SymbolicS:
    """S(z) for a symbolic number of non-zeros d (chapters 05 and 06)."""
    d = sp.Symbol("d", integer=True, positive=True)
    beta = sp.Symbol("beta")
    I, J, ones = sp.Identity(d), sp.OneMatrix(d, d), sp.OneMatrix(d, 1)
    return SymbolicS((1 + beta) * I - beta * J, I, J, ones, beta, d)


def split_terms(expr, basis) -> tuple:
    """Coefficients (c_1, …) with ``expr`` = Σ c_m·basis[m], for matrix expressions of symbolic size.

    ``expr`` is expanded here (``sp.expand(...).doit()``: sympy applies J·1 = d·1, J² = d·J);
    each resulting term must be a scalar times one of ``basis`` (e.g. ``[I, J]``, ``[ones]``,
    ``[u, J*u]``). Coefficients come back simplified. Raises FMInputError for any other term,
    so a claimed form that does not hold fails instead of passing silently.
    """

    def bare(m):
        m = m.doit()
        return m.args[0] if isinstance(m, sp.MatMul) and len(m.args) == 1 else m

    targets = [bare(b) for b in basis]
    coefficients = [sp.Integer(0)] * len(targets)
    for term in sp.Add.make_args(sp.expand(expr).doit()):
        coefficient, matrix = term.as_coeff_mmul() if isinstance(term, sp.MatMul) else (sp.Integer(1), term)
        matrix = bare(matrix)
        if isinstance(matrix, sp.ZeroMatrix) or coefficient == 0:
            continue
        if matrix not in targets:
            raise FMInputError(f"the term {term} is not a multiple of {list(basis)}")
        coefficients[targets.index(matrix)] += coefficient
    return tuple(sp.simplify(c) for c in coefficients)


def hessian_is_kron_s(d: int, k: int, y: int) -> bool:
    """True when the V-Hessian of :func:`sym_latent_part` equals S(z)/η ⊗ I_k exactly (chapter 05).

    V is flattened row-major, so the Hessian is d·k × d·k and S(z) = (1 + β) I − β 11ᵀ
    with β = η y z.
    """
    part, V, _, z, eta = sym_latent_part(d, k, y)
    H = sp.hessian(part, list(V))
    return bool(sp.simplify(H - sp.kronecker_product(sym_s_matrix(d, eta * y * z) / eta, sp.eye(k))).is_zero_matrix)


def sym_pairs(M: sp.Matrix) -> sp.Expr:
    """Σ_{i<j} ⟨m_i, m_j⟩ over the rows of a sympy matrix: the plain double sum (no Rendle trick)."""
    rows = M.shape[0]
    return sp.Add(*[M[i, :].dot(M[j, :]) for i in range(rows) for j in range(i + 1, rows)])


class Minimiser(NamedTuple):
    """The exact minimiser of φ(·, z) on a symbolic sample (see :func:`sym_minimiser`)."""

    V_star: sp.Matrix  # S(z)⁻¹ V_t, by sympy's own inverse
    Vt: sp.Matrix  # the sample's rows of V_t, symbols
    B: sp.Symbol  # w0 + Σ_idx w_i at θ_t
    A: sp.Expr  # Σ_i ‖v_i,t‖²
    C: sp.Expr  # ‖Σ_i v_i,t‖²
    z: sp.Symbol
    eta: sp.Symbol
    q2: sp.Expr  # the latent part evaluated at V_star
    y_hat_after: sp.Expr  # ŷ(θ(z)) = B + (d + 1)ηyz + Σ_{i<j}⟨v*_i, v*_j⟩


def sym_minimiser(d: int, k: int, y: int) -> Minimiser:
    """The minimiser θ(z) of φ(·, z) for a sample with d ones, k factors, label y, all symbolic.

    The latent rows solve S(z) V = V_t; here sympy inverts the explicit S(z) itself (no
    Sherman–Morrison), so that chapter 06 can compare the library's closed forms with it.
    Every bias of the sample moves by ηyz (d of them plus w0), hence ŷ's linear part is
    B + (d + 1)ηyz.
    """
    part, _, Vt, z, eta = sym_latent_part(d, k, y)
    S = sym_s_matrix(d, eta * y * z)
    V_star = (S.inv() * Vt).applyfunc(sp.factor)
    move = V_star - Vt
    q2 = -z * y * sym_pairs(V_star) + sum(move[i, :].dot(move[i, :]) for i in range(d)) / (2 * eta)
    total = sp.Matrix.ones(1, d) * Vt
    B = sp.Symbol("B", real=True)
    return Minimiser(
        V_star=V_star,
        Vt=Vt,
        B=B,
        A=sum(e**2 for e in Vt),
        C=total.dot(total),
        z=z,
        eta=eta,
        q2=q2,
        y_hat_after=B + (d + 1) * eta * y * z + sym_pairs(V_star),
    )
