"""sympy builders for exact checks.

Chapter 01 uses the FM symbols, :func:`fm_prediction`, the reformulation chain, the SystemDS
reference page's two displayed steps (erratum R1) and the two proofs of Rendle's identity
(concrete sizes, and symbolic n by induction). Chapter 02 uses :func:`symbolic_gradient`,
the gradient note's formula (erratum E1, :func:`note_gradient`, :func:`e1_explanation`) and
the factor-index slip of SystemDS's ``nn/layers/fm.dml`` (erratum E6,
:func:`slipped_symbolic_gradient`). Later chapters keep their sympy in their own modules.
"""

from __future__ import annotations

import sympy as sp

from .errors import FMInputError

__all__ = [
    "fm_symbols",
    "fm_prediction",
    "pairwise_double_sum",
    "pairwise_rendle",
    "reformulation_chain",
    "reference_page_steps",
    "rendle_identity_difference",
    "rendle_induction",
    "symbolic_gradient",
    "note_gradient",
    "e1_explanation",
    "SLIP_VARIANTS",
    "slipped_columns",
    "slipped_symbolic_gradient",
]


def fm_prediction(x: sp.Matrix, w0: sp.Expr, w: sp.Matrix, V: sp.Matrix) -> sp.Expr:
    """ŷ(x) = w0 + Σ_i w_i x_i + Σ_{i<j} ⟨v_i, v_j⟩ x_i x_j, the pairs spelled out (any sympy entries)."""
    x = sp.Matrix(x)
    return w0 + (w.T * x)[0] + pairwise_double_sum(x, V)


def fm_symbols(n: int, k: int) -> tuple[sp.Matrix, sp.Symbol, sp.Matrix, sp.Matrix]:
    """Symbols of an FM with n features and k factors: ``(x, w0, w, V)``.

    ``x`` and ``w`` are sympy column matrices ``(n, 1)`` of symbols x_1…x_n, w_1…w_n;
    ``V`` is an ``(n, k)`` matrix of symbols v_{i,f} (1-based as in the text).
    """
    x = sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"x_{i + 1}", real=True))
    w = sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"w_{i + 1}", real=True))
    V = sp.Matrix(n, k, lambda i, f: sp.Symbol(f"v_{i + 1}_{f + 1}", real=True))
    return x, sp.Symbol("w_0", real=True), w, V


def _dot(V: sp.Matrix, i: int, j: int):
    return sum(V[i, f] * V[j, f] for f in range(V.shape[1]))


def pairwise_double_sum(x: sp.Matrix, V: sp.Matrix) -> sp.Expr:
    """Σ_{i<j} ⟨v_i, v_j⟩ x_i x_j, pairs enumerated explicitly."""
    n = V.shape[0]
    return sum(_dot(V, i, j) * x[i] * x[j] for i in range(n) for j in range(i + 1, n))


def pairwise_rendle(x: sp.Matrix, V: sp.Matrix) -> sp.Expr:
    """½ Σ_f [(Σ_i v_if x_i)² − Σ_i v_if² x_i²]."""
    n, k = V.shape
    return sp.Rational(1, 2) * sum(
        sum(V[i, f] * x[i] for i in range(n)) ** 2 - sum(V[i, f] ** 2 * x[i] ** 2 for i in range(n)) for f in range(k)
    )


def reformulation_chain(x: sp.Matrix, V: sp.Matrix) -> list[tuple[str, sp.Expr]]:
    """The correct chain from the pair sum to Rendle's form, one expression per step.

    Each step is kept unexpanded (as written on the page) so that notebook 01 can check
    every consecutive pair with ``sp.expand(a - b) == 0``.
    """
    n, k = V.shape
    half = sp.Rational(1, 2)
    all_pairs = sp.Add(*[_dot(V, i, j) * x[i] * x[j] for i in range(n) for j in range(n)], evaluate=False)
    diagonal = sp.Add(*[_dot(V, i, i) * x[i] * x[i] for i in range(n)], evaluate=False)
    by_factor_products = sp.Add(
        *[
            sp.Mul(
                sp.Add(*[V[i, f] * x[i] for i in range(n)], evaluate=False),
                sp.Add(*[V[j, f] * x[j] for j in range(n)], evaluate=False),
                evaluate=False,
            )
            - sp.Add(*[V[i, f] ** 2 * x[i] ** 2 for i in range(n)], evaluate=False)
            for f in range(k)
        ],
        evaluate=False,
    )
    return [
        ("Σ_{i<j} ⟨v_i,v_j⟩ x_i x_j", pairwise_double_sum(x, V)),
        ("½ Σ_i Σ_j ⟨v_i,v_j⟩ x_i x_j − ½ Σ_i ⟨v_i,v_i⟩ x_i²", half * all_pairs - half * diagonal),
        ("½ Σ_f [(Σ_i v_if x_i)(Σ_j v_jf x_j) − Σ_i v_if² x_i²]", half * by_factor_products),
        ("½ Σ_f [(Σ_i v_if x_i)² − Σ_i v_if² x_i²]", pairwise_rendle(x, V)),
    ]


