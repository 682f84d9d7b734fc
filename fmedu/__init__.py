"""fmedu: teaching and verifying second-order factorization machines.

The layers, bottom up (each imports only the ones before it):

* the FM core: :mod:`~fmedu.errors`, :mod:`~fmedu.validation` (input checks),
  :mod:`~fmedu.model` (prediction), :mod:`~fmedu.losses`, :mod:`~fmedu.grad` (closed-form
  gradients), :mod:`~fmedu.symbolic` (sympy builders), :mod:`~fmedu.expressiveness`,
  :mod:`~fmedu.train` (chapter 02's Adam), :mod:`~fmedu.cost` (operation counts, timings);
* the prox method: :mod:`fmedu.prox` (bounds, dual, closed-form step, references, the
  published algorithm);
* the engine: :mod:`fmedu.engine` (compiled multi-run training, CPU and GPU);
* MovieLens: :mod:`fmedu.movielens` (data, experiments, analysis, benchmarks);
* :mod:`fmedu.testing`: random builders and tolerances shared by chapters and tests;
* presentation: :mod:`fmedu.figures` (plots and demo drivers per chapter, nothing a test
  imports) and :mod:`fmedu.notebook`.

Top-level names are the ones the chapters use most. Argument order everywhere: the data
(``x`` or ``idx``, then ``y``), then the parameters (``w0``, ``w``, ``V``), then settings.
"""

# first: importing fmedu.cache points numba's cache at the user cache folder (never the source tree)
from . import cache as _cache  # noqa: F401
from .errors import DataError, FMError, FMInputError, ResultsError
from .grad import batch_loss_grad, batch_loss_grad_sparse, predict_grad, predict_grad_sparse
from .losses import (
    hinge_loss,
    hinge_loss_derivative,
    logistic_loss,
    logistic_loss_derivative,
    squared_loss,
    squared_loss_derivative,
)
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

__version__ = "0.2.0"

__all__ = [
    "DataError",
    "FMError",
    "FMInputError",
    "FactorizationMachine",
    "ResultsError",
    "batch_loss_grad",
    "batch_loss_grad_sparse",
    "dense_to_sparse",
    "hinge_loss",
    "hinge_loss_derivative",
    "logistic_loss",
    "logistic_loss_derivative",
    "pairwise_naive",
    "pairwise_rendle",
    "pairwise_sparse",
    "predict",
    "predict_grad",
    "predict_grad_sparse",
    "predict_naive",
    "predict_sparse",
    "sparse_to_dense",
    "squared_loss",
    "squared_loss_derivative",
]
