"""One stochastic proximal-point step for the logistic FM on a one-hot / multi-hot sample.

The step (θ = (w0, w, V); the sample x has ones exactly at ``idx``, d = len(idx))::

    θ_{t+1} = argmin_θ  F(θ),   F(θ) = log(1 + exp(−y ŷ(θ))) + ‖θ − θ_t‖² / (2η).

For a fixed dual variable z the minimiser is closed-form (Sherman–Morrison, chapter 06)::

    w0 ← w0 + η y z,   w[idx] ← w[idx] + η y z,   V[idx] ← S(z)⁻¹ V[idx],

and z* maximises the dual function q (:mod:`fmedu.prox.dual`). Chapters 05 (the bound),
06 (the solve) and 07 (MovieLens) use it. The per-touch L2 penalties (λ_w, λ_v) of
:mod:`fmedu.engine.penalised` are available here too (:func:`prox_step`). Argument order as
everywhere in fmedu: the data (``idx``, ``y``) first, then the parameters (``w0``, ``w``, ``V``), then the settings.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from ..errors import FMInputError
from ..validation import (
    check_eta,
    check_finite_result,
    check_label,
    check_one_sample,
    check_params,
    check_penalty,
)
from . import scalar
from .bounds import solve_vectors, step_size_bound, step_size_bound_per_feature
from .dual import maximise_q_golden, maximise_q_newton, prediction_after_per_feature, sample_scalars

MAX_ITER = 200  # the z-iteration's evaluations before prox_step gives up

__all__ = ["ProxResult", "update_from_z", "prox_step", "check_step_size", "ProxTrainer"]


class ProxResult(NamedTuple):
    """New parameters after one prox step and the optimal dual variable z* ∈ (0, 1)."""

    w0: Tensor
    w: Tensor
    V: Tensor
    z: float


def check_step_size(eta: float, d: int, y: float, *, allow_beyond_bound: bool = False, lam_v=0.0) -> None:
    """Refuse η at or beyond the exact convexity bound for a sample with ``d`` ones and label ``y``.

    The same rule for every path that takes a prox step, with or without moving V (the
    published semantics picks z* from the same q, which is only concave below the bound).
    ``lam_v``: the V penalty, one number (:func:`step_size_bound`) or a tensor of the
    sample's d per-feature strengths (:func:`step_size_bound_per_feature`).
    """
    if isinstance(lam_v, Tensor):
        bound = step_size_bound_per_feature(lam_v, y)
    else:
        bound = step_size_bound(d, "exact", y, lam_v=lam_v)
    if eta >= bound and not allow_beyond_bound:
        penalty = "" if isinstance(lam_v, Tensor) or lam_v == 0 else f" and lam_v = {lam_v:g}"
        per_feature = " with these per-feature lam_v" if isinstance(lam_v, Tensor) else ""
        raise FMInputError(
            f"eta = {eta:g} is at or beyond the exact convexity bound {bound:.6g} for a sample with "
            f"nnz = {d} and y = {y:+g}{penalty}{per_feature} (S(z) must stay positive definite for all z "
            f"in [0, 1]); use eta < {bound:.6g}, or pass allow_beyond_bound=True to demonstrate what fails"
        )


def _penalties(lam_w, lam_v, idx: Tensor, n: int) -> tuple[float | Tensor, float | Tensor]:
    """The checked penalties on the sample's rows: a float each when they are one number (or the
    same number on every touched row), else a float64 tensor of length d."""
    out: list[float | Tensor] = []
    for name, value in (("lam_w", lam_w), ("lam_v", lam_v)):
        lam = check_penalty(name, value, n)
        if isinstance(lam, Tensor):
            rows = lam[idx]
            lam = float(rows[0]) if rows.numel() == 0 or bool((rows == rows[0]).all()) else rows
        out.append(lam)
    return out[0], out[1]


def _finite_scalars(s) -> None:
    """The sample scalars B, A = Σ‖v_i‖², C = ‖Σ v_i‖² of finite parameters can still overflow."""
    for name, value in (("w0 + sum of w[idx]", s.B), ("sum of |v_i|^2", s.A), ("|sum of v_i|^2", s.C)):
        if not math.isfinite(value):
            raise FMInputError(
                f"the sample's {name} overflowed to {value} although every parameter is finite: the parameters "
                "are too large for float64 arithmetic (|V| entries near 1e154 square to inf); rescale the parameters"
            )


def update_from_z(
    idx: Tensor,
    y: float,
    w0: Tensor,
    w: Tensor,
    V: Tensor,
    eta: float,
    z: float,
    *,
    freeze_V: bool = False,
    lam_w=0.0,
    lam_v=0.0,
) -> ProxResult:
    """θ(z) = argmin_θ φ(θ, z) in closed form; new tensors, inputs untouched.

    w0 + ηyz, w[idx] + ηyz, V[idx] ← S(z)⁻¹ V[idx]; everything else unchanged.
    ``freeze_V=True`` leaves V as it was (a copy): the published trainer's effective
    behaviour, erratum E3. With penalties (one number, or a length-n tensor, each):
    w[idx] ← ρ(w[idx] + ηyz), ρ = 1/(1 + ηλ_w), and V[idx] ← S_λ(z)⁻¹ V[idx]
    (:func:`~fmedu.prox.bounds.solve_vectors`); w0 is never penalised.
    """
    y = check_label(y)
    lam_w, lam_v = _penalties(lam_w, lam_v, idx, V.shape[0])
    return _update(idx, y, w0, w, V, eta, z, freeze_V, lam_w, lam_v)


def _update(idx, y, w0, w, V, eta, z, freeze_V, lam_w, lam_v) -> ProxResult:
    """:func:`update_from_z` with checked penalties on the sample's rows (see :func:`_penalties`)."""
    shift = eta * y * z
    w0_new = w0 + shift
    w_new = w.clone()
    if isinstance(lam_w, Tensor) or lam_w != 0.0:
        rho = 1.0 / (1.0 + eta * (lam_w.to(w.dtype) if isinstance(lam_w, Tensor) else lam_w))
        w_new[idx] = rho * (w[idx] + shift)
    else:
        w_new[idx] += shift
    V_new = V.clone()
    penalised_v = isinstance(lam_v, Tensor) or lam_v != 0.0
    if not freeze_V and (idx.numel() >= 2 or (penalised_v and idx.numel() == 1)):  # d = 1, λ_v = 0: S(z) = 1
        V_new[idx] = solve_vectors(V[idx], eta, y, z, lam_v)
    return ProxResult(w0_new, w_new, V_new, float(z))


