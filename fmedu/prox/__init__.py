"""The stochastic proximal-point method for the logistic FM (chapters 05 and 06).

One step on a one-hot / multi-hot sample (ones at ``idx``, d = len(idx)) with label y ∈ {−1, +1}:

    θ_{t+1} = argmin_θ  log(1 + exp(−y ŷ(θ))) + ‖θ − θ_t‖² / (2η).

The pieces, each in one module:

* :mod:`~fmedu.prox.bounds`: the step-size bound and S(z) = (1 + β) I − β 11ᵀ, β = η y z
  (with the L2 penalties: S_λ(z) = S(z) + η diag(λ_v));
* :mod:`~fmedu.prox.scalar`: the per-sample scalar formulas (ŷ(θ(z)), the Newton solve for
  z*), plain Python that the compiled engine also compiles;
* :mod:`~fmedu.prox.dual`: the dual function q(z) = q1 + q2 − h* and its maximisers;
* :mod:`~fmedu.prox.step`: the closed-form step :func:`prox_step` (optionally with per-touch
  L2 penalties) and an in-place trainer;
* :mod:`~fmedu.prox.reference`: the primal objective, a generic optimiser and the KKT residual;
* :mod:`~fmedu.prox.published`: the published trainer, reproduced (erratum E3);
* :mod:`~fmedu.prox.symbolic`: sympy builders for chapters 05 and 06.
"""

from __future__ import annotations

from .bounds import (
    s_eigenvalues,
    s_inverse,
    s_matrix,
    smallest_eigenvalue_k,
    solve_vectors,
    step_size_bound,
    step_size_bound_per_feature,
)
from .dual import (
    GOLDEN_TOL,
    SampleScalars,
    conjugate,
    golden_section_max,
    maximise_q_golden,
    maximise_q_newton,
    penalised_bias,
    prediction_after,
    prediction_after_per_feature,
    prediction_slope,
    q,
    q1,
    q2,
    q2_reduced,
    q_prime,
    q_reduced,
    q_second,
    sample_scalars,
)
from .published import PublishedProxTrainer
from .reference import kkt_residual, minimise_numerically, prox_objective
from .step import ProxResult, ProxTrainer, check_step_size, prox_step, update_from_z

__all__ = [
    "GOLDEN_TOL",
    "ProxResult",
    "ProxTrainer",
    "PublishedProxTrainer",
    "SampleScalars",
    "check_step_size",
    "conjugate",
    "golden_section_max",
    "kkt_residual",
    "maximise_q_golden",
    "maximise_q_newton",
    "minimise_numerically",
    "penalised_bias",
    "prediction_after",
    "prediction_after_per_feature",
    "prediction_slope",
    "prox_objective",
    "prox_step",
    "q",
    "q1",
    "q2",
    "q2_reduced",
    "q_prime",
    "q_reduced",
    "q_second",
    "s_eigenvalues",
    "s_inverse",
    "s_matrix",
    "smallest_eigenvalue_k",
    "sample_scalars",
    "solve_vectors",
    "step_size_bound",
    "step_size_bound_per_feature",
    "update_from_z",
]
