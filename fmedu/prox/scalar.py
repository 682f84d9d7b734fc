"""The prox step's per-sample scalar mathematics: the one home of these formulas.

Plain Python on floats, written so that the same source also compiles with numba: the
readable prox code (:mod:`fmedu.prox.dual`, chapters 05 and 06) calls these functions as
they are, and ``register_jitable`` lets the MovieLens engine (:mod:`fmedu.engine`, chapter
07) call them from its compiled CPU and GPU kernels. Keep them free of Python objects,
exceptions and closures.

A sample with ones at ``idx`` (d = nnz of them) enters the step only through four numbers
(the *sample scalars*): the bias sum B = w0 + Σ_idx w_i, A = Σ_idx ‖v_i‖², C = ‖Σ_idx v_i‖²,
and d. With β = η y z, E = 1 + β (the eigenvalue of S(z) orthogonal to 1) and
D = 1 − (d − 1)β (its eigenvalue along 1), the minimiser θ(z) of φ(·, z) predicts

    ŷ(θ(z)) = B + (d + 1)β + ½[C (1 + (d − 1)β²) / (D² E²) − A / E²].
"""

from __future__ import annotations

import math

from numba.extending import register_jitable

__all__ = [
    "softplus_neg",
    "sigmoid",
    "logit",
    "prediction_after",
    "q2_value",
    "bracketed_newton",
    "newton_z",
    "newton_z_no_pairs",
    "EPS",
    "FREE_NEWTON",
]

EPS = 2.220446049250313e-16  # float64 machine epsilon
# Evaluations of the z-iteration taken as plain Newton steps before the halving rule of
# bracketed_newton applies: a sample that converges within them (from the start below,
# almost every sample, in a handful) gets the very floats of the iteration without the rule.
FREE_NEWTON = 40


@register_jitable
def softplus_neg(margin: float) -> float:
    """log(1 + exp(−margin)): the logistic loss at margin y·ŷ, without overflow."""
    if margin > 0:
        return math.log1p(math.exp(-margin))
    return -margin + math.log1p(math.exp(margin))


@register_jitable
def sigmoid(t: float) -> float:
    """σ(t) = 1/(1 + e^(−t)) without overflow."""
    if t >= 0:
        return 1.0 / (1.0 + math.exp(-t))
    e = math.exp(t)
    return e / (1.0 + e)


@register_jitable
def logit(z: float) -> float:
    """log(z / (1 − z)), the inverse of :func:`sigmoid`, for z in (0, 1)."""
    return math.log(z) - math.log1p(-z)


@register_jitable
def prediction_after(z: float, B: float, A: float, C: float, d: float, eta: float, y: float) -> tuple[float, float]:
    """(ŷ(θ(z)), dŷ(θ(z))/dz) from the sample scalars (module docstring); chapter 06 derives it.

    Only + − × ÷ on its arguments and integer constants, so that sympy symbols pass through
    unchanged: chapter 06 compares this very function with its sympy derivation.
    """
    beta = eta * y * z
    E = 1 + beta
    D = 1 - (d - 1) * beta
    num = 1 + (d - 1) * beta * beta
    ratio = num / (D * D * E * E)
    y_hat = B + (d + 1) * beta + (C * ratio - A / (E * E)) / 2
    # d(ratio)/dβ by the quotient rule, without dividing by num (num = 0 is possible when d = 0)
    d_ratio = (2 * (d - 1) * beta * D * E + 2 * num * ((d - 1) * E - D)) / (D * D * D * E * E * E)
    slope = eta * y * ((d + 1) + (C * d_ratio + 2 * A / (E * E * E)) / 2)
    return y_hat, slope


@register_jitable
def q2_value(z: float, A: float, C: float, d: float, eta: float, y: float) -> float:
    """q2(z) = min over V[idx] of −zy Σ_{i<j}⟨v_i,v_j⟩ + ‖V[idx] − V_t[idx]‖²/(2η), for d ≥ 1.

    V_t[idx] splits into its part along 1 (squared norm C/d) and the rest (A − C/d); S(z)⁻¹
    divides them by D and E, and the minimum of the quadratic is
    [A − C/(d·D) − (A − C/d)/E] / (2η). Chapter 06 derives it; like :func:`prediction_after`
    it accepts sympy symbols.
    """
    beta = eta * y * z
    E = 1 + beta
    D = 1 - (d - 1) * beta
    return (A - C / (d * D) - (A - C / d) / E) / (2 * eta)


@register_jitable
def bracketed_newton(
    t: float, g: float, slope: float, lo: float, hi: float, g_before: float, evaluations: int
) -> tuple[float, float, float, float]:
    """One step of the safeguarded Newton iteration on a decreasing g with g' ≤ −1:
    (t_next, lo, hi, g_before for the next step).

    ``g`` = g(t), ``slope`` = g'(t), ``evaluations`` counts this one; ``g_before`` is what the
    previous step returned (∞ at the first): the previous g once :data:`FREE_NEWTON`
    evaluations are done, ∞ before, so the first ones take the Newton step whenever it stays
    in the bracket. Since g' ≤ −1, |t − t*| ≤ |g(t)|: the root lies in [t + g, t] when g < 0 and in
    [t, t + g] when g > 0, so the first evaluation brackets it and every later one shrinks the
    bracket (lo, hi). The step is Newton's, t − g/g', unless it leaves the bracket or the last
    step did not halve |g|; then it bisects the bracket. Without the second rule Newton can
    alternate between the two flat ends of g, where g' ≈ −1, creeping inwards by a few per cent
    per step (a d = 11, y = −1 sample took over 100 evaluations); with it, each evaluation
    either halves |g| or halves the bracket (whose width is at most the last |g|), so the
    iteration converges from any start.
    """
    if g > 0.0:
        lo = t
        hi = min(hi, t + g)
    else:
        hi = t
        lo = max(lo, t + g)
    t_next = t - g / slope
    if not (t_next > lo and t_next < hi) or abs(g) > 0.5 * abs(g_before):
        t_next = 0.5 * (lo + hi)
    return t_next, lo, hi, (g if evaluations >= FREE_NEWTON else math.inf)


