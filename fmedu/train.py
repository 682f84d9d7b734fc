"""Training and prediction: Adam on the closed-form gradients (chapter 02).

The interface follows the ``train``/``predict`` pair of the fm-regression.dml and
fm-binclass.dml scripts described on the Apache SystemDS reference page "Algorithms
Reference: Factorization Machines"; the optimiser is Adam (Kingma & Ba, ICLR 2015).
Used by chapter 02 (training on data from a planted FM) and ``tests/test_train.py``.

:func:`train` fits w0, w, V on dense data ``X`` ``(N, n)`` for regression (squared loss) or
binary classification (labels ±1, logistic or hinge loss) with mini-batch Adam, and records
the training and validation loss after every epoch. The default ``backend="closed-form"``
uses :func:`fmedu.grad.batch_loss_grad` and a hand-written Adam; ``backend="autograd"``
runs the same loop with torch autograd gradients and ``torch.optim.Adam``, so the two
trajectories can be compared step for step (same initialisation, same shuffles).
:func:`predict_labels` turns parameters into regression values or class signs.
:func:`planted_fm` and :func:`planted_data` generate data from a known FM.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from .grad import batch_loss_grad, check_targets, get_loss
from .model import predict
from .validation import (
    FMInputError,
    check_dense_batch,
    check_finite_result,
    check_finite_results,
    check_params,
    require_finite,
)

__all__ = [
    "TrainResult",
    "Adam",
    "train",
    "predict_labels",
    "evaluate",
    "planted_fm",
    "planted_data",
    "offdiagonal_relative_error",
]

TASK_LOSSES = {"regression": ("squared",), "classification": ("logistic", "hinge")}


class TrainResult(NamedTuple):
    """Trained parameters and one history row per epoch (row 0: before training)."""

    w0: Tensor
    w: Tensor
    V: Tensor
    history: list[dict]


class Adam:
    """Adam written out, for a list of tensors updated in place.

    With g the gradient at step t = 1, 2, …:
    m ← β1 m + (1 − β1) g,  u ← β2 u + (1 − β2) g²,
    θ ← θ − (lr / (1 − β1ᵗ)) · m / (√u / √(1 − β2ᵗ) + ε),
    which is Adam's bias-corrected update m̂ / (√û + ε) arranged as torch arranges it.
    """

    def __init__(self, params: list[Tensor], lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.u = [torch.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[Tensor]) -> None:
        b1, b2 = self.betas
        self.t += 1
        c1, c2 = 1 - b1**self.t, 1 - b2**self.t
        for p, g, m, u in zip(self.params, grads, self.m, self.u):
            m.mul_(b1).add_(g, alpha=1 - b1)
            u.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.addcdiv_(m, (u.sqrt() / math.sqrt(c2)).add_(self.eps), value=-self.lr / c1)


def _check_training_data(X: Tensor, y: Tensor, name: str, loss: str, n: int | None = None) -> None:
    if not isinstance(X, Tensor) or X.dim() != 2:
        shape = tuple(X.shape) if isinstance(X, Tensor) else type(X).__name__
        raise FMInputError(f"{name} must be a tensor of shape (N, n), one row per sample; got {shape}")
    if n is not None and X.shape[1] != n:
        raise FMInputError(f"{name} has {X.shape[1]} features but X has {n}; both must have the same n columns")
    if X.shape[0] == 0:
        raise FMInputError(f"{name} has no rows; pass at least one sample")
    if X.is_floating_point():
        require_finite(name, X)
    # the remaining dense checks (floating dtype) with a V of the right shape and dtype
    check_dense_batch(X, torch.empty(X.shape[1], 1, dtype=X.dtype if X.is_floating_point() else torch.float64))
    check_targets(y, X.shape[0], X.dtype, loss, name="y" if name == "X" else "y_val")


def evaluate(X: Tensor, y: Tensor, w0: Tensor, w: Tensor, V: Tensor, loss: str) -> float:
    """Mean ``loss`` of the FM on (X, y), as a Python float; a prediction or loss that overflows
    (finite parameters too large for the dtype) raises fmedu's overflow error instead of inf/NaN."""
    y_hat = check_finite_result("the prediction y_hat", predict(X, w0, w, V, check=False))
    return float(check_finite_result("the mean loss", get_loss(loss).value(y_hat, y).mean()))


