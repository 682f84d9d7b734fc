"""One stochastic proximal-point step for the logistic FM on a one-hot / multi-hot sample.

The step (θ = (w0, w, V); the sample x has ones exactly at ``idx``, d = len(idx))::

    θ_{t+1} = argmin_θ  F(θ),   F(θ) = log(1 + exp(−y ŷ(θ))) + ‖θ − θ_t‖² / (2η).

For a fixed dual variable z the minimiser is closed-form (Sherman–Morrison, chapter 06)::

    w0 ← w0 + η y z,   w[idx] ← w[idx] + η y z,   V[idx] ← S(z)⁻¹ V[idx],

and z* maximises the dual function q (:mod:`fmedu.prox.dual`). Chapters 05 (the bound),
05 (the solve) and 06 (MovieLens) use it. Argument order as everywhere in fmedu: the data
(``idx``, ``y``) first, then the parameters (``w0``, ``w``, ``V``), then the settings.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

from ..errors import FMInputError
from ..validation import check_eta, check_label, check_one_sample, check_params
from .bounds import solve_vectors, step_size_bound
from .dual import maximise_q_golden, maximise_q_newton, sample_scalars

__all__ = ["ProxResult", "update_from_z", "prox_step", "check_step_size", "ProxTrainer"]


class ProxResult(NamedTuple):
    """New parameters after one prox step and the optimal dual variable z* ∈ (0, 1)."""

    w0: Tensor
    w: Tensor
    V: Tensor
    z: float


def check_step_size(eta: float, d: int, y: float, *, allow_beyond_bound: bool = False) -> None:
    """Refuse η at or beyond the exact convexity bound for a sample with ``d`` ones and label ``y``.

    The same rule for every path that takes a prox step, with or without moving V (the
    published semantics picks z* from the same q, which is only concave below the bound).
    """
    bound = step_size_bound(d, "exact", y)
    if eta >= bound and not allow_beyond_bound:
        raise FMInputError(
            f"eta = {eta:g} is at or beyond the exact convexity bound {bound:.6g} for a sample with "
            f"nnz = {d} and y = {y:+g} (S(z) must stay positive definite for all z in [0, 1]); "
            f"use eta < {bound:.6g}, or pass allow_beyond_bound=True to demonstrate what fails"
        )


def update_from_z(
    idx: Tensor, y: float, w0: Tensor, w: Tensor, V: Tensor, eta: float, z: float, *, freeze_V: bool = False
) -> ProxResult:
    """θ(z) = argmin_θ φ(θ, z) in closed form; new tensors, inputs untouched.

    w0 + ηyz, w[idx] + ηyz, V[idx] ← S(z)⁻¹ V[idx]; everything else unchanged.
    ``freeze_V=True`` leaves V as it was (a copy): the published trainer's effective
    behaviour, erratum E3.
    """
    y = check_label(y)
    shift = eta * y * z
    w0_new = w0 + shift
    w_new = w.clone()
    w_new[idx] += shift
    V_new = V.clone()
    if not freeze_V and idx.numel() >= 2:  # d = 1: S(z) = 1, nothing to solve
        V_new[idx] = solve_vectors(V[idx], eta, y, z)
    return ProxResult(w0_new, w_new, V_new, float(z))


def prox_step(
    idx: Tensor,
    y: float,
    w0: Tensor,
    w: Tensor,
    V: Tensor,
    eta: float,
    *,
    solver: str = "exact",
    freeze_V: bool = False,
    allow_beyond_bound: bool = False,
) -> ProxResult:
    """One stochastic proximal-point step on the sample x (ones at ``idx``) with label ``y``.

    Returns ``ProxResult(w0, w, V, z)``: new tensors (inputs untouched) equal to
    argmin_θ log(1 + exp(−y ŷ(θ))) + ‖θ − θ_t‖²/(2η), and the optimal dual variable z*.

    * ``idx``: 1-D integer tensor of distinct indices in [0, n); ``y``: ±1 (int, float or a
      one-element tensor); ``eta`` > 0; parameters as in :func:`fmedu.predict_sparse`, finite.
    * ``eta`` must be strictly below ``step_size_bound(len(idx), "exact", y)``; otherwise
      FMInputError states the bound. ``allow_beyond_bound=True`` skips the check for
      demonstrations (chapter 05): the ``"exact"`` solver then searches z below the pole of
      S(z)⁻¹ only.
    * ``solver="exact"``: safeguarded Newton on q' (machine precision); ``solver="golden"``:
      golden-section search of the closed-form q on [0, 1] as published (tolerance 1e-8 on z).
    * ``freeze_V=True``: the *published* semantics (erratum E3): z* is still the maximiser of
      the full q(z), then only w0 and w[idx] move; V is returned unchanged (a copy), because
      the published write of the new latent vectors is lost.
    """
    check_params(w0, w, V)
    idx = check_one_sample(idx, V.shape[0])
    y = check_label(y)
    eta = check_eta(eta)
    check_step_size(eta, int(idx.numel()), y, allow_beyond_bound=allow_beyond_bound)
    s = sample_scalars(idx, w0, w, V, check=False)
    if solver == "exact":
        z = maximise_q_newton(s, y, eta)
    elif solver == "golden":
        z = maximise_q_golden(s, y, eta)
    else:
        raise FMInputError(f"solver must be 'exact' or 'golden', got {solver!r}")
    return update_from_z(idx, y, w0, w, V, eta, z, freeze_V=freeze_V)


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