def _newton_per_feature(predict, y: float, start: float, max_iter: int = 200) -> float:
    """z* with per-feature penalties: the bracketed Newton iteration of
    :func:`fmedu.prox.scalar.newton_z` on g(t) = −y ŷ(θ(σ(t))) − t, with ``predict(z)``
    returning (ŷ(θ(z)), dŷ/dz) (:func:`~fmedu.prox.dual.prediction_after_per_feature`).
    Below the bound (checked before) g' ≤ −1, so |t − t*| ≤ |g(t)| brackets the root
    (:func:`fmedu.prox.scalar.bracketed_newton`)."""
    t, lo, hi, g_before = start, -math.inf, math.inf, math.inf
    for evaluations in range(1, max_iter + 1):
        z = scalar.sigmoid(t)
        f, df = predict(z)
        g = -y * f - t
        if abs(g) <= 1e-15 * (1.0 + abs(t) + abs(f)):
            break
        t_next, lo, hi, g_before = scalar.bracketed_newton(
            t, g, -y * df * z * (1.0 - z) - 1.0, lo, hi, g_before, evaluations
        )
        if abs(t_next - t) <= 1e-15 * (1.0 + abs(t)):
            t = t_next
            break
        t = t_next
    else:
        raise FMInputError(
            f"the z-iteration did not converge in {max_iter} evaluations (last t = logit(z) = {t:g}); use a smaller eta"
        )
    return scalar.sigmoid(t)


