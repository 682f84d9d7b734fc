"""The dual function q(z) of the prox step and its maximiser z* (chapter 06).

log(1 + e^u) = max_{z∈[0,1]} u z − h*(z) with h*(z) = z log z + (1−z) log(1−z), so the prox
objective is a max over z of a quadratic in θ; below the step-size bound the min and the
max swap (Sion's minimax theorem) and q(z) = min_θ φ(θ, z) = q1(z) + q2(z) − h*(z) is
strictly concave on [0, 1]. Its pieces come in two forms: readable ones that solve for V
with tensors (:func:`q2`, :func:`q`), and closed forms from the sample scalars
(:class:`SampleScalars`), O(1) per evaluation. The scalar formulas themselves live in
:mod:`fmedu.prox.scalar`, shared with the compiled engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, NamedTuple, overload

from torch import Tensor

from ..errors import FMInputError
from ..validation import check_label, check_one_sample, check_params
from . import scalar
from .bounds import solve_vectors

__all__ = [
    "GOLDEN_TOL",
    "SampleScalars",
    "sample_scalars",
    "conjugate",
    "q1",
    "q2",
    "q",
    "q2_reduced",
    "q_reduced",
    "prediction_after",
    "prediction_after_per_feature",
    "prediction_slope",
    "penalised_bias",
    "q_prime",
    "q_second",
    "golden_section_max",
    "maximise_q_golden",
    "maximise_q_newton",
]

GOLDEN_TOL = 1e-8  # the published golden-section tolerance on z


class SampleScalars(NamedTuple):
    """The four numbers of one sample that q(z) and ŷ(θ(z)) depend on.

    ``B`` = w0 + Σ_idx w_i (the current prediction's linear part), ``A`` = Σ_idx ‖v_i‖²,
    ``C`` = ‖Σ_idx v_i‖², ``d`` = len(idx); ``w_sum`` = Σ_idx w_i, needed only with a λ_w
    penalty (:func:`sample_scalars` records it).
    """

    B: float
    A: float
    C: float
    d: int
    w_sum: float = math.nan  # Σ_idx w_i on its own (the penalised step shrinks it); NaN: not recorded

    @property
    def mean_energy(self) -> float:
        """m = C/d: squared norm of V[idx]'s component along 1 (0 when d = 0)."""
        return self.C / self.d if self.d else 0.0

    @property
    def perp_energy(self) -> float:
        """p = A − C/d ≥ 0: squared norm of V[idx]'s component orthogonal to 1 (clamped at 0)."""
        return max(self.A - self.mean_energy, 0.0) if self.d else 0.0

    @property
    def y_hat(self) -> float:
        """ŷ(θ_t) = B + ½(C − A): the current prediction on this sample."""
        return self.B + 0.5 * (self.C - self.A)


def sample_scalars(idx: Tensor, w0: Tensor, w: Tensor, V: Tensor, *, check: bool = True) -> SampleScalars:
    """B = w0 + Σ_idx w_i, A = Σ_idx ‖v_i‖², C = ‖Σ_idx v_i‖², d = len(idx): O(nnz·k).

    ``idx``: the distinct feature indices of one sample (checked unless ``check=False``).
    """
    if check:
        check_params(w0, w, V)
        idx = check_one_sample(idx, V.shape[0])
    rows = V[idx]  # (nnz, k), a copy
    total = rows.sum(0)  # (k,): s = Σ v_i
    return SampleScalars(
        B=float(w0 + w[idx].sum()),
        A=float(rows.square().sum()),
        C=float(total.square().sum()),
        d=int(idx.numel()),
        w_sum=float(w[idx].sum()),
    )


def _sign(y) -> int:
    """The label as the integer +1 or −1 (validated), so that sympy inputs stay exact."""
    return 1 if check_label(y) > 0 else -1


def conjugate(z: float) -> float:
    """h*(z) = sup_t t z − log(1 + eᵗ), the convex conjugate of the logistic function log(1 + eᵗ).

    On [0, 1] it is the negative entropy z log z + (1−z) log(1−z) (0 log 0 = 0); outside
    [0, 1] the supremum is +∞ (chapter 06, erratum E9: the proximal-point blog post writes 0
    there), which is what keeps the dual variable in [0, 1]. Returns ``math.inf`` there.
    """
    value = float(z)
    if math.isnan(value):
        raise FMInputError(f"z (dual variable) must be a real number, got {z!r}")
    if not (0.0 <= value <= 1.0):
        return math.inf

    def xlogx(t: float) -> float:
        return t * math.log(t) if t > 0 else 0.0

    return xlogx(value) + xlogx(1.0 - value)


def q1(z: float, B: float, d: int, y: float, eta: float) -> float:
    """q1(z) = min over (w0, w) = −y B z − η (1 + d) z² / 2: a concave parabola.

    Sympy symbols for ``z``, ``B`` and ``eta`` pass through (chapter 06 derives it).
    """
    return -_sign(y) * B * z - eta * (1 + d) * z * z / 2


def q2(z: float, V_idx: Tensor, y: float, eta: float) -> float:
    """q2(z) = min over V[idx] of −z y Σ_{i<j}⟨v_i,v_j⟩ + ‖V[idx] − V_t[idx]‖²/(2η).

    Solves S(z) V = V_t with Sherman–Morrison (:func:`solve_vectors`) and evaluates the
    objective at the solution with tensor ops; ``V_idx`` is the ``(d, k)`` block V_t[idx].
    """
    y = check_label(y)
    if z == 0:
        return 0.0
    V_new = solve_vectors(V_idx, eta, y, z)
    pairs = 0.5 * (V_new.sum(0).square().sum() - V_new.square().sum())
    move = (V_new - V_idx).square().sum()
    return float(-z * y * pairs + move / (2 * eta))


def q(z: float, B: float, V_idx: Tensor, y: float, eta: float) -> float:
    """q(z) = q1(z) + q2(z) − h*(z), the dual function, from its readable pieces."""
    return q1(z, B, V_idx.shape[0], y, eta) + q2(z, V_idx, y, eta) - conjugate(z)


def q2_reduced(z: float, s: SampleScalars, y: float, eta: float) -> float:
    """q2(z) from the sample scalars: [A − C/(d·D) − (A − C/d)/E]/(2η) (:func:`scalar.q2_value`).

    Sympy symbols for ``z``, ``eta`` and the scalars pass through (chapter 06 checks the
    formula against its derivation); ``y`` is a label ±1.
    """
    if s.d == 0:
        return 0.0
    return scalar.q2_value(z, s.A, s.C, s.d, eta, _sign(y))


def q_reduced(z: float, s: SampleScalars, y: float, eta: float) -> float:
    """q(z) from the sample scalars (O(1) per evaluation)."""
    return q1(z, s.B, s.d, y, eta) + q2_reduced(z, s, y, eta) - conjugate(z)


def penalised_bias(s: SampleScalars, rho) -> float:
    """B' = w0 + ρ Σ_idx w_i, the bias sum after the λ_w shrinkage ρ = 1/(1 + ηλ_w) (B at ρ = 1)."""
    if rho == 1:
        return s.B
    if isinstance(s.w_sum, float) and math.isnan(s.w_sum):
        raise FMInputError(
            "a lam_w penalty needs the sample's Σ w_i: build the scalars with sample_scalars(idx, w0, w, V) "
            "or pass SampleScalars(B, A, C, d, w_sum)"
        )
    return (s.B - s.w_sum) + rho * s.w_sum


def _penalised(s: SampleScalars, eta, lam_w, lam_v) -> tuple[float, float, float]:
    """(B', ρ, a) of the penalised step: ρ = 1/(1 + ηλ_w), a = 1 + ηλ_v."""
    rho = 1 / (1 + eta * lam_w)
    return penalised_bias(s, rho), rho, 1 + eta * lam_v


def _prediction_and_slope(z, s: SampleScalars, y, eta, lam_w, lam_v):
    """(ŷ(θ(z)), dŷ(θ(z))/dz): the unpenalised formula (:mod:`fmedu.prox.scalar`) at λ = 0,
    else the penalised one (:func:`fmedu.engine.penalised.prediction_after`)."""
    if lam_w == 0 and lam_v == 0:
        return scalar.prediction_after(z, s.B, s.A, s.C, s.d, eta, _sign(y))
    from ..engine import penalised  # here: fmedu.engine imports fmedu.prox

    B, rho, a = _penalised(s, eta, lam_w, lam_v)
    return penalised.prediction_after(z, B, s.A, s.C, s.d, eta, _sign(y), rho, a)


def prediction_after(z: float, s: SampleScalars, y: float, eta: float, *, lam_w=0.0, lam_v=0.0) -> float:
    """ŷ(θ(z)): the prediction at the minimiser of φ(·, z); at z = 0 it is ŷ(θ_t).

    Accepts sympy symbols for ``z``, ``eta`` and the scalars (chapter 06). ``lam_w``,
    ``lam_v``: the per-touch L2 penalties (one number each; :func:`prediction_after_per_feature`
    for one per feature), with ŷ(θ(z)) = B' + (1 + ρd)β + ½[C(a² + (d−1)β²)/(D²E²) − A/E²]
    (:mod:`fmedu.engine.penalised` derives it).
    """
    return _prediction_and_slope(z, s, y, eta, lam_w, lam_v)[0]


def prediction_slope(z: float, s: SampleScalars, y: float, eta: float, *, lam_w=0.0, lam_v=0.0) -> float:
    """dŷ(θ(z))/dz, the derivative of :func:`prediction_after` (same arguments)."""
    return _prediction_and_slope(z, s, y, eta, lam_w, lam_v)[1]


def prediction_after_per_feature(
    z: float, w0: float, w_idx: Tensor, V_idx: Tensor, y, eta: float, lam_w_idx, lam_v_idx
) -> tuple[float, float]:
    """(ŷ(θ(z)), dŷ(θ(z))/dz) with one penalty strength per touched feature, O(d·k).

    ``w_idx``, ``V_idx``: the sample's rows of θ_t; ``lam_w_idx``, ``lam_v_idx``: tensors of
    length d. For fixed z (β = ηyz, b = ηy):

    * linear part: w0 + β + Σ ρ_i (w_i + β), ρ_i = 1/(1 + ηλ_w,i); its z-derivative is b(1 + Σ ρ_i);
    * latent part, per column: v = S⁻¹v_t with S = diag(1 + ηλ_v,i) − β M, M = 11ᵀ − I, and
      ŷ_V = ½ Σ_cols vᵀ M v = ½(‖Σ_i v_i‖² − Σ_i ‖v_i‖²). S⁻¹ by Sherman–Morrison
      (:func:`fmedu.prox.bounds.solve_vectors`). Since dS/dz = −bM, dv/dz = b S⁻¹ M v, so
      dŷ_V/dz = b Σ_cols (Mv)ᵀ S⁻¹ (Mv), with (Mv)_i = Σ_j v_j − v_i and
      xᵀS⁻¹x = Σ u_i x_i² + (β/D')(uᵀx)² (u_i = 1/(1 + ηλ_v,i + β), D' = 1 − β Σ u_i).
    """
    from .bounds import solve_vectors

    sign = _sign(y)
    b = float(eta) * sign
    beta = b * float(z)
    rho = 1.0 / (1.0 + float(eta) * lam_w_idx.to(V_idx.dtype))
    linear = float(w0) + beta + float((rho * (w_idx + beta)).sum())
    V = solve_vectors(V_idx, eta, sign, z, lam_v_idx)
    total = V.sum(0)
    latent = 0.5 * float(total.square().sum() - V.square().sum())
    u = 1.0 / (1.0 + float(eta) * lam_v_idx.to(V_idx.dtype) + beta)
    Mv = total[None, :] - V
    uMv = (u[:, None] * Mv).sum(0)
    quad = float((u[:, None] * Mv.square()).sum()) + beta / (1.0 - beta * float(u.sum())) * float(uMv.square().sum())
    return linear + latent, b * (1.0 + float(rho.sum())) + b * quad


def q_prime(z: float, s: SampleScalars, y: float, eta: float, *, lam_w=0.0, lam_v=0.0) -> float:
    """q'(z) = −y ŷ(θ(z)) − log(z/(1−z)) for z ∈ (0, 1) (envelope theorem); penalties as in
    :func:`prediction_after`."""
    return -_sign(y) * prediction_after(z, s, y, eta, lam_w=lam_w, lam_v=lam_v) - scalar.logit(z)


def q_second(z: float, s: SampleScalars, y: float, eta: float, *, lam_w=0.0, lam_v=0.0) -> float:
    """q''(z) = −y dŷ(θ(z))/dz − 1/(z(1−z)), negative below the step-size bound.

    Accepts sympy symbols for ``z``, ``eta`` and the scalars (chapter 06 derives it);
    penalties as in :func:`prediction_after`.
    """
    sign = _sign(y)
    slope = _prediction_and_slope(z, s, y, eta, lam_w, lam_v)[1]
    return -sign * slope - 1 / (z * (1 - z))


_INVPHI = (math.sqrt(5.0) - 1.0) / 2.0  # 1/φ ≈ 0.618


def golden_section_max(
    f: Callable[[float], float], a: float = 0.0, b: float = 1.0, tol: float = GOLDEN_TOL
) -> tuple[float, float, int]:
    """Golden-section search for the maximiser of a unimodal ``f`` on [a, b].

    Keeps two interior points at the golden ratios, drops the side whose interior value is
    lower, and reuses one evaluation per iteration, until the interval is at most ``tol``
    long. Returns ``(lo, hi, evaluations)``; the published algorithm takes z* = (lo + hi)/2.
    The number of shrinkings is fixed in advance: ceil(log(tol/(b−a)) / log(1/φ)).
    """
    lo, hi = min(a, b), max(a, b)
    width = hi - lo
    if width <= tol:
        return lo, hi, 0
    shrinks = int(math.ceil(math.log(tol / width) / math.log(_INVPHI)))
    left, right = hi - _INVPHI * width, lo + _INVPHI * width
    f_left, f_right = f(left), f(right)
    evaluations = 2
    for _ in range(shrinks - 1):
        width *= _INVPHI
        if f_left > f_right:  # the maximiser is left of `right`
            hi, right, f_right = right, left, f_left
            left = hi - _INVPHI * width
            f_left = f(left)
        else:  # the maximiser is right of `left`
            lo, left, f_left = left, right, f_right
            right = lo + _INVPHI * width
            f_right = f(right)
        evaluations += 1
    return (lo, right, evaluations) if f_left > f_right else (left, hi, evaluations)


def maximise_q_golden(s: SampleScalars, y, eta: float, tol: float = GOLDEN_TOL) -> float:
    """z* as published: golden-section search of q on [0, 1], midpoint of the final interval.

    Here q is the reduced closed form (:func:`q_reduced`); the per-call torch evaluation of the
    published code is in :mod:`fmedu.prox.published`. Accuracy about ``tol``.
    """
    lo, hi, _ = golden_section_max(lambda z: q_reduced(z, s, y, eta), 0.0, 1.0, tol)
    return 0.5 * (lo + hi)


@overload
def maximise_q_newton(
    s: SampleScalars,
    y: float,
    eta: float,
    *,
    max_iter: int = 200,
    return_evaluations: Literal[False] = False,
    lam_w: float = 0.0,
    lam_v: float = 0.0,
) -> float: ...


@overload
def maximise_q_newton(
    s: SampleScalars,
    y: float,
    eta: float,
    *,
    max_iter: int = 200,
    return_evaluations: Literal[True],
    lam_w: float = 0.0,
    lam_v: float = 0.0,
) -> tuple[float, int]: ...


def maximise_q_newton(
    s: SampleScalars,
    y: float,
    eta: float,
    *,
    max_iter: int = 200,
    return_evaluations: bool = False,
    lam_w: float = 0.0,
    lam_v: float = 0.0,
) -> float | tuple[float, int]:
    """z* = argmax q by a safeguarded Newton iteration on q'(z) = 0 in t = logit(z).

    The iteration is :func:`fmedu.prox.scalar.newton_z` (the same code the compiled engine
    runs): it brackets the root from the first evaluation, falls back to bisection when a
    Newton step leaves the bracket, and stops at rounding level, typically after 3–6
    evaluations. ``return_evaluations=True`` returns ``(z, evaluations)`` (chapter 06).

    With penalties (one number each) the iteration is :func:`fmedu.engine.penalised.newton_z`.
    Without pairs (d ≤ 1) and η > :data:`NO_PAIRS_ETA` it is :func:`fmedu.prox.scalar.newton_z_no_pairs`,
    exact for any η (the t-iteration needs about log(η) steps there).
    """
    y = check_label(y)
    eta = float(eta)
    if s.d <= 1 and eta > NO_PAIRS_ETA:
        B, rho, _ = _penalised(s, eta, lam_w, lam_v)
        z, evaluations = scalar.newton_z_no_pairs(-y * B, 1.0 + rho * s.d, eta, max_iter)
    elif lam_w == 0 and lam_v == 0:
        z, evaluations = scalar.newton_z(s.B, s.A, s.C, float(s.d), eta, y, max_iter)
    else:
        from ..engine import penalised  # here: fmedu.engine imports fmedu.prox

        B, rho, a = _penalised(s, eta, lam_w, lam_v)
        z, evaluations = penalised.newton_z(B, s.A, s.C, float(s.d), eta, y, rho, a, max_iter)
    return (z, evaluations) if return_evaluations else z


NO_PAIRS_ETA = 1e8  # above it, samples without pairs use the log-space solve (same z to ~1e-15 below it)