def predict_labels(X: Tensor, w0: Tensor, w: Tensor, V: Tensor, task: str = "regression") -> Tensor:
    """Predictions as the reference page's predict(): ŷ for regression, sign(ŷ) ∈ {−1, +1} for classification.

    ``X``: ``(N, n)`` or ``(n,)``; ŷ = 0 is assigned to class +1.
    """
    if task not in TASK_LOSSES:
        raise FMInputError(f"task must be 'regression' or 'classification', got {task!r}")
    y_hat = predict(X, w0, w, V)
    if task == "regression":
        return y_hat
    return torch.where(y_hat >= 0, torch.ones_like(y_hat), -torch.ones_like(y_hat))


def _history_row(epoch, X, y, X_val, y_val, params, loss, task) -> dict:
    w0, w, V = params
    row = {
        "epoch": epoch,
        "train_loss": evaluate(X, y, w0, w, V, loss),
        "val_loss": evaluate(X_val, y_val, w0, w, V, loss),
    }
    if task == "classification":
        row["val_accuracy"] = float((predict_labels(X_val, w0, w, V, task) == y_val).double().mean())
    return row


def train(
    X: Tensor,
    y: Tensor,
    X_val: Tensor,
    y_val: Tensor,
    *,
    task: str = "regression",
    k: int = 4,
    epochs: int = 20,
    lr: float = 0.01,
    batch_size: int = 32,
    seed: int = 0,
    loss: str | None = None,
    init_std: float = 0.1,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    backend: str = "closed-form",
) -> TrainResult:
    """Fit an FM with mini-batch Adam; returns ``TrainResult(w0, w, V, history)``.

    ``X`` ``(N, n)``, ``y`` ``(N,)`` (real targets for regression, ±1 labels for
    classification), likewise ``X_val``, ``y_val``. ``loss`` defaults to ``"squared"``
    (regression) or ``"logistic"`` (classification; ``"hinge"`` also allowed). Initial
    w, V ~ N(0, init_std²) and a fresh shuffle each epoch, both from ``seed``; w0 = 0.
    Each history row holds ``epoch``, ``train_loss`` and ``val_loss`` (mean loss over the
    whole set, after that epoch) and, for classification, ``val_accuracy``.
    """
    if task not in TASK_LOSSES:
        raise FMInputError(f"task must be 'regression' or 'classification', got {task!r}")
    loss = loss or TASK_LOSSES[task][0]
    if loss not in TASK_LOSSES[task]:
        raise FMInputError(f"loss {loss!r} does not fit task {task!r}; use one of {TASK_LOSSES[task]}")
    if backend not in ("closed-form", "autograd"):
        raise FMInputError(f"backend must be 'closed-form' or 'autograd', got {backend!r}")
    for name, value in (("k", k), ("epochs", epochs), ("batch_size", batch_size)):
        if not (isinstance(value, int) and value >= (0 if name == "epochs" else 1)):
            raise FMInputError(f"{name} must be a positive integer, got {value!r}")
    if not (lr > 0 and math.isfinite(lr)):
        raise FMInputError(f"lr must be a positive finite number, got {lr!r}")
    _check_training_data(X, y, "X", loss)
    _check_training_data(X_val, y_val, "X_val", loss, n=X.shape[1])

    N, n = X.shape
    gen = torch.Generator().manual_seed(seed)
    w0 = torch.zeros((), dtype=X.dtype)
    w = init_std * torch.randn(n, dtype=X.dtype, generator=gen)
    V = init_std * torch.randn(n, k, dtype=X.dtype, generator=gen)
    check_params(w0, w, V)
    spec = get_loss(loss)

    if backend == "closed-form":
        params = [w0, w, V]
        adam = Adam(params, lr, betas, eps)

        def step(xb, yb):
            _, *grads = batch_loss_grad(xb, yb, *params, spec, check=False)
            adam.step(grads)
    else:
        params = [torch.nn.Parameter(p) for p in (w0, w, V)]
        opt = torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, foreach=False)

        def step(xb, yb):
            opt.zero_grad()
            spec.value(predict(xb, *params, check=False), yb).mean().backward()
            opt.step()

    # finite data and finite parameters can still overflow when lr is too large: every step's
    # result is checked, so a diverged run raises at the step where it overflowed, never returns NaN
    fix = f"the step size lr={lr!r} is too large for these data ({{dtype}} arithmetic overflowed); lower lr"
    history = [_history_row(0, X, y, X_val, y_val, [p.detach() for p in params], loss, task)]
    steps = 0
    for epoch in range(1, epochs + 1):
        order = torch.randperm(N, generator=gen)
        for start in range(0, N, batch_size):
            rows = order[start : start + batch_size]
            step(X[rows], y[rows])
            steps += 1
            where = f"after step {steps} (epoch {epoch})"
            check_finite_results({f"{name} {where}": p.detach() for name, p in zip(("w0", "w", "V"), params)}, fix)
        history.append(_history_row(epoch, X, y, X_val, y_val, [p.detach() for p in params], loss, task))
    w0, w, V = (p.detach().clone() for p in params)
    return TrainResult(w0, w, V, history)