def reference_page_steps(x: sp.Matrix, V: sp.Matrix) -> list[tuple[str, sp.Expr]]:
    """The two intermediate lines of the SystemDS reference page's derivation, read literally.

    Apache SystemDS, "Algorithms Reference: Factorization Machines" (erratum R1): its first
    line drops ⟨v_i, v_j⟩ from the double sum (we read its second term as ⟨v_i, v_i⟩, the
    only reading in which j is bound); its second line drops x_i x_j from the triple sum.
    Chapter 01 shows that both differ from the pair sum.
    """
    n, k = V.shape
    half = sp.Rational(1, 2)
    first = half * sum(x[i] * x[j] for i in range(n) for j in range(n)) - half * sum(
        _dot(V, i, i) * x[i] * x[i] for i in range(n)
    )
    second = half * (
        sum(V[i, f] * V[j, f] for i in range(n) for j in range(n) for f in range(k))
        - sum(V[i, f] ** 2 * x[i] ** 2 for i in range(n) for f in range(k))
    )
    return [("page line 1 (no ⟨v_i,v_j⟩ in the double sum)", first), ("page line 2 (no x_i x_j)", second)]


def rendle_identity_difference(n: int, k: int) -> sp.Expr:
    """Expanded (pair sum − Rendle form) for concrete n, k: exactly 0 when the identity holds."""
    x, _, _, V = fm_symbols(n, k)
    return sp.expand(pairwise_double_sum(x, V) - pairwise_rendle(x, V))


def _peel_last(s: sp.Sum) -> sp.Expr:
    """Σ_{i=a}^{b} g(i) → Σ_{i=a}^{b−1} g(i) + g(b), peeling the outermost index."""
    *inner, (var, lo, hi) = s.limits
    last = sp.Sum(s.function, *inner).subs(var, hi) if inner else s.function.subs(var, hi)
    return sp.Sum(s.function, *inner, (var, lo, hi - 1)) + last


def rendle_induction() -> dict[str, sp.Expr]:
    """Rendle's identity for symbolic n, per factor f, by induction on n.

    With P(n) = Σ_{j=2}^{n} Σ_{i=1}^{j−1} v_if v_jf x_i x_j and
    R(n) = ½[(Σ_{i≤n} v_if x_i)² − Σ_{i≤n} v_if² x_i²], it returns sympy expressions that
    are 0 exactly when

    * ``base``: P(1) = R(1) (no pairs; the two squares cancel);
    * ``pair_increment``: P(n+1) − P(n) = Σ_{i≤n} v_if v_{n+1,f} x_i x_{n+1} (peeling j = n+1);
    * ``step``: R(n+1) − R(n) equals that same increment.

    Summing over f gives the identity for ⟨v_i, v_j⟩ = Σ_f v_if v_jf and every n ≥ 1, k ≥ 1.
    """
    i, j, f, n = sp.symbols("i j f n", integer=True, positive=True)
    x, v = sp.IndexedBase("x"), sp.IndexedBase("v")
    half = sp.Rational(1, 2)

    def pairs(m):
        return sp.Sum(sp.Sum(v[i, f] * v[j, f] * x[i] * x[j], (i, 1, j - 1)), (j, 2, m))

    def rendle(m):
        return half * (sp.Sum(v[i, f] * x[i], (i, 1, m)) ** 2 - sp.Sum(v[i, f] ** 2 * x[i] ** 2, (i, 1, m)))

    increment = sp.Sum(v[i, f] * v[n + 1, f] * x[i] * x[n + 1], (i, 1, n))
    pairs_next = _peel_last(pairs(n + 1))  # P(n) + (pairs with j = n+1)
    rendle_next = half * (
        _peel_last(sp.Sum(v[i, f] * x[i], (i, 1, n + 1))) ** 2
        - _peel_last(sp.Sum(v[i, f] ** 2 * x[i] ** 2, (i, 1, n + 1)))
    )
    return {
        "base": sp.simplify(pairs(1).doit() - rendle(1).doit()),
        "pair_increment": sp.simplify(pairs_next - pairs(n) - increment),
        "step": sp.simplify(sp.expand(rendle_next - rendle(n)) - increment),
    }


