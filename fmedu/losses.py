"""The losses of chapter 02: squared (regression), logistic and hinge (classification).

``squared``: (ŷ − y)², derivative 2(ŷ − y), any real y. ``logistic``: log(1 + exp(−yŷ))
computed as logaddexp(0, −yŷ), derivative −y·sigmoid(−yŷ), labels in {−1, +1}; both forms stay
exact for margins of ±1000 (torch's ``softplus`` switches to its linear branch above 20, so
its gradient there would be exactly 1 instead of σ(−yŷ)). ``hinge``: max(0, 1 − yŷ), labels
in {−1, +1}, subgradient −y where yŷ ≤ 1 and 0 elsewhere (at the kink this picks −y, the
same choice torch's autograd makes for ``clamp``). Every function works elementwise on
tensors of any shape; the prox step (chapters 05–07) uses the same logistic loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from .errors import FMInputError
from .validation import check_labels, require_finite

__all__ = [
    "squared_loss",
    "squared_loss_derivative",
    "logistic_loss",
    "logistic_loss_derivative",
    "hinge_loss",
    "hinge_loss_derivative",
    "LOSSES",
    "Loss",
    "get_loss",
    "check_targets",
]


def squared_loss(y_hat: Tensor, y: Tensor) -> Tensor:
    """(ŷ − y)², elementwise."""
    return (y_hat - y) ** 2


def squared_loss_derivative(y_hat: Tensor, y: Tensor) -> Tensor:
    """∂/∂ŷ (ŷ − y)² = 2(ŷ − y)."""
    return 2 * (y_hat - y)


def logistic_loss(y_hat: Tensor, y: Tensor) -> Tensor:
    """log(1 + exp(−yŷ)) = logaddexp(0, −yŷ): no overflow for any margin yŷ."""
    check_labels(y)  # labels in {-1, +1}: {0, 1} labels would give a wrong loss silently
    margin = y * y_hat
    return torch.logaddexp(torch.zeros_like(margin), -margin)


def logistic_loss_derivative(y_hat: Tensor, y: Tensor) -> Tensor:
    """∂/∂ŷ log(1 + exp(−yŷ)) = −y·sigmoid(−yŷ) (torch's sigmoid is stable at ±1000)."""
    check_labels(y)  # labels in {-1, +1}: {0, 1} labels would give a wrong loss silently
    return -y * torch.sigmoid(-y * y_hat)


def hinge_loss(y_hat: Tensor, y: Tensor) -> Tensor:
    """max(0, 1 − yŷ)."""
    check_labels(y)  # labels in {-1, +1}: {0, 1} labels would give a wrong loss silently
    return torch.clamp(1 - y * y_hat, min=0)


def hinge_loss_derivative(y_hat: Tensor, y: Tensor) -> Tensor:
    """A subgradient of max(0, 1 − yŷ) in ŷ: −y where yŷ ≤ 1, else 0."""
    check_labels(y)  # labels in {-1, +1}: {0, 1} labels would give a wrong loss silently
    return torch.where(y * y_hat <= 1, -y, torch.zeros_like(y))


class Loss(NamedTuple):
    name: str
    value: Callable[[Tensor, Tensor], Tensor]
    derivative: Callable[[Tensor, Tensor], Tensor]
    labels: tuple[float, ...] | None  # allowed label values, None = any real y
    third_derivative_bound: float  # sup |ℓ'''| in ŷ (used by the finite-difference bound)


LOSSES: dict[str, Loss] = {
    "squared": Loss("squared", squared_loss, squared_loss_derivative, None, 0.0),
    # |σ''(t)| ≤ 1/(6√3) < 0.0963 for the logistic sigmoid σ, and ℓ''' = −y³σ''(−yŷ)
    "logistic": Loss("logistic", logistic_loss, logistic_loss_derivative, (-1.0, 1.0), 0.0963),
    "hinge": Loss("hinge", hinge_loss, hinge_loss_derivative, (-1.0, 1.0), 0.0),
}


def get_loss(loss: str | Loss) -> Loss:
    """The :class:`Loss` named ``loss`` (``"squared"``, ``"logistic"`` or ``"hinge"``)."""
    if isinstance(loss, Loss):
        return loss
    if loss not in LOSSES:
        raise FMInputError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[loss]


def check_targets(y: Tensor, batch: int, dtype: torch.dtype, loss: str | Loss, name: str = "y") -> None:
    """y of shape ``(batch,)``, the parameters' dtype, finite, and labels valid for ``loss``.

    ``name`` is the argument name used in the error messages (e.g. ``"y_val"``).
    """
    spec = get_loss(loss)
    if not isinstance(y, Tensor):
        raise FMInputError(
            f"{name} must be a torch.Tensor, got {type(y).__name__}; "
            f"convert it with torch.as_tensor({name}, dtype={dtype})"
        )
    if y.shape != (batch,):
        raise FMInputError(
            f"{name} has shape {tuple(y.shape)} but the batch has {batch} samples; pass {name} of shape ({batch},), "
            "one target per sample"
        )
    if y.dtype != dtype:
        raise FMInputError(f"{name} has dtype {y.dtype} but the parameters have {dtype}; use {name}.to({dtype})")
    require_finite(name, y)
    if spec.labels is not None:
        check_labels(y, spec.labels, name=name)