# --------------------------------------------------------------------------- planted data


def planted_fm(
    n: int, k: int, *, strength: float = 1.0, seed: int = 0, dtype=torch.float64
) -> tuple[Tensor, Tensor, Tensor]:
    """A known FM ``(w0, w, V)``; on x ~ N(0, I) its linear and pairwise parts have variance ≈ strength².

    w ~ N(0, strength²/n), V ~ N(0, σ²) with σ² = strength·√(2 / (n(n−1)k)), so that
    Var Σ_{i<j} ⟨v_i, v_j⟩ x_i x_j ≈ n(n−1)/2 · kσ⁴ = strength²; w0 = 0.5·strength.
    """
    gen = torch.Generator().manual_seed(seed)
    sigma = math.sqrt(strength) * (2.0 / (n * (n - 1) * k)) ** 0.25
    w0 = torch.tensor(0.5 * strength, dtype=dtype)
    w = strength * torch.randn(n, dtype=dtype, generator=gen) / math.sqrt(n)
    V = sigma * torch.randn(n, k, dtype=dtype, generator=gen)
    return w0, w, V


def planted_data(
    w0: Tensor, w: Tensor, V: Tensor, N: int, *, task: str = "regression", noise: float = 0.3, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """``(X, y)`` from the planted FM: X ~ N(0, I) of shape ``(N, n)``.

    Regression: y = ŷ(x) + N(0, noise²). Classification: y = +1 with probability
    sigmoid(ŷ(x)), else −1: the planted FM is the true logistic model, and even it is not
    always right (its accuracy is the best any classifier can expect).
    """
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(N, V.shape[0], dtype=V.dtype, generator=gen)
    y_hat = predict(X, w0, w, V)
    if task == "regression":
        return X, y_hat + noise * torch.randn(N, dtype=V.dtype, generator=gen)
    if task == "classification":
        p = torch.sigmoid(y_hat)
        return X, torch.where(torch.rand(N, dtype=V.dtype, generator=gen) < p, 1.0, -1.0).to(V.dtype)
    raise FMInputError(f"task must be 'regression' or 'classification', got {task!r}")


def offdiagonal_relative_error(V: Tensor, V_true: Tensor) -> float:
    """‖offdiag(V Vᵀ − V* V*ᵀ)‖_F / ‖offdiag(V* V*ᵀ)‖_F: how close the learned interactions are.

    Only i ≠ j enters ŷ, and V itself is determined only up to a rotation, so the
    off-diagonal of V Vᵀ is what data can identify.
    """
    mask = ~torch.eye(V.shape[0], dtype=torch.bool)
    diff = (V @ V.T - V_true @ V_true.T)[mask]
    return float(diff.norm() / (V_true @ V_true.T)[mask].norm())
