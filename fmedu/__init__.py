"""fmedu: teaching and verifying second-order factorization machines.

Top-level names are the ones the notebooks use most; submodules hold the rest:
``model`` (prediction), ``symbolic`` (sympy proofs), ``cost`` (operation counts and
timings), ``figures`` (one function per figure, ``python -m fmedu figures``).
"""

from .model import (
    FactorizationMachine,
    dense_to_sparse,
    pairwise_naive,
    pairwise_rendle,
    pairwise_sparse,
    predict,
    predict_naive,
    predict_sparse,
    sparse_to_dense,
)
from .grad import (
    batch_loss_grad,
    batch_loss_grad_sparse,
    hinge_loss,
    hinge_loss_derivative,
    logistic_loss,
    logistic_loss_derivative,
    predict_grad,
    predict_grad_sparse,
    squared_loss,
    squared_loss_derivative,
)
from .validation import FMInputError

__version__ = "0.1.0"

__all__ = [
    "FMInputError",
    "FactorizationMachine",
    "dense_to_sparse",
    "pairwise_naive",
    "pairwise_rendle",
    "pairwise_sparse",
    "predict",
    "predict_naive",
    "predict_sparse",
    "sparse_to_dense",
    # gradients and losses (fmedu.grad, notebook 02)
    "batch_loss_grad",
    "batch_loss_grad_sparse",
    "hinge_loss",
    "hinge_loss_derivative",
    "logistic_loss",
    "logistic_loss_derivative",
    "predict_grad",
    "predict_grad_sparse",
    "squared_loss",
    "squared_loss_derivative",
]
