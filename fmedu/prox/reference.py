"""Independent references for the prox step: the primal objective, a generic optimiser, KKT.

Chapters 05 and 06 check the closed-form step (:func:`fmedu.prox.prox_step`) against the
minimiser that scipy's L-BFGS-B finds for F(θ) = log(1 + exp(−y ŷ(θ))) + ‖θ − θ_t‖²/(2η),
and measure the gradient of F at the closed-form step (the KKT residual).
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
import torch
from torch import Tensor

from ..errors import FMInputError
from ..losses import logistic_loss
from ..model import predict_sparse
from ..validation import check_eta, check_label, check_one_sample, check_params
from .scalar import sigmoid
from .step import ProxResult

__all__ = ["prox_objective", "minimise_numerically", "kkt_residual"]


def _check_sample(idx, y, w0: Tensor, w: Tensor, V: Tensor, eta) -> tuple[Tensor, float, float]:
    """The checks of :func:`fmedu.prox.prox_step` except the bound (the references also run beyond it)."""
    check_params(w0, w, V)
    return check_one_sample(idx, V.shape[0]), check_label(y), check_eta(eta)


def prox_objective(
    idx: Tensor, y: float, w0: Tensor, w: Tensor, V: Tensor, eta: float, w0_t: Tensor, w_t: Tensor, V_t: Tensor
) -> Tensor:
    """F(θ) = log(1 + exp(−y ŷ(θ))) + ‖θ − θ_t‖²/(2η) as a differentiable scalar tensor."""
    idx, y, eta = _check_sample(idx, y, w0, w, V, eta)
    check_params(w0_t, w_t, V_t)
    if V_t.shape != V.shape:
        raise FMInputError(f"V_t has shape {tuple(V_t.shape)} but V has {tuple(V.shape)}; they must match")
    loss = logistic_loss(predict_sparse(idx, w0, w, V, check=False), torch.tensor(y, dtype=V.dtype))
    move = (w0 - w0_t).square() + (w - w_t).square().sum() + (V - V_t).square().sum()
    return loss + move / (2 * eta)


def minimise_numerically(
    idx: Tensor,
    y: float,
    w0: Tensor,
    w: Tensor,
    V: Tensor,
    eta: float,
    *,
    start: tuple[Tensor, Tensor, Tensor] | None = None,
    gtol: float = 1e-13,
    max_iter: int = 20_000,
) -> ProxResult:
    """argmin F by scipy's L-BFGS-B in float64 (autograd gradients): the independent reference.

    Optimises the sample's coordinates (w0, w[idx], V[idx]); every other coordinate of F is a
    separate ‖·‖² term minimised at θ_t. ``start`` (default θ_t) lets chapter 05 run it from
    several starting points when F is not convex. The returned ``z`` is σ(−y ŷ) at the
    solution (the dual variable it implies).
    """
    idx, y, eta = _check_sample(idx, y, w0, w, V, eta)
    d, k = int(idx.numel()), V.shape[1]
    local = torch.arange(d)  # the sample's rows, renumbered 0..d-1

    def flat(a0: Tensor, a: Tensor, A: Tensor) -> Tensor:
        return torch.cat([a0.reshape(1), a[idx], A[idx].reshape(-1)]).detach().to(torch.float64)

    anchor = flat(w0, w, V)
    x0 = anchor if start is None else flat(*start)
    y_t = torch.tensor(y, dtype=torch.float64)

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
        y_hat = predict_sparse(local, t[0], t[1 : 1 + d], t[1 + d :].reshape(d, k), check=False)
        F = logistic_loss(y_hat, y_t) + (t - anchor).square().sum() / (2 * eta)
        (grad,) = torch.autograd.grad(F, t)
        return float(F.detach()), grad.numpy()

    res = scipy.optimize.minimize(
        fun,
        x0.numpy(),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": gtol, "ftol": 0.0, "maxcor": 30},
    )
    theta = torch.as_tensor(np.asarray(res.x), dtype=V.dtype)
    w0_new = theta[0].clone()
    w_new, V_new = w.clone(), V.clone()
    w_new[idx] = theta[1 : 1 + d]
    V_new[idx] = theta[1 + d :].reshape(d, k)
    y_hat = float(predict_sparse(idx, w0_new, w_new, V_new, check=False))
    return ProxResult(w0_new, w_new, V_new, sigmoid(-y * y_hat))


def kkt_residual(result: ProxResult, idx: Tensor, y: float, w0: Tensor, w: Tensor, V: Tensor, eta: float) -> float:
    """max |∇F| at ``result``'s parameters (autograd, float64): 0 exactly at a stationary point."""
    a0, a, A = (t.detach().clone().requires_grad_(True) for t in (result.w0, result.w, result.V))
    F = prox_objective(idx, y, a0, a, A, eta, w0, w, V)
    return max(float(g.abs().max()) for g in torch.autograd.grad(F, [a0, a, A]))