# --------------------------------------------------------------------------- the gradient (chapter 02)


def symbolic_gradient(n: int, k: int):
    """``(x, V, y_hat, derived, closed)`` for a symbolic FM of size (n, k).

    ``y_hat`` is the definition w0 + Σ w_i x_i + Σ_{i<j} ⟨v_i, v_j⟩ x_i x_j (pairs spelled
    out); ``derived[i, f] = ∂ŷ/∂v_if`` by sympy from it; ``closed[i, f]`` is
    x_i Σ_j v_jf x_j − v_if x_i².
    """
    x, w0, w, V = fm_symbols(n, k)
    y_hat = fm_prediction(x, w0, w, V)
    derived = sp.Matrix(n, k, lambda i, f: sp.diff(y_hat, V[i, f]))
    closed = sp.Matrix(n, k, lambda i, f: x[i] * sum(V[j, f] * x[j] for j in range(n)) - V[i, f] * x[i] ** 2)
    return x, V, y_hat, derived, closed


def note_gradient(x: sp.Matrix, V: sp.Matrix) -> sp.Matrix:
    """The gradient note's final formula in our symbols: x_i Σ_j v_jf x_j − 2 v_if x_i² (erratum E1)."""
    n, k = V.shape
    return sp.Matrix(n, k, lambda i, f: x[i] * sum(V[j, f] * x[j] for j in range(n)) - 2 * V[i, f] * x[i] ** 2)


def e1_explanation(n: int, k: int, i: int, f: int) -> dict[str, sp.Expr]:
    """Why the note's formula has −2 v_if x_i²: it differentiates with Z_f held fixed.

    With Z = Σ_j v_jf x_j (the note's memoised Z_i, our s_f), the terms of the pairwise
    part that contain v_if are φ_if = v_if x_i Z − v_if² x_i². Returned (all sympy):

    * ``rest``: ∂(pairwise − φ_if)/∂v_if with Z substituted: 0 when φ_if holds every
      v_if term (it does);
    * ``z_fixed``: ∂φ_if/∂v_if treating Z as a constant (the note's result);
    * ``total``: ∂φ_if/∂v_if after substituting Z (the correct derivative);
    * ``chain_term``: ∂φ_if/∂Z · ∂Z/∂v_if, the term the note drops (= v_if x_i²).
    """
    x, _, _, V = fm_symbols(n, k)
    Z = sp.Symbol("Z", real=True)
    Z_expr = sum(V[j, f] * x[j] for j in range(n))
    v, xi = V[i, f], x[i]
    phi = v * xi * Z - v**2 * xi**2
    return {
        "phi_if": phi,
        "rest": sp.expand(sp.diff(pairwise_rendle(x, V) - phi.subs(Z, Z_expr), v)),
        "z_fixed": sp.diff(phi, v),
        "total": sp.expand(sp.diff(phi.subs(Z, Z_expr), v)),
        "chain_term": sp.expand(sp.diff(phi, Z).subs(Z, Z_expr) * sp.diff(Z_expr, v)),
        "Z": Z_expr,
    }


SLIP_VARIANTS = {
    # SystemDS nn/layers/fm.dml, backward(): g_V1 starts from column 1 of xv = X %*% V, and the
    # loop `for (j in 2:k)` appends xv[,k] (not xv[,j]): factor 1 reads its own column, 2..k the last
    "first-own-rest-last": lambda k: [0] + [k - 1] * (k - 1),
    # the slip as it is sometimes paraphrased: the last column of XV for every factor
    "all-last": lambda k: [k - 1] * k,
}


def slipped_columns(k: int, variant) -> list[int]:
    """Which column of XV (0-based) the backward pass uses for each factor f = 0..k−1.

    ``variant`` is a name in :data:`SLIP_VARIANTS` or an explicit list of k column indices
    (the correct backward pass is ``list(range(k))``).
    """
    if isinstance(variant, str):
        return SLIP_VARIANTS[variant](k)
    cols = [int(c) for c in variant]
    if len(cols) != k or not all(0 <= c < k for c in cols):
        raise FMInputError(f"a column map needs k = {k} indices in [0, {k}), got {variant!r}")
    return cols


def slipped_symbolic_gradient(n: int, k: int, variant) -> sp.Matrix:
    """∂ŷ/∂V as a backward pass with column map c computes it, symbolically: x_i s_{c(f)} − v_if x_i²."""
    x, _, _, V = fm_symbols(n, k)
    cols = slipped_columns(k, variant)
    return sp.Matrix(n, k, lambda i, f: x[i] * sum(V[j, cols[f]] * x[j] for j in range(n)) - V[i, f] * x[i] ** 2)
