"""Adam with torch.optim.Adam semantics, lazily: a row's zero-gradient steps in O(1) (chapter 07).

``torch.optim.Adam`` moves *every* parameter at every step: after a parameter's last
gradient its decayed first moment keeps moving it, and on MovieLens a row is touched only
every few hundred or thousand samples. The engine instead leaves an untouched row alone and
*catches it up* when it is next touched (or at the end of an epoch): the K zero-gradient steps
it missed are applied at once, by the closed form below, and replayed one by one only where
that form does not apply. Every function here is plain Python on floats and arrays decorated
with :func:`fmedu.engine.jit.shared` (numba's ``register_jitable`` for :func:`replay`): the
same source runs in the CPU kernels
(:mod:`fmedu.engine.cpu`), in the GPU kernels (:mod:`fmedu.engine.cuda`) and in the tests.

**The closed form.** A parameter p with moments m0, v0 after its last gradient at step t0
meets zero gradients at steps s = t0 + i, i = 1..K, so m_s = β1^i m0, v_s = β2^i v0 and step s
moves it by u_i = (lr / c1(s)) · m_s / (√(v_s / c2(s)) + ε), with the bias corrections
c1(s) = 1 − β1^s and c2(s) = 1 − β2^s. Put A = lr·m0/√v0, δ = ε/√v0,
r_n = β1·β2^(−(n+1)/2) and g_n(s) = c2(s)^((n+1)/2) / c1(s). Expanding
1/(1 + x) = Σ_{n<N} (−x)^n + (−x)^N/(1 + x) in x = δ β2^(−i/2) √c2(s) (an identity for every
x ≥ 0) gives the total move

    Σ_{i=1..K} u_i = A · Σ_{n<N} (−δ)^n C_n(t0, K) + R_N,    |R_N| ≤ |A| δ^N C_N(t0, K),
    C_n(t0, K) = Σ_{i=1..K} r_n^i g_n(t0 + i),

and m ← β1^K m0, v ← β2^K v0. From step ``T_BC`` = 37,412 on, both bias corrections are
exactly 1.0 in float64 (g_n = 1), and C_n = r_n (1 − r_n^K)/(1 − r_n) is the plain geometric
sum. Earlier windows use D_n(t0) = C_n(t0, ∞), tabulated once in extended precision by the
backward recurrence D_n(t0) = r_n (g_n(t0 + 1) + D_n(t0 + 1)): then
C_n(t0, K) = D_n(t0) − r_n^K D_n(t0 + K). The number of terms N (at most ``SERIES_TERMS``) is
chosen per parameter so that the bound on R_N is below 2⁻⁵⁵ of the move; a parameter whose
δ is too large for that (√v0 not large against ε) is replayed step by step, which stops as soon
as a step no longer changes p (the moves shrink at every step, so no later one can).

Tables (:func:`tables`, a tuple passed to the kernels): ``bias1`` and ``bias2_sqrt`` ``(T_BC + 1,)``
(c1(s) and √c2(s), computed as torch computes them, index min(s, T_BC)); ``series``
``(T_BC + 1, SERIES_TERMS + 1)`` (D_n(t0) in row t0); ``geom`` ``(GEOM_LEN, SERIES_TERMS + 1)``
(r_n^K in row K; below 10⁻⁴⁰ beyond) and ``geom_sums`` (Σ_{i=1..K} r_n^i, constant to the last
bit beyond); ``decay`` ``(GEOM_LEN, 2)`` (β1^K, β2^K); ``late`` ``(GEOM_LEN, LATE_TERMS + 1)``
(T_n(K)); ``gap_terms`` ``(T_BC + 1, SERIES_TERMS + 1)`` (g_n(s) in row s, for the
term-by-term sums of short early gaps). A gap reads one row of each: its coefficients share a
cache line.

**From step 37,412 on, every δ.** The series in δ needs δ small (√v0 large against ε); a
parameter whose gradients have faded (a saturated model, large step sizes) has δ ≫ 1 and would
be replayed. In the late regime the engine therefore expands around δ instead: with
a = 1/(1 + δ), z = aδ < 1 and e_i = β2^(−i/2) − 1 ≥ 0,
1/(1 + δβ2^(−i/2)) = a / (1 + z e_i) = a Σ_{n<N} (−z e_i)^n + remainder, so

    Σ_{i=1..K} u_i = A a Σ_{n<N} (−z)^n T_n(K) + R,   T_n(K) = Σ_{i=1..K} r_0^i e_i^n,   |R| ≤ |A| a z^N T_N(K).

Only the first few hundred steps of a gap matter (r_0^i), where e_i ≤ 0.2; T_12 / T_0 < 10⁻¹⁹,
so ``LATE_TERMS`` = 12 terms meet the 2⁻⁵⁵ bound for every δ and nothing is replayed there.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba.extending import register_jitable

from .jit import shared

__all__ = [
    "BETA1",
    "BETA2",
    "EPS",
    "T_BC",
    "SERIES_TERMS",
    "tables",
    "step_factors",
    "adam_update",
    "decay_factors",
    "gap_coefficients",
    "series_applies",
    "series_catch_up",
    "late_applies",
    "late_coefficients",
    "late_catch_up",
    "catch_up",
    "replay",
]

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8  # torch.optim.Adam defaults
SERIES_TERMS = 6  # N: the series handles δ up to about 2e-3, larger δ is replayed (the tuples are written out for 6)
TOLERANCE = 2.0**-55  # bound on the series remainder, relative to the move
DIRECT_GAP = 16  # gaps up to this many steps are summed term by term (no cancellation)
GEOM_LEN = 1024  # r_n^K is tabulated for K < GEOM_LEN (r_N^1024 < 1e-40: zero against 1)
LATE_TERMS = 12  # terms of the late-regime expansion: T_12 / T_0 < 1e-19, so it applies to every δ


def _first_step_with_unit_corrections() -> int:
    """The first step t from which 1 − β1^t and 1 − β2^t are both exactly 1.0 in float64."""
    t = 1
    while 1.0 - BETA2**t != 1.0 or 1.0 - BETA1**t != 1.0:
        t += 1
    return t


T_BC = _first_step_with_unit_corrections()  # 37,412


@functools.lru_cache(maxsize=1)
def tables() -> tuple[np.ndarray, ...]:
    """``(bias1, bias2_sqrt, series, geom, geom_sums, decay, late, gap_terms)``: the read-only tables of
    the module docstring."""
    steps = range(1, T_BC + 1)  # entry 0 is never read
    bias1 = np.array([1.0] + [1.0 - BETA1**t for t in steps])  # as torch: 1 - beta1 ** step
    bias2_sqrt = np.array([1.0] + [(1.0 - BETA2**t) ** 0.5 for t in steps])
    ld = np.longdouble
    n = np.arange(SERIES_TERMS + 1, dtype=ld)
    r = ld(BETA1) * ld(BETA2) ** (-(n + 1) / 2)  # (N+1,)
    # g_n(s) = c2(s)^((n+1)/2) / c1(s) for s = 0..T_BC (g_n = 1 from T_BC on)
    g = bias2_sqrt.astype(ld)[None, :] ** (n[:, None] + 1) / bias1.astype(ld)[None, :]
    series = np.empty((SERIES_TERMS + 1, T_BC + 1), dtype=ld)
    series[:, T_BC] = r / (1 - r)
    for t0 in range(T_BC - 1, -1, -1):  # D_n(t0) = r_n (g_n(t0 + 1) + D_n(t0 + 1))
        series[:, t0] = r * (g[:, t0 + 1] + series[:, t0 + 1])
    K = np.arange(GEOM_LEN, dtype=ld)
    geom = r[:, None] ** K[None, :]
    geom_sums = np.cumsum(geom, axis=1) - 1  # Σ_{i=1..K} r_n^i
    decay = np.array([[BETA1**k for k in range(GEOM_LEN)], [BETA2**k for k in range(GEOM_LEN)]])
    # T_n(K) = Σ_{i=1..K} r_0^i (β2^(−i/2) − 1)^n, n = 0..LATE_TERMS
    i = np.arange(GEOM_LEN, dtype=ld)
    stretch = np.expm1(-i / 2 * np.log(ld(BETA2)))  # β2^(−i/2) − 1 without cancellation
    terms = (r[0] ** i)[None, :] * stretch[None, :] ** np.arange(LATE_TERMS + 1, dtype=ld)[:, None]
    terms[:, 0] = 0
    late = np.cumsum(terms, axis=1)
    if not np.all(late[LATE_TERMS, 1:] <= TOLERANCE * late[0, 1:]):  # the kernels rely on it
        raise AssertionError("the late-regime expansion needs more terms")
    rows = lambda table: np.ascontiguousarray(table.T.astype(np.float64))  # one row per t0 or K
    # g_n(s) = (√c2(s) / c1(s)) · √c2(s)^n in float64, multiplied in this order, as a gap's
    # term-by-term sum uses it (the kernels read a row instead of dividing and multiplying)
    gap_terms = np.empty((T_BC + 1, SERIES_TERMS + 1))
    gap_terms[:, 0] = bias2_sqrt / bias1
    for term in range(1, SERIES_TERMS + 1):
        gap_terms[:, term] = gap_terms[:, term - 1] * bias2_sqrt
    out = (bias1, bias2_sqrt, rows(series), rows(geom), rows(geom_sums), rows(decay), rows(late), gap_terms)
    for table in out:
        table.setflags(write=False)
    return out


@shared
def step_factors(t, lr, tables):
    """(lr / c1(t), √c2(t)) of step t ≥ 1, as torch computes them (1.0 corrections from ``T_BC`` on)."""
    bias1, bias2_sqrt = tables[0], tables[1]
    s = min(t, bias1.shape[0] - 1)
    return lr / bias1[s], bias2_sqrt[s]


@shared
def adam_update(p, m, v, g, step_size, c2_sqrt):
    """One ``torch.optim.Adam`` step of one parameter with gradient g; returns (p, m, v).

    ``step_size``, ``c2_sqrt`` from :func:`step_factors`. The operations of torch's
    single-tensor Adam in its order: ``exp_avg.lerp_(g, 1 − β1)``,
    ``exp_avg_sq.mul_(β2).addcmul_(g, g, value=1 − β2)``,
    ``param.addcdiv_(exp_avg, √v / √c2 + ε, value=−step_size)``.
    """
    m = m + (1.0 - BETA1) * (g - m)
    v = v * BETA2 + ((1.0 - BETA2) * g) * g
    p = p + (-step_size) * m / (math.sqrt(v) / c2_sqrt + EPS)
    return p, m, v


@shared
def decay_factors(K, decay):
    """(β1^K, β2^K) for K ≥ 0 zero-gradient steps."""
    if K < decay.shape[0]:
        return decay[K, 0], decay[K, 1]
    return math.pow(BETA1, float(K)), math.pow(BETA2, float(K))


@shared
def gap_coefficients(t0, K, tables, work):
    """(C_0, ..., C_N) of the gap t0+1 .. t0+K, N = ``SERIES_TERMS``: the sums one row's columns share.

    From step ``T_BC`` on these are tabulated geometric sums; before it, gaps of up to
    ``DIRECT_GAP`` steps are summed term by term and longer ones take the difference of two
    tabulated infinite sums, whose cancellation costs at most a factor 1.2.
    ``work`` ``(N + 1,)`` is scratch; the result is a tuple, so that the per-column code below
    takes no arrays (and no reference counting) in its loop.
    """
    bias1, series, geom, geom_sums = tables[0], tables[2], tables[3], tables[4]
    last = bias1.shape[0] - 1
    terms = work.shape[0]
    if t0 + 1 >= last:  # unit bias corrections throughout: the plain geometric sums
        k = min(K, geom_sums.shape[0] - 1)
        for n in range(terms):
            work[n] = geom_sums[k, n]
    elif K <= DIRECT_GAP:
        gap_terms = tables[7]  # g_n(s), tabulated as computed here before: the same floats
        for n in range(terms):
            work[n] = 0.0
        for i in range(1, K + 1):
            s = min(t0 + i, last)
            for n in range(terms):
                work[n] += geom[i, n] * gap_terms[s, n]
    else:
        a = min(t0, last)
        b = min(t0 + K, last)
        for n in range(terms):
            r_K = geom[K, n] if K < geom.shape[0] else 0.0
            work[n] = series[a, n] - r_K * series[b, n]
    return (work[0], work[1], work[2], work[3], work[4], work[5], work[6])


@register_jitable  # the rare path: a call, never inlined
def replay(p, m, v, lr, t0, K, tables):
    """The zero-gradient steps t0+1 .. t0+K of one parameter, one by one; returns (p, m, v).

    Stops as soon as a step leaves p unchanged: the moves shrink at every step (by a factor
    below 0.93, for every step number), so every later move rounds away too; only the moments
    still decay, in closed form. It stops too once p is NaN, which every later step leaves NaN
    (NaN == NaN is false, so the first test alone would replay the whole gap).
    """
    for i in range(1, K + 1):
        step_size, c2_sqrt = step_factors(t0 + i, lr, tables)
        p_new, m, v = adam_update(p, m, v, 0.0, step_size, c2_sqrt)
        if p_new == p or p_new != p_new:
            d1, d2 = decay_factors(K - i, tables[5])
            return (p if p_new == p else p_new), m * d1, v * d2
        p = p_new
    return p, m, v


@shared
def series_applies(m, v, coefs):
    """Whether the series (with ``SERIES_TERMS`` terms) gives the gap's move of a parameter.

    It does where its remainder bound δ^N C_N is at most 2⁻⁵⁵ of the move C_0, i.e.
    (ε²/v)³ C_6 ≤ 2⁻⁵⁵ C_0 (no square root, so that the column loops vectorise), or where
    m = 0 (no move at all).
    """
    return (m == 0.0) | (v * v * v * (TOLERANCE * coefs[0]) >= EPS**6 * coefs[6])


@shared
def series_catch_up(p, m, v, lr, coefs, decay1, decay2):
    """(p, m, v) after the gap by the series, where :func:`series_applies`; no branches.

    ``coefs`` = (C_0, ..., C_6) from :func:`gap_coefficients`; ``decay1``, ``decay2`` = β1^K,
    β2^K. All ``SERIES_TERMS`` terms are summed (Horner).
    """
    c0, c1, c2, c3, c4, c5, _ = coefs
    root = math.sqrt(v)
    inv_root = 1.0 / root if root > 0.0 else 0.0
    delta = EPS * inv_root
    total = c0 - delta * (c1 - delta * (c2 - delta * (c3 - delta * (c4 - delta * c5))))
    return p - (lr * m * inv_root) * total, m * decay1, v * decay2


@shared
def late_applies(m, v, late, k):
    """Whether the late-regime expansion (module docstring) meets its bound for this parameter.

    Always, since z < 1 and :func:`tables` checks T_N(K) ≤ 2⁻⁵⁵ T_0(K) for every K: the
    kernels and :func:`catch_up` therefore skip this check, and the tests call it to confirm
    the bound on the parameters they try. ``k`` = min(K, ``GEOM_LEN`` − 1).
    """
    z = EPS / (math.sqrt(v) + EPS)
    z_sq = z * z
    z_4 = z_sq * z_sq
    last = late.shape[1] - 1
    return (m == 0.0) | (z_4 * z_4 * z_4 * late[k, last] <= TOLERANCE * late[k, 0])


@shared
def late_coefficients(late, K):
    """(T_0(K), ..., T_11(K)): the sums one row's columns share in the late regime (a tuple, so
    that the column loop keeps them in registers)."""
    k = min(K, late.shape[0] - 1)
    return (
        late[k, 0], late[k, 1], late[k, 2], late[k, 3], late[k, 4], late[k, 5],
        late[k, 6], late[k, 7], late[k, 8], late[k, 9], late[k, 10], late[k, 11],
    )  # fmt: skip


@shared
def late_catch_up(p, m, v, lr, coefs, decay1, decay2):
    """(p, m, v) after a gap that starts at step ``T_BC`` or later, for any δ; no branches.

    The expansion around δ of the module docstring with ``LATE_TERMS`` = 12 terms (Horner;
    ``coefs`` from :func:`late_coefficients`), with A·a = lr·m/(√v + ε) and z = ε/(√v + ε):
    one square root and one division; ``decay1``, ``decay2`` = β1^K, β2^K.
    """
    t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11 = coefs
    inv_den = 1.0 / (math.sqrt(v) + EPS)
    z = EPS * inv_den
    total = t9 - z * (t10 - z * t11)
    total = t5 - z * (t6 - z * (t7 - z * (t8 - z * total)))
    total = t0 - z * (t1 - z * (t2 - z * (t3 - z * (t4 - z * total))))
    return p - (lr * m * inv_den) * total, m * decay1, v * decay2


@shared
def catch_up(p, m, v, lr, t0, K, tables, work):
    """One parameter after its K ≥ 1 zero-gradient steps t0+1 .. t0+K; returns (p, m, v).

    The series in δ where it applies, else from step ``T_BC`` on the expansion around δ (valid
    for every δ), else :func:`replay`. The kernels do the same a row at a time
    (:func:`fmedu.engine.rules.adam_catch_up_rows`); ``work`` ``(N + 1,)``.
    """
    decay1, decay2 = decay_factors(K, tables[5])
    coefs = gap_coefficients(t0, K, tables, work)
    if series_applies(m, v, coefs):
        return series_catch_up(p, m, v, lr, coefs, decay1, decay2)
    if t0 + 1 >= tables[0].shape[0] - 1:
        return late_catch_up(p, m, v, lr, late_coefficients(tables[6], K), decay1, decay2)
    return replay(p, m, v, lr, t0, K, tables)
