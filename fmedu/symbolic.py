"""sympy builders for exact checks.

Notebook 01 uses the FM symbols, the reformulation chain and the two proofs of Rendle's
identity (concrete sizes, and symbolic n by induction). Later notebooks add their own
builders here or in their own modules.
"""

from __future__ import annotations

import sympy as sp

__all__ = [
    "fm_symbols",
    "pairwise_double_sum",
    "pairwise_rendle",
    "reformulation_chain",
    "seed_displayed_steps",
    "rendle_identity_difference",
    "rendle_induction",
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


def seed_displayed_steps(x: sp.Matrix, V: sp.Matrix) -> list[tuple[str, sp.Expr]]:
    """The two intermediate lines of the algorithms-reference seed, read literally.

    Its first line drops ⟨v_i, v_j⟩ from the double sum (we read its second term as
    ⟨v_i, v_i⟩, the only bound reading); its second line drops x_i x_j from the
    triple sum. Notebook 01 shows both differ from the pair sum.
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
    return [("seed line 1 (no ⟨v_i,v_j⟩ in the double sum)", first), ("seed line 2 (no x_i x_j)", second)]


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
    y_hat = w0 + sum(w[i] * x[i] for i in range(n)) + pairwise_double_sum(x, V)
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
    # the published backward pass: factor 1 uses its own column of XV, factors 2..k the last one
    "first-own-rest-last": lambda k: [0] + [k - 1] * (k - 1),
    # the slip as often paraphrased: the last column of XV for every factor
    "all-last": lambda k: [k - 1] * k,
}


def slipped_columns(k: int, variant: str) -> list[int]:
    """Which column of XV (0-based) the slipped backward pass uses for each factor f = 0..k−1."""
    return SLIP_VARIANTS[variant](k)


def slipped_symbolic_gradient(n: int, k: int, variant: str) -> sp.Matrix:
    """∂ŷ/∂V as the slipped backward pass computes it, symbolically: x_i s_{c(f)} − v_if x_i²."""
    x, _, _, V = fm_symbols(n, k)
    cols = slipped_columns(k, variant)
    return sp.Matrix(n, k, lambda i, f: x[i] * sum(V[j, cols[f]] * x[j] for j in range(n)) - V[i, f] * x[i] ** 2)