@register_jitable
def newton_z(B: float, A: float, C: float, d: float, eta: float, y: float, max_iter: int) -> tuple[float, int]:
    """z* = argmax q on [0, 1] and the number of evaluations used (chapter 06).

    The optimality condition q'(z) = −y ŷ(θ(z)) − logit(z) = 0 is solved in t = logit(z):
    g(t) = −y ŷ(θ(σ(t))) − t has g'(t) ≤ −1 below the step-size bound, so |t − t*| ≤ |g(t)|
    and the first evaluation already brackets the root (:func:`bracketed_newton`: Newton
    steps, bisection where a step leaves the bracket or fails to halve |g|). The start
    t = −y ŷ(θ_t) is the root for η → 0. Beyond the bound (demonstrations only) the bracket
    is also cut at the pole of S(z)⁻¹, where q = −∞.
    """
    t_pole = math.inf
    if d >= 2.0:
        z_pole = 1.0 / (eta * (d - 1.0)) if y > 0 else 1.0 / eta
        if z_pole < 1.0:
            t_pole = logit(z_pole)
    t = -y * (B + 0.5 * (C - A))
    if t >= t_pole:
        t = t_pole - 1.0
    lo = -math.inf
    hi = t_pole
    g_before = math.inf
    evaluations = 0
    for _ in range(max_iter):
        z = sigmoid(t)
        f, df = prediction_after(z, B, A, C, d, eta, y)
        evaluations += 1
        g = -y * f - t
        # residual at rounding level: since g' ≤ −1, |t − t*| ≤ |g| ≈ 1e-15 (1 + |t| + |ŷ|)
        if abs(g) <= 1e-15 * (1.0 + abs(t) + abs(f) + abs(B)):
            return z, evaluations  # σ(t) of this very t
        t_next, lo, hi, g_before = bracketed_newton(t, g, -y * df * z * (1.0 - z) - 1.0, lo, hi, g_before, evaluations)
        if abs(t_next - t) <= 1e-15 * (1.0 + abs(t)):
            t = t_next
            break
        t = t_next
    return sigmoid(t), evaluations


@register_jitable
def newton_z_no_pairs(c: float, kappa: float, eta: float, max_iter: int) -> tuple[float, int]:
    """z* for a sample without pairs (d ≤ 1), exact for any η > 0, and the evaluations used.

    Without pairs ŷ(θ(z)) = B' + κβ with β = ηyz (κ = 1 + ρd; ρ = 1 for no penalty), so
    z = σ(c − κηz) with c = −yB'. For large η the root in t = logit(z) lies near
    −log(κη) and the Newton iteration of :func:`newton_z` needs about one step per unit
    of t (its function is exponential there). In s = ηz and u = log s instead,

        G(u) = u − log η − log σ(c − κ e^u) = 0,   G'(u) = 1 + σ(κ s − c) κ s ≥ 1,

    G is increasing and convex (u plus a softplus of an increasing convex function), so
    |u − u*| ≤ |G(u)| brackets the root from the first evaluation and Newton converges from
    either side. The start is the smaller of two upper estimates: u ≤ log η + log σ(c)
    (because s = ησ(c − κs) ≤ ησ(c)) and log(L/κ), L = log η + c, the root of u + κe^u = L
    when e^u ≫ 1. Returns z = e^(u − log η) at the root (relative error that of u).
    """
    log_eta = math.log(eta)
    u = log_eta - softplus_neg(c)  # log η + log σ(c)
    big = log_eta + c
    if big > 1.0 and math.log(big / kappa) < u:
        u = math.log(big / kappa)
    lo = -math.inf
    hi = math.inf
    evaluations = 0
    for _ in range(max_iter):
        s = math.exp(u)
        x = c - kappa * s
        G = u - log_eta + softplus_neg(x)
        evaluations += 1
        slope = 1.0 + sigmoid(-x) * kappa * s
        if abs(G) <= 1e-15 * (1.0 + abs(u) + abs(log_eta) + abs(x)):
            u -= G / slope  # one last Newton correction at rounding level
            break
        if G > 0.0:
            hi = u
            lo = max(lo, u - G)
        else:
            lo = u
            hi = min(hi, u - G)
        u_next = u - G / slope
        if not (u_next > lo and u_next < hi):
            u_next = 0.5 * (lo + hi)
        if abs(u_next - u) <= 1e-15 * (1.0 + abs(u)):
            u = u_next
            break
        u = u_next
    return math.exp(u - log_eta), evaluations
