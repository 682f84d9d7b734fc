"""One stochastic proximal-point step for the logistic FM on a one-hot / multi-hot sample.

Used by notebook 04 (the step-size bound), notebook 05 (the Sherman–Morrison solve) and by
the MovieLens engine (notebook 06), which mirrors :func:`reduced_scalars`,
:func:`prediction_after`, :func:`maximise_q_newton` and :func:`update_from_z`.

The step (design.md notation; θ = (w0, w, V), x_i = 1 exactly at ``idx``, d = nnz = len(idx))::

    θ_{t+1} = argmin_θ  F(θ),   F(θ) = log(1 + exp(−y ŷ(θ))) + ‖θ − θ_t‖² / (2η).

Duality. log(1 + e^u) = max_{z∈[0,1]} u z − h*(z) with h*(z) = z log z + (1−z) log(1−z), so
F(θ) = max_z φ(θ, z), φ(θ, z) = −z y ŷ(θ) + ‖θ − θ_t‖²/(2η) − h*(z). For fixed z, φ is a
quadratic in θ whose V-block Hessian is S(z)/η ⊗ I_k with

    S(z) = (1 + β) I − β 11ᵀ  (d × d),   β = η y z,

eigenvalues λ_mean = 1 − β(d−1) (eigenvector 1) and λ_perp = 1 + β (multiplicity d−1, 1ᵀu = 0).
While S(z) ≻ 0 for all z ∈ [0, 1] (η below :func:`step_size_bound`), Sion's theorem swaps
min and max: q(z) = min_θ φ(θ, z) = q1(z) + q2(z) − h*(z) is strictly concave, its maximiser
z* is unique, and θ(z*) = argmin_θ φ(θ, z*) is the step.

The minimiser for fixed z, in closed form (formula (C) of the blog, Sherman–Morrison)::

    w0 ← w0 + η y z,   w[idx] ← w[idx] + η y z,   V[idx] ← S(z)⁻¹ V[idx],
    S(z)⁻¹ = (I + c 11ᵀ) / (1 + β),   c = β / (1 − β(d−1)).

Reduced scalars. Everything about V that q and ŷ(θ(z)) need is three numbers per sample
(:func:`reduced_scalars`): the bias sum B = w0 + Σ_idx w_i, A = Σ_i ‖v_i‖² and
C = ‖Σ_i v_i‖² (i over idx). Split V[idx] into its mean part (energy m = C/d, scaled by
1/λ_mean) and the part orthogonal to 1 (energy p = A − C/d, scaled by 1/λ_perp); then

    ŷ(θ(z)) = B + η y z (d+1) + ½[(d−1) m / λ_mean² − p / λ_perp²],
    q2(z)   = [A − m/λ_mean − p/λ_perp] / (2η),
    q'(z)   = −y ŷ(θ(z)) − log(z / (1−z)).

In t = logit(z) the optimality condition g(t) = −y ŷ(θ(σ(t))) − t = 0 has g'(t) ≤ −1, so
|t − t*| ≤ |g(t)|: :func:`maximise_q_newton` brackets the root from the first evaluation and
runs a safeguarded Newton iteration to machine precision.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
from torch import Tensor

from .validation import FMInputError, check_indices, check_params

__all__ = [
    "ProxResult",
    "ReducedScalars",
    "step_size_bound",
    "s_matrix",
    "s_eigenvalues",
    "s_inverse",
    "solve_vectors",
    "conjugate",
    "q1",
    "q2",
    "q",
    "reduced_scalars",
    "q2_reduced",
    "q_reduced",
    "prediction_after",
    "q_prime",
    "q_second",
    "golden_section_max",
    "maximise_q_golden",
    "maximise_q_newton",
    "update_from_z",
    "prox_step",
    "prox_objective",
    "sample_prediction",
    "logistic_loss",
    "minimise_numerically",
    "kkt_residual",
    "ProxTrainer",
    "GOLDEN_TOL",
]

GOLDEN_TOL = 1e-8  # the published golden-section tolerance on z


class ProxResult(NamedTuple):
    """New parameters after one prox step and the optimal dual variable z* ∈ (0, 1)."""

    w0: Tensor
    w: Tensor
    V: Tensor
    z: float


class ReducedScalars(NamedTuple):
    """The per-sample numbers q(z) and ŷ(θ(z)) depend on (see the module docstring).

    ``bias_sum`` B = w0 + Σ_idx w_i (the current prediction's linear part), ``sq_norms``
    A = Σ_idx ‖v_i‖², ``sq_norm_sum`` C = ‖Σ_idx v_i‖², ``nnz`` d = len(idx).
    """

    bias_sum: float
    sq_norms: float
    sq_norm_sum: float
    nnz: int

    @property
    def mean_energy(self) -> float:
        """m = C/d: squared norm of V[idx]'s component along 1 (0 when d = 0)."""
        return self.sq_norm_sum / self.nnz if self.nnz else 0.0

    @property
    def perp_energy(self) -> float:
        """p = A − C/d ≥ 0: squared norm of V[idx]'s component orthogonal to 1 (clamped at 0)."""
        return max(self.sq_norms - self.mean_energy, 0.0) if self.nnz else 0.0

    @property
    def prediction(self) -> float:
        """ŷ(θ_t) = B + ½(C − A): the current prediction on this sample."""
        return self.bias_sum + 0.5 * (self.sq_norm_sum - self.sq_norms)


# --------------------------------------------------------------------------- validation


def _check_nnz(nnz) -> int:
    if isinstance(nnz, bool) or not isinstance(nnz, int) or nnz < 0:
        raise FMInputError(f"nnz must be a non-negative int (non-zeros of the sample), got {nnz!r}")
    return nnz


def _check_label(y) -> float:
    if isinstance(y, Tensor):
        if y.numel() != 1:
            raise FMInputError(f"y must be one label (+1 or -1), got a tensor of shape {tuple(y.shape)}")
        y = y.item()
    try:
        value = float(y)
    except (TypeError, ValueError):
        raise FMInputError(f"y must be +1 or -1, got {y!r}") from None
    if value not in (-1.0, 1.0):
        hint = "; map {0, 1} labels with y = 2 * y - 1" if value == 0.0 else ""
        raise FMInputError(f"y must be +1 or -1, got {y!r}{hint}")
    return value


def _check_eta(eta) -> float:
    if isinstance(eta, Tensor):
        eta = eta.item()
    try:
        value = float(eta)
    except (TypeError, ValueError):
        raise FMInputError(f"eta (step size) must be a positive real number, got {eta!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise FMInputError(f"eta (step size) must be a positive finite number, got {eta!r}")
    return value


def _check_z(z) -> float:
    value = float(z)
    if not (0.0 <= value <= 1.0):
        raise FMInputError(f"z (dual variable) must lie in [0, 1], got {z!r}")
    return value


# --------------------------------------------------------------------------- the bound


def step_size_bound(nnz: int, kind: str = "exact", y=None) -> float:
    """Largest step size for which the prox step is well posed on a sample with ``nnz`` ones.

    ``kind="published"``: the blog's 1/(2·nnz + 1) (derived with a bookkeeping slip, erratum E2;
    it is safe but about twice too small).

    ``kind="exact"``: the supremum of η such that S(z) = (1+ηyz)I − ηyz·11ᵀ (nnz × nnz) is
    positive definite for every z ∈ [0, 1]; η must be *strictly* below it. The eigenvalues
    are 1 − ηyz(nnz−1) (along 1) and 1 + ηyz (orthogonal to 1, present when nnz ≥ 2):

    * y = +1: 1 − ηz(nnz−1) > 0 for all z ⇔ η < 1/(nnz−1);
    * y = −1: 1 − ηz > 0 for all z ⇔ η < 1 (only when nnz ≥ 2);
    * y = None: valid for both labels, min of the two = 1/(nnz−1) for nnz ≥ 2;
    * nnz ≤ 1: no pairs, S = I (or empty): ``math.inf``.

    Notebook 04 derives and plots it; :func:`prox_step` refuses η at or beyond it.
    """
    nnz = _check_nnz(nnz)
    if kind == "published":
        return 1.0 / (2 * nnz + 1)
    if kind != "exact":
        raise FMInputError(f"kind must be 'exact' or 'published', got {kind!r}")
    if nnz <= 1:
        return math.inf
    if y is None:
        return 1.0 / (nnz - 1)  # = min(1/(nnz-1), 1)
    return 1.0 / (nnz - 1) if _check_label(y) > 0 else 1.0


# --------------------------------------------------------------------------- S(z) and its inverse


def s_matrix(nnz: int, eta: float, y, z: float, dtype=torch.float64) -> Tensor:
    """S(z) = (1 + β) I − β 11ᵀ with β = η y z, shape ``(nnz, nnz)`` (η × the V-block Hessian)."""
    beta = float(eta) * _check_label(y) * float(z)
    return (1 + beta) * torch.eye(nnz, dtype=dtype) - beta * torch.ones(nnz, nnz, dtype=dtype)


def s_eigenvalues(nnz: int, eta: float, y, z: float) -> tuple[float, float]:
    """(λ_mean, λ_perp) = (1 − β(nnz−1), 1 + β): along 1, and on 1's orthogonal complement."""
    beta = float(eta) * _check_label(y) * float(z)
    return 1.0 - beta * (nnz - 1), 1.0 + beta


def s_inverse(nnz: int, eta: float, y, z: float, dtype=torch.float64) -> Tensor:
    """S(z)⁻¹ by Sherman–Morrison: (I + c 11ᵀ)/(1 + β), c = β/(1 − β(nnz−1)) (notebook 05)."""
    beta = float(eta) * _check_label(y) * float(z)
    c = beta / (1.0 - beta * (nnz - 1))
    return (torch.eye(nnz, dtype=dtype) + c * torch.ones(nnz, nnz, dtype=dtype)) / (1.0 + beta)


def solve_vectors(V_idx: Tensor, eta: float, y, z: float) -> Tensor:
    """S(z)⁻¹ V_idx without forming a matrix (formula (C)): ``(nnz, k)`` → ``(nnz, k)``.

    (V_idx + c·1 sᵀ)/(1 + β) with s = Σ_i v_i (the column sums): O(nnz·k).
    """
    beta = float(eta) * _check_label(y) * float(z)
    nnz = V_idx.shape[0]
    c = beta / (1.0 - beta * (nnz - 1))
    return (V_idx + c * V_idx.sum(0, keepdim=True)) / (1.0 + beta)


# --------------------------------------------------------------------------- q and its pieces


def conjugate(z: float) -> float:
    """h*(z) = z log z + (1−z) log(1−z) on [0, 1] (0 log 0 = 0): the negative entropy."""
    z = _check_z(z)

    def xlogx(t: float) -> float:
        return t * math.log(t) if t > 0 else 0.0

    return xlogx(z) + xlogx(1.0 - z)


def q1(z: float, bias_sum: float, nnz: int, y, eta: float) -> float:
    """q1(z) = min over (w0, w) = −y B z − η (1 + nnz) z² / 2: a concave parabola."""
    y = _check_label(y)
    return -y * float(bias_sum) * z - 0.5 * eta * (1 + nnz) * z * z


def q2(z: float, V_idx: Tensor, y, eta: float) -> float:
    """q2(z) = min over V[idx] of −z y Σ_{i<j}⟨v_i,v_j⟩ + ‖V[idx] − V_t[idx]‖²/(2η) (Algorithm B).

    Solves S(z) V = V_t with formula (C) and evaluates the objective at the solution with
    tensor ops; ``V_idx`` is the ``(nnz, k)`` block V_t[idx].
    """
    y = _check_label(y)
    if z == 0:
        return 0.0
    V_new = solve_vectors(V_idx, eta, y, z)
    pairs = 0.5 * (V_new.sum(0).square().sum() - V_new.square().sum())
    move = (V_new - V_idx).square().sum()
    return float(-z * y * pairs + move / (2 * eta))


def q(z: float, bias_sum: float, V_idx: Tensor, y, eta: float) -> float:
    """q(z) = q1(z) + q2(z) − h*(z), the dual function, from its readable pieces."""
    return q1(z, bias_sum, V_idx.shape[0], y, eta) + q2(z, V_idx, y, eta) - conjugate(z)


def reduced_scalars(w0: Tensor, w: Tensor, V: Tensor, idx: Tensor) -> ReducedScalars:
    """B = w0 + Σ_idx w_i, A = Σ_idx ‖v_i‖², C = ‖Σ_idx v_i‖², d = len(idx): O(nnz·k)."""
    rows = V[idx]  # (nnz, k), a copy
    total = rows.sum(0)  # (k,): s = Σ v_i
    return ReducedScalars(
        bias_sum=float(w0 + w[idx].sum()),
        sq_norms=float(rows.square().sum()),
        sq_norm_sum=float(total.square().sum()),
        nnz=int(idx.numel()),
    )


def q2_reduced(z: float, s: ReducedScalars, y, eta: float) -> float:
    """q2(z) from the reduced scalars: [A − m/λ_mean − p/λ_perp] / (2η)."""
    lam_mean, lam_perp = s_eigenvalues(s.nnz, eta, y, z)
    return (s.sq_norms - s.mean_energy / lam_mean - s.perp_energy / lam_perp) / (2 * eta)


def q_reduced(z: float, s: ReducedScalars, y, eta: float) -> float:
    """q(z) from the reduced scalars (O(1) per evaluation)."""
    return q1(z, s.bias_sum, s.nnz, y, eta) + q2_reduced(z, s, y, eta) - conjugate(z)


def prediction_after(z: float, s: ReducedScalars, y, eta: float) -> float:
    """ŷ(θ(z)): the prediction at the minimiser of φ(·, z), from the reduced scalars.

    B + η y z (d+1) + ½[(d−1) m / λ_mean² − p / λ_perp²]; at z = 0 it is ŷ(θ_t).
    """
    y = _check_label(y)
    d = s.nnz
    lam_mean, lam_perp = s_eigenvalues(d, eta, y, z)
    pairs = 0.5 * ((d - 1) * s.mean_energy / lam_mean**2 - s.perp_energy / lam_perp**2) if d else 0.0
    return s.bias_sum + eta * y * z * (d + 1) + pairs


def _logit(z: float) -> float:
    return math.log(z) - math.log1p(-z)


def _sigmoid(t: float) -> float:
    if t >= 0:
        return 1.0 / (1.0 + math.exp(-t))
    e = math.exp(t)
    return e / (1.0 + e)


def q_prime(z: float, s: ReducedScalars, y, eta: float) -> float:
    """q'(z) = −y ŷ(θ(z)) − log(z/(1−z)) for z ∈ (0, 1) (envelope theorem)."""
    return -_check_label(y) * prediction_after(z, s, y, eta) - _logit(z)


def _curvature(z: float, s: ReducedScalars, y, eta: float) -> float:
    """(d+1) + (d−1)² m/λ_mean³ + p/λ_perp³, so that −y dŷ(θ(z))/dz = −η·curvature."""
    d = s.nnz
    lam_mean, lam_perp = s_eigenvalues(d, eta, y, z)
    return (d + 1) + ((d - 1) ** 2 * s.mean_energy / lam_mean**3 + s.perp_energy / lam_perp**3 if d else 0.0)


def q_second(z: float, s: ReducedScalars, y, eta: float) -> float:
    """q''(z) = −η[(d+1) + (d−1)² m/λ_mean³ + p/λ_perp³] − 1/(z(1−z)) < 0 below the bound."""
    return -eta * _curvature(z, s, y, eta) - 1.0 / (z * (1.0 - z))


# --------------------------------------------------------------------------- dual maximisers

_INVPHI = (math.sqrt(5.0) - 1.0) / 2.0  # 1/φ ≈ 0.618


def golden_section_max(f: Callable[[float], float], a: float = 0.0, b: float = 1.0,
                       tol: float = GOLDEN_TOL) -> tuple[float, float, int]:
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


def maximise_q_golden(s: ReducedScalars, y, eta: float, tol: float = GOLDEN_TOL) -> float:
    """z* as published: golden-section search of q on [0, 1], midpoint of the final interval.

    Here q is the reduced closed form (:func:`q_reduced`); the per-call torch evaluation of the
    published code is in :mod:`fmedu.prox_published`. Accuracy about ``tol``.
    """
    lo, hi, _ = golden_section_max(lambda z: q_reduced(z, s, y, eta), 0.0, 1.0, tol)
    return 0.5 * (lo + hi)


def _pole(s: ReducedScalars, y: float, eta: float) -> float:
    """Smallest z ∈ (0, 1] where an eigenvalue of S(z) reaches 0 (inf below the bound)."""
    d = s.nnz
    if d <= 1:
        return math.inf
    z_pole = 1.0 / (eta * (d - 1)) if y > 0 else 1.0 / eta
    return z_pole if z_pole <= 1.0 else math.inf


def maximise_q_newton(s: ReducedScalars, y, eta: float, *, max_iter: int = 200,
                      return_evaluations: bool = False):
    """z* = argmax q by a safeguarded Newton iteration on g(t) = q'(σ(t)) in t = logit(z).

    g(t) = −y ŷ(θ(σ(t))) − t is strictly decreasing with g'(t) = q''(z) z(1−z) ≤ −1, so the
    root lies within |g(t0)| of any t0: start at t0 = −y ŷ(θ_t) (z0 is the weight an SGD step
    would use), bracket [t0, t0 + g(t0)], take Newton steps, fall back to bisection whenever a
    step leaves the bracket, stop at machine precision. Typically 3–6 evaluations.

    Beyond the bound (only reachable with ``prox_step(..., allow_beyond_bound=True)``) the
    bracket is also cut at the pole z where S(z) becomes singular: q = −∞ past it, and the
    root below it is still the true maximiser of q (see notebook 04).
    ``return_evaluations=True`` returns ``(z, number of evaluations of g)`` (notebook 05).
    """
    y = _check_label(y)
    z_pole = _pole(s, y, eta)
    t_pole = _logit(z_pole) if z_pole < 1.0 else math.inf

    def g_and_slope(t: float) -> tuple[float, float]:
        z, one_minus_z = _sigmoid(t), _sigmoid(-t)
        g = -y * prediction_after(z, s, y, eta) - t
        # g'(t) = q''(z) z(1−z) = −η·curvature·z(1−z) − 1
        return g, -eta * _curvature(z, s, y, eta) * z * one_minus_z - 1.0

    def fallback(lo: float, hi: float) -> float:
        # midpoint in z when the t-bracket is wide (huge |t| ends), else midpoint in t
        if hi - lo > 8.0:
            z_mid = 0.5 * (_sigmoid(lo) + _sigmoid(hi))
            if 0.0 < z_mid < 1.0:
                t_mid = _logit(z_mid)
                if lo < t_mid < hi:
                    return t_mid
        return 0.5 * (lo + hi)

    t = -y * s.prediction
    if t >= t_pole:
        t = t_pole - 1.0
    g, slope = g_and_slope(t)
    evaluations = 1
    if g != 0.0:
        lo, hi = (t, min(t + 2 * g, t_pole)) if g > 0 else (t + 2 * g, t)  # root within |g|: strictly inside
        step_before_last = step = hi - lo
        for _ in range(max_iter):
            if math.isfinite(g):
                if g > 0:
                    lo = t
                else:
                    hi = t
            newton = t - g / slope if math.isfinite(g) else math.nan
            if abs(newton - t) <= 4 * 2.2e-16 * max(1.0, abs(t)):
                t = newton  # converged to machine precision
                break
            # Newton unless it leaves the bracket or |g| is not shrinking fast enough (a 2-cycle)
            if not (lo < newton < hi) or abs(2 * g) > abs(step_before_last * slope):
                t_new = fallback(lo, hi)
            else:
                t_new = newton
            step_before_last, step = step, t_new - t
            t = t_new
            if abs(step) <= 4 * 2.2e-16 * max(1.0, abs(t)) or hi - lo <= 4 * 2.2e-16 * max(1.0, abs(t)):
                break
            g, slope = g_and_slope(t)
            evaluations += 1
            if g == 0.0:
                break
    z = _sigmoid(t)
    return (z, evaluations) if return_evaluations else z


# --------------------------------------------------------------------------- the step


def update_from_z(w0: Tensor, w: Tensor, V: Tensor, idx: Tensor, y, eta: float, z: float,
                  *, freeze_V: bool = False) -> ProxResult:
    """θ(z) = argmin_θ φ(θ, z) in closed form; new tensors, inputs untouched.

    w0 + ηyz, w[idx] + ηyz, V[idx] ← S(z)⁻¹ V[idx] (formula (C)); everything else unchanged.
    ``freeze_V=True`` leaves V as it was (a copy) — the published trainer's effective
    behaviour, erratum E3.
    """
    y = _check_label(y)
    shift = eta * y * z
    w0_new = w0 + shift
    w_new = w.clone()
    w_new[idx] += shift
    V_new = V.clone()
    if not freeze_V and idx.numel() >= 2:  # nnz = 1: S(z) = 1, nothing to solve
        V_new[idx] = solve_vectors(V[idx], eta, y, z)
    return ProxResult(w0_new, w_new, V_new, float(z))


def _check_idx(idx, n: int) -> Tensor:
    if not isinstance(idx, Tensor):
        raise FMInputError(f"idx must be a 1-D int64 tensor of feature indices, got {type(idx).__name__}")
    if idx.dim() != 1:
        raise FMInputError(f"idx must be 1-D (the non-zero feature indices of ONE sample), got shape {tuple(idx.shape)}")
    check_indices(idx, n, allow_padding=False)
    return idx.long()


def prox_step(w0: Tensor, w: Tensor, V: Tensor, idx: Tensor, y, eta: float, *,
              solver: str = "exact", freeze_V: bool = False,
              allow_beyond_bound: bool = False) -> ProxResult:
    """One stochastic proximal-point step on the sample x (ones at ``idx``) with label ``y``.

    Returns ``ProxResult(w0, w, V, z)``: new tensors (inputs untouched) equal to
    argmin_θ log(1 + exp(−y ŷ(θ))) + ‖θ − θ_t‖²/(2η), and the optimal dual variable z*.

    * ``idx``: 1-D integer tensor of distinct indices in [0, n); ``y``: ±1 (int, float or a
      one-element tensor); ``eta`` > 0; parameters as in :func:`fmedu.predict_sparse`, finite.
    * ``eta`` must be strictly below ``step_size_bound(len(idx), "exact", y)`` (for this
      sample's label); otherwise FMInputError states the bound. ``allow_beyond_bound=True``
      skips the check for demonstrations (notebook 04): the ``"exact"`` solver then searches
      z below the pole of S(z)⁻¹ only.
    * ``solver="exact"``: safeguarded Newton on q' (:func:`maximise_q_newton`, machine
      precision); ``solver="golden"``: golden-section search of the closed-form q on [0, 1]
      as published (tolerance 1e-8 on z).
    * ``freeze_V=True`` — the *published* semantics (erratum E3): z* is still the maximiser of
      the FULL q(z) (q2 included, as if V were going to move), then only w0 and w[idx] are
      updated, w0 += ηyz*, w[idx] += ηyz*; V is returned unchanged (a copy), because the
      published write of the new latent vectors is lost.
    """
    check_params(w0, w, V)
    idx = _check_idx(idx, V.shape[0])
    y = _check_label(y)
    eta = _check_eta(eta)
    bound = step_size_bound(int(idx.numel()), "exact", y)
    if eta >= bound and not allow_beyond_bound:
        raise FMInputError(
            f"eta = {eta:g} is at or beyond the exact convexity bound {bound:.6g} for a sample with "
            f"nnz = {idx.numel()} and y = {y:+g} (S(z) must stay positive definite for all z in [0, 1]); "
            f"use eta < {bound:.6g}, or pass allow_beyond_bound=True to demonstrate what fails"
        )
    s = reduced_scalars(w0, w, V, idx)
    if solver == "exact":
        z = maximise_q_newton(s, y, eta)
    elif solver == "golden":
        z = maximise_q_golden(s, y, eta)
    else:
        raise FMInputError(f"solver must be 'exact' or 'golden', got {solver!r}")
    return update_from_z(w0, w, V, idx, y, eta, z, freeze_V=freeze_V)


# --------------------------------------------------------------------------- the primal objective


def logistic_loss(yhat: Tensor, y: float) -> Tensor:
    """log(1 + exp(−y ŷ)) computed exactly as logaddexp(0, −y ŷ).

    (torch's ``softplus`` switches to the linear branch above 20, so its gradient there is
    exactly 1 instead of σ(−yŷ); the KKT residuals of notebook 05 would see that.)
    """
    u = -y * yhat
    return torch.logaddexp(torch.zeros_like(u), u)


def sample_prediction(w0: Tensor, w: Tensor, V: Tensor, idx: Tensor) -> Tensor:
    """ŷ on the sample with ones at ``idx`` (autograd-friendly; no checks)."""
    rows = V[idx]
    return w0 + w[idx].sum() + 0.5 * (rows.sum(0).square().sum() - rows.square().sum())


def prox_objective(w0: Tensor, w: Tensor, V: Tensor, idx: Tensor, y, eta: float,
                   w0_t: Tensor, w_t: Tensor, V_t: Tensor) -> Tensor:
    """F(θ) = log(1 + exp(−y ŷ(θ))) + ‖θ − θ_t‖²/(2η) as a differentiable scalar tensor.

    Notebooks 04 and 05 minimise it with a generic optimiser and take its gradient (the KKT
    residual) at the closed-form step.
    """
    y = _check_label(y)
    loss = logistic_loss(sample_prediction(w0, w, V, idx), y)
    move = (w0 - w0_t).square() + (w - w_t).square().sum() + (V - V_t).square().sum()
    return loss + move / (2 * eta)


# --------------------------------------------------------------------------- an in-place trainer


class ProxTrainer:
    """The reduced closed-form prox step applied in place: the same interface as
    :class:`fmedu.prox_published.PublishedProxTrainer`, for side-by-side use (notebook 05's cost
    comparison, notebook 06).

    Per step: gather V[idx] once, reduce it to (B, A, C), find z* by :func:`maximise_q_newton`
    (O(1) per evaluation), then write w0, w[idx] and V[idx] (formula (C)). Parameters are
    validated once here; :meth:`step` checks only the label and the step-size bound.
    ``freeze_V=True`` gives the published semantics of erratum E3 (see :func:`prox_step`).
    """

    def __init__(self, w0: Tensor, w: Tensor, V: Tensor, eta: float, *, freeze_V: bool = False):
        check_params(w0, w, V)
        self.w0 = w0.detach().clone()
        self.w = w.detach().clone()
        self.V = V.detach().clone()
        self.eta = _check_eta(eta)
        self.freeze_V = bool(freeze_V)

    def params(self) -> tuple[Tensor, Tensor, Tensor]:
        """The current (w0, w, V) — the trainer's own tensors, not copies."""
        return self.w0, self.w, self.V

    def step(self, idx: Tensor, y) -> float:
        """One exact prox step on the sample with ones at ``idx`` (distinct) and label ``y``; returns z*."""
        y = _check_label(y)
        eta, d = self.eta, int(idx.numel())
        if eta >= step_size_bound(d, "exact", y):
            raise FMInputError(
                f"eta = {eta:g} is at or beyond the exact convexity bound "
                f"{step_size_bound(d, 'exact', y):.6g} for nnz = {d}, y = {y:+g}; use a smaller eta"
            )
        rows = self.V[idx]  # (d, k), a copy
        total = rows.sum(0)  # (k,): s = Σ v_i
        s = ReducedScalars(float(self.w0 + self.w[idx].sum()), float(rows.square().sum()),
                           float(total.square().sum()), d)
        z = maximise_q_newton(s, y, eta)
        shift = eta * y * z
        self.w0 += shift
        self.w[idx] += shift  # index_put_: writes through
        if not self.freeze_V and d >= 2:  # nnz = 1: S(z) = 1, V[idx] stays
            beta = shift
            c = beta / (1.0 - beta * (d - 1))
            self.V[idx] = (rows + c * total) / (1.0 + beta)  # S(z)⁻¹ V_t, formula (C)
        return z


# --------------------------------------------------------------------------- a generic optimiser


def minimise_numerically(w0: Tensor, w: Tensor, V: Tensor, idx: Tensor, y, eta: float, *,
                         start: tuple[Tensor, Tensor, Tensor] | None = None,
                         gtol: float = 1e-13, max_iter: int = 20_000) -> ProxResult:
    """argmin F by scipy's L-BFGS-B in float64 (autograd gradients): the independent reference.

    Optimises the sample's coordinates (w0, w[idx], V[idx]) — every other coordinate of F is a
    separate ‖·‖² term minimised at θ_t. ``start`` (default θ_t) lets notebook 04 run it from
    several starting points when F is not convex. The returned ``z`` is σ(−y ŷ) at the
    solution (the dual variable it implies). Notebooks 04 and 05 and the tests use it.
    """
    import numpy as np
    import scipy.optimize

    y = _check_label(y)
    d, k = int(idx.numel()), V.shape[1]

    def flat(a0, a, A):
        return torch.cat([a0.reshape(1), a[idx], A[idx].reshape(-1)]).detach().to(torch.float64)

    anchor = flat(w0, w, V)
    x0 = anchor if start is None else flat(*start)

    def fun(theta):
        t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
        rows = t[1 + d:].reshape(d, k)
        yhat = t[0] + t[1:1 + d].sum() + 0.5 * (rows.sum(0).square().sum() - rows.square().sum())
        F = logistic_loss(yhat, y) + (t - anchor).square().sum() / (2 * eta)
        (grad,) = torch.autograd.grad(F, t)
        return float(F.detach()), grad.numpy()

    res = scipy.optimize.minimize(fun, x0.numpy(), jac=True, method="L-BFGS-B",
                                  options={"maxiter": max_iter, "gtol": gtol, "ftol": 0.0, "maxcor": 30})
    theta = torch.as_tensor(np.asarray(res.x), dtype=V.dtype)
    w0_new = theta[0].clone()
    w_new, V_new = w.clone(), V.clone()
    w_new[idx] = theta[1:1 + d]
    V_new[idx] = theta[1 + d:].reshape(d, k)
    yhat = float(sample_prediction(w0_new, w_new, V_new, idx))
    return ProxResult(w0_new, w_new, V_new, _sigmoid(-y * yhat))


def kkt_residual(result: ProxResult, w0: Tensor, w: Tensor, V: Tensor, idx: Tensor, y, eta: float) -> float:
    """max |∇F| at ``result``'s parameters (autograd, float64): 0 exactly at a stationary point."""
    p = [t.detach().clone().requires_grad_(True) for t in (result.w0, result.w, result.V)]
    F = prox_objective(*p, idx, y, eta, w0, w, V)
    return max(float(g.abs().max()) for g in torch.autograd.grad(F, p))


# --------------------------------------------------------------------------- sympy builders
# (notebooks 04 and 05; sympy is imported lazily so that training code does not pay for it)


def sym_brown(d: int, k: int, y: int):
    """The V-part of φ for a sample with d ones: −z y Σ_{i<j}⟨v_i,v_j⟩ + Σ_i ‖v_i − v_i,t‖²/(2η).

    Returns ``(expr, V, Vt, z, eta)`` with V, Vt sympy ``(d, k)`` matrices of symbols.
    """
    import sympy as sp

    z, eta = sp.symbols("z eta", positive=True)
    V = sp.Matrix(d, k, lambda i, f: sp.Symbol(f"v_{i + 1}_{f + 1}", real=True))
    Vt = sp.Matrix(d, k, lambda i, f: sp.Symbol(f"vt_{i + 1}_{f + 1}", real=True))
    dot = lambda A, B, i, j: sum(A[i, f] * B[j, f] for f in range(k))  # noqa: E731
    pairs = sum(dot(V, V, i, j) for i in range(d) for j in range(i + 1, d))
    prox_term = sum(dot(V - Vt, V - Vt, i, i) for i in range(d)) / (2 * eta)
    return -z * y * pairs + prox_term, V, Vt, z, eta


def sym_blog_decomposition(d: int, k: int, y: int, coefficient: str):
    """The blog's rewriting of :func:`sym_brown` via v_iᵀv_j = ½‖v_i + v_j‖² − ½‖v_i‖² − ½‖v_j‖².

    With α_ij = −z y x_i x_j (= −z y for the sample's pairs; |α_ij| = z, sign(α_ij) = −y):
    ½ Σ_{i<j} |α_ij| ‖v_i + sign(α_ij) v_j‖² + Σ_i (1/(2η) − c_i) ‖v_i‖² − Σ_i v_iᵀv_i,t/η + Σ_i ‖v_i,t‖²/(2η),
    where c_i = ½ Σ_j |α_ij| (``coefficient="corrected"``) or Σ_j |α_ij| (``"published"``).
    Returns ``brown − decomposition``, expanded (0 exactly when the bookkeeping is right).
    """
    import sympy as sp

    if coefficient not in ("corrected", "published"):
        raise FMInputError(f"coefficient must be 'corrected' or 'published', got {coefficient!r}")
    brown, V, Vt, z, eta = sym_brown(d, k, y)
    abs_alpha, sign_alpha = z, -y
    sq = lambda row: sum(e**2 for e in row)  # noqa: E731
    squares = sum(abs_alpha * sq(V[i, :] + sign_alpha * V[j, :]) for i in range(d) for j in range(i + 1, d)) / 2
    row_sum = abs_alpha * (d - 1)  # Σ_{j≠i} |α_ij|, the same for every i
    c = row_sum / 2 if coefficient == "corrected" else row_sum
    diagonal = sum((1 / (2 * eta) - c) * sq(V[i, :]) for i in range(d))
    linear = sum(-sum(V[i, f] * Vt[i, f] for f in range(k)) / eta + sq(Vt[i, :]) / (2 * eta) for i in range(d))
    return sp.expand(brown - (squares + diagonal + linear))


def sym_s_matrix(d: int, beta=None):
    """S = (1 + β) I − β 11ᵀ as a sympy ``(d, d)`` matrix (β a symbol unless given)."""
    import sympy as sp

    beta = sp.Symbol("beta") if beta is None else beta
    return (1 + beta) * sp.eye(d) - beta * sp.ones(d, d)


def ij_mul(A, B, d):
    """Product in the algebra of matrices a I + b J (J = 11ᵀ, J² = d J), for symbolic d.

    ``A = (a, b)`` stands for a I + b J; (a I + b J)(a' I + b' J) = a a' I + (a b' + b a' + b b' d) J.
    Notebooks 04 and 05 use it to reason about S(z) without fixing its size.
    """
    (a1, b1), (a2, b2) = A, B
    return (a1 * a2, a1 * b2 + b1 * a2 + b1 * b2 * d)


def sym_s_general_d():
    """Facts about S = (1+β) I − β J for symbolic d, each as an expression that must simplify to 0.

    * ``eig_mean``: S 1 = (a + b d) 1 must equal (1 − β(d−1)) 1 (J 1 = d 1);
    * ``eig_perp``: S u = a u for 1ᵀu = 0 (J u = 0) must equal (1 + β) u;
    * ``inverse_I``, ``inverse_J``: S · (I + c J)/(1+β), c = β/(1 − β(d−1)), has coefficients (1, 0);
    * ``determinant``: det(a I + b J) = a^(d−1) (a + b d) (eigenvalues' product) equals
      (1+β)^(d−1) (1 − β(d−1)).
    """
    import sympy as sp

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