def prox_step(
    idx: Tensor,
    y: float,
    w0: Tensor,
    w: Tensor,
    V: Tensor,
    eta: float,
    *,
    lam_w=0.0,
    lam_v=0.0,
    solver: str = "exact",
    freeze_V: bool = False,
    allow_beyond_bound: bool = False,
) -> ProxResult:
    """One stochastic proximal-point step on the sample x (ones at ``idx``) with label ``y``.

    Returns ``ProxResult(w0, w, V, z)``: new tensors (inputs untouched) equal to
    argmin_θ log(1 + exp(−y ŷ(θ))) + ½ Σ_{i∈idx}(λ_w w_i² + λ_v ‖v_i‖²) + ‖θ − θ_t‖²/(2η),
    and the optimal dual variable z*.

    * ``idx``: 1-D integer tensor of distinct indices in [0, n); ``y``: ±1 (int, float or a
      one-element tensor); ``eta`` > 0; parameters as in :func:`fmedu.predict_sparse`, finite.
    * ``lam_w``, ``lam_v``: per-touch L2 penalties (only the sample's rows; w0 never), each one
      number >= 0 or a 1-D tensor of n numbers >= 0 (one per feature). At 0 (the default) the
      step is the unpenalised one, bit for bit.
    * ``eta`` must be strictly below the exact bound (:func:`step_size_bound` with ``lam_v``,
      or :func:`step_size_bound_per_feature` for per-feature λ_v); otherwise FMInputError
      states the bound. ``allow_beyond_bound=True`` skips the check for demonstrations
      (chapter 05): the ``"exact"`` solver then searches z below the pole of S(z)⁻¹ only
      (not with per-feature λ_v).
    * ``solver="exact"``: safeguarded Newton on q' (machine precision); ``solver="golden"``:
      golden-section search of the closed-form q on [0, 1] as published (tolerance 1e-8 on z;
      no penalties).
    * ``freeze_V=True``: the *published* semantics (erratum E3): z* is still the maximiser of
      the full q(z), then only w0 and w[idx] move; V is returned unchanged (a copy), because
      the published write of the new latent vectors is lost (no penalties).
    * Parameters so large that the sample's sums overflow float64 (|V| near 1e154), or a
      result that overflows, raise FMInputError instead of returning inf or NaN.
    """
    check_params(w0, w, V)
    idx = check_one_sample(idx, V.shape[0])
    y = check_label(y)
    eta = check_eta(eta)
    lam_w, lam_v = _penalties(lam_w, lam_v, idx, V.shape[0])
    penalised = isinstance(lam_w, Tensor) or isinstance(lam_v, Tensor) or lam_w != 0.0 or lam_v != 0.0
    if penalised and (solver != "exact" or freeze_V):
        raise FMInputError(
            "solver='golden' and freeze_V=True reproduce the published trainer, which has no penalty; "
            "use solver='exact', freeze_V=False with lam_w/lam_v, or lam_w=lam_v=0"
        )
    if isinstance(lam_v, Tensor) and allow_beyond_bound:
        raise FMInputError("allow_beyond_bound=True is not available with per-feature lam_v; pass one lam_v number")
    d = int(idx.numel())
    check_step_size(eta, d, y, allow_beyond_bound=allow_beyond_bound, lam_v=lam_v)
    s = sample_scalars(idx, w0, w, V, check=False)
    _finite_scalars(s)
    if solver == "exact":
        if isinstance(lam_w, Tensor) or isinstance(lam_v, Tensor):
            lw = lam_w if isinstance(lam_w, Tensor) else torch.full((d,), lam_w, dtype=torch.float64)
            lv = lam_v if isinstance(lam_v, Tensor) else torch.full((d,), lam_v, dtype=torch.float64)
            w_idx, V_idx = w[idx], V[idx]
            z = _newton_per_feature(
                lambda zz: prediction_after_per_feature(zz, float(w0), w_idx, V_idx, y, eta, lw, lv), y, -y * s.y_hat
            )
        else:
            z, evaluations = maximise_q_newton(s, y, eta, lam_w=lam_w, lam_v=lam_v, return_evaluations=True)
            if evaluations >= MAX_ITER and penalised and math.isinf(step_size_bound(d, "exact", y, lam_v=lam_v)):
                raise FMInputError(
                    f"the z-iteration did not converge in {MAX_ITER} evaluations at eta = {eta:g} (nnz = {d}): with "
                    "a penalty that makes the bound infinite, eta this large moves t = logit(z) by about one unit "
                    "per Newton step; use a smaller eta (eta <= 1e50 converges)"
                )
    elif solver == "golden":
        z = maximise_q_golden(s, y, eta)
    else:
        raise FMInputError(f"solver must be 'exact' or 'golden', got {solver!r}")
    result = _update(idx, y, w0, w, V, eta, z, freeze_V, lam_w, lam_v)
    for name, t in (("w0", result.w0), ("w[idx]", result.w[idx]), ("V[idx]", result.V[idx])):
        check_finite_result(f"the prox step's new {name}", t)
    return result


class ProxTrainer:
    """The closed-form prox step applied in place, one sample at a time.

    The same interface as :class:`fmedu.prox.published.PublishedProxTrainer`, for side-by-side
    use (chapter 06's cost comparison, chapter 07). Parameters are validated once here;
    :meth:`step` checks the sample, the label and the step-size bound.
    ``freeze_V=True`` gives the published semantics of erratum E3 (see :func:`prox_step`).
    """

    def __init__(self, w0: Tensor, w: Tensor, V: Tensor, eta: float, *, freeze_V: bool = False) -> None:
        check_params(w0, w, V)
        self.w0 = w0.detach().clone()
        self.w = w.detach().clone()
        self.V = V.detach().clone()
        self.eta = check_eta(eta)
        self.freeze_V = bool(freeze_V)

    def params(self) -> tuple[Tensor, Tensor, Tensor]:
        """The current (w0, w, V): the trainer's own tensors, not copies."""
        return self.w0, self.w, self.V

    def step(self, idx: Tensor, y: float) -> float:
        """One exact prox step on the sample with ones at ``idx`` (distinct) and label ``y``; returns z*."""
        idx = check_one_sample(idx, self.V.shape[0])
        y = check_label(y)
        d = int(idx.numel())
        check_step_size(self.eta, d, y)
        z = maximise_q_newton(sample_scalars(idx, self.w0, self.w, self.V, check=False), y, self.eta)
        shift = self.eta * y * z
        self.w0 += shift
        self.w[idx] += shift  # index_put_: writes through
        if not self.freeze_V and d >= 2:  # d = 1: S(z) = 1, V[idx] stays
            self.V[idx] = solve_vectors(self.V[idx], self.eta, y, z)
        return z
