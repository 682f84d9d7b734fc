"""The exact prox step with a per-touch L2 penalty, from the sample scalars (engine pieces).

Per sample the engine minimises, over θ = (w0, w, V),

    log(1 + e^(−y ŷ(θ))) + ½ Σ_{i ∈ I} (λ_w w_i² + λ_v ‖v_i‖²) + ‖θ − θ_t‖² / (2η),

I the sample's d features (libFM's per-touch penalty: only the touched rows, never w0). As in
the unpenalised step the logistic loss is written through its conjugate, with β = η y z for
z in [0, 1]; for fixed z the minimiser θ(z) has a closed form:

* w0 ← w0 + β; w_i ← ρ (w_i + β) with ρ = 1/(1 + ηλ_w);
* each latent column of V_I solves S_λ(z) V_I = V_{I,t}, S_λ(z) = (a + β) I − β 11ᵀ with
  a = 1 + ηλ_v: eigenvalue D = a − (d − 1)β along 1 and E = a + β on its complement, so by
  Sherman–Morrison S_λ⁻¹ = (1/E)(I + (β/D) 11ᵀ): v_i ← (v_i + c Σ_I v) / E, c = β/D.

The prediction after the step depends on the sample only through B' = w0 + ρ Σ_I w_i, A =
Σ_I ‖v_i‖², C = ‖Σ_I v_i‖² and d (the Σ v part along 1 is divided by D, the rest by E):

    ŷ(θ(z)) = B' + (1 + ρ d) β + ½ [C (a² + (d − 1) β²) / (D² E²) − A / E²],

and z* solves z = σ(−y ŷ(θ(z))), the optimality condition of the concave dual, by the
safeguarded Newton iteration of :func:`fmedu.prox.scalar.newton_z` (its bracket argument
needs only that −y dŷ/dz ≥ 0 below the bound, which the penalty keeps: a ≥ 1 only moves the
pole z = a/(η(d − 1)) (y = +1) or a/η (y = −1) away). At λ_w = λ_v = 0 (ρ = a = 1) every
formula is the unpenalised one; the kernels then call the unpenalised code, so such runs are
the old runs bit for bit.

``prox-linearised`` (an ablation, not a proximal step): the same z* and linear weights, but
S_λ⁻¹ replaced by its first-order truncation in β, (1/a)(I − (β/a)(I − 11ᵀ)) (at λ_v = 0:
I − β(I − 11ᵀ)); S⁻¹ = I − β(I − 11ᵀ) + β²(I − 11ᵀ)² − …, and the truncation drops the
second-order term that inflates the vectors of features that nearly every sample touches.
The map is still v_i ← (v_i + c Σ v) · f, with c = β/(a − β) and f = (a − β)/a².
"""

from __future__ import annotations

import math

from ..prox import scalar
from .jit import shared

__all__ = ["prediction_after", "newton_z", "latent_coefficients", "coefficients"]


@shared
def prediction_after(z, B, A, C, d, eta, y, rho, a):
    """(ŷ(θ(z)), dŷ(θ(z))/dz) of the penalised step (module docstring); ρ = 1/(1 + ηλ_w), a = 1 + ηλ_v.

    ``B`` here is the shrunk bias sum B' = w0 + ρ Σ_I w_i.
    """
    beta = eta * y * z
    E = a + beta
    D = a - (d - 1.0) * beta
    num = a * a + (d - 1.0) * beta * beta
    ratio = num / (D * D * E * E)
    y_hat = B + (1.0 + rho * d) * beta + (C * ratio - A / (E * E)) / 2.0
    d_ratio = (2.0 * (d - 1.0) * beta * D * E + 2.0 * num * ((d - 1.0) * E - D)) / (D * D * D * E * E * E)
    slope = eta * y * ((1.0 + rho * d) + (C * d_ratio + 2.0 * A / (E * E * E)) / 2.0)
    return y_hat, slope


@shared
def newton_z(B, A, C, d, eta, y, rho, a, max_iter):
    """z* of the penalised step and the number of evaluations (the iteration of
    :func:`fmedu.prox.scalar.newton_z` with the penalised prediction and pole).

    ``B`` is the shrunk bias sum B'. The start t = −y (B' + ½(C − A)) is the root for η → 0;
    as in the unpenalised iteration the first evaluation brackets the root, so any start works.
    """
    t_pole = math.inf
    if d >= 2.0:
        z_pole = a / (eta * (d - 1.0)) if y > 0 else a / eta
        if z_pole < 1.0:
            t_pole = scalar.logit(z_pole)
    t = -y * (B + 0.5 * (C - A))
    if t >= t_pole:
        t = t_pole - 1.0
    lo = -math.inf
    hi = t_pole
    g_before = math.inf
    evaluations = 0
    for _ in range(max_iter):
        z = scalar.sigmoid(t)
        f, df = prediction_after(z, B, A, C, d, eta, y, rho, a)
        evaluations += 1
        g = -y * f - t
        if abs(g) <= 1e-15 * (1.0 + abs(t) + abs(f) + abs(B)):
            break
        t_next, lo, hi, g_before = scalar.bracketed_newton(
            t, g, -y * df * z * (1.0 - z) - 1.0, lo, hi, g_before, evaluations
        )
        if abs(t_next - t) <= 1e-15 * (1.0 + abs(t)):
            t = t_next
            break
        t = t_next
    return scalar.sigmoid(t), evaluations


@shared
def latent_coefficients(beta, d, a, linearised):
    """(c, f) of the latent map v_i ← (v_i + c Σ_I v) · f for the d touched rows, a = 1 + ηλ_v.

    Exact: S_λ⁻¹ = (1/E)(I + (β/D) 11ᵀ), so c = β/D and f = 1/E (D = a − (d − 1)β, E = a + β);
    ``linearised``: the first-order truncation, c = β/(a − β), f = (a − β)/a² (module docstring).
    """
    if linearised:
        return beta / (a - beta), (a - beta) / (a * a)
    return beta / (a - (d - 1.0) * beta), 1.0 / (a + beta)


@shared
def coefficients(w0, w_sum, A, C, d, eta, y, lam_w, lam_v, linearised, max_iter):
    """(β, c, f, ρ) of the penalised step: w0 += β, w_i ← ρ(w_i + β), v_i ← (v_i + c Σ v) · f.

    ``w_sum`` = Σ_I w_i (the column sum of w); ``linearised`` selects the first-order
    truncation of S_λ⁻¹ (module docstring) for the latent map; z* is the exact step's either way.
    """
    rho = 1.0 / (1.0 + eta * lam_w)
    a = 1.0 + eta * lam_v
    z = newton_z(w0 + rho * w_sum, A, C, d, eta, y, rho, a, max_iter)[0]
    beta = eta * y * z
    c, f = latent_coefficients(beta, d, a, linearised)
    return beta, c, f, rho
