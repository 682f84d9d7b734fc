"""Fast multi-run training of logistic FMs on one-hot data, batch size 1 (chapter 06).

Many independent runs (method × step size × attempt) are trained at once: each run has
its own parameters, its own seed (initialisation and per-epoch shuffle) and its own step
size. Backends: :mod:`~fmedu.engine.cpu` (numba, parallel over runs) and
:mod:`~fmedu.engine.cuda` (a GPU); :mod:`~fmedu.engine.common` holds what both share.

Methods (``METHODS``), each with the semantics of its reference:

* ``prox``: the exact stochastic proximal-point step of :func:`fmedu.prox.prox_step`. The
  step depends on a sample only through its scalars (B, A, C, d), so z* is found by the
  Newton iteration of :mod:`fmedu.prox.scalar` in a handful of flops.
* ``prox-published``: erratum E3: z* from the same full q, but only ``w0`` and ``w[idx]``
  are written; the latent vectors keep their initial values.
* ``sgd``, ``adagrad``, ``adam``: ``torch.optim.SGD/Adagrad/Adam`` with default settings
  apart from the learning rate, on the dense parameters of
  :class:`fmedu.FactorizationMachine`. SGD and Adagrad change only the rows of ``idx``.
  Adam moves *every* parameter at every step (the decayed first moment keeps moving it);
  the engine reproduces this lazily: a row's skipped zero-gradient steps are caught up
  when the row is next touched, or at the end of the epoch.

Per epoch the engine records the published training loss (each sample's logistic loss
before its own update, averaged over the epoch), the held-out loss on ``val_rows`` after
the epoch, the RMS norm of the latent rows and ``w0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import FMInputError
from .common import METHODS, Run, epoch_permutation, init_params
from .cpu import Trainer, newton_z, set_threads

__all__ = [
    "METHODS",
    "Run",
    "Trainer",
    "SweepResult",
    "train_runs",
    "init_params",
    "epoch_permutation",
    "newton_z",
    "set_threads",
]


@dataclass
class SweepResult:
    """Per-run, per-epoch records (arrays ``(R, epochs)``) and the trainer (final parameters)."""

    runs: list
    train_loss: np.ndarray
    val_loss: np.ndarray
    v_rms: np.ndarray
    w0: np.ndarray
    trainer: Any = field(repr=False)  # the backend that trained the runs (final parameters)


def train_runs(
    runs,
    idx,
    nnz,
    y,
    *,
    n_features: int,
    epochs: int,
    train_rows=None,
    val_rows=None,
    k: int = 20,
    init_std: float = 0.01,
    device: str = "cpu",
    allow_beyond_bound: bool = False,
    progress=None,
) -> SweepResult:
    """Train ``runs`` for ``epochs`` epochs; ``progress(epoch, record)`` is called after each."""
    if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs < 1:
        raise FMInputError(f"epochs must be a positive int, got {epochs!r}")
    epochs = int(epochs)
    backend: Any
    if device == "cuda":
        from .cuda import CudaTrainer as backend
    elif device == "cpu":
        backend = Trainer
    else:
        raise FMInputError(f"device must be 'cpu' or 'cuda', got {device!r}")
    trainer = backend(
        runs,
        idx,
        nnz,
        y,
        n_features=n_features,
        train_rows=train_rows,
        val_rows=val_rows,
        k=k,
        init_std=init_std,
        allow_beyond_bound=allow_beyond_bound,
    )
    recs = []
    for e in range(epochs):
        rec = trainer.epoch()
        recs.append(rec)
        if progress is not None:
            progress(e, rec)
    stack = {key: np.stack([rec[key] for rec in recs], axis=1) for key in recs[0]}
    return SweepResult(list(runs), stack["train_loss"], stack["val_loss"], stack["v_rms"], stack["w0"], trainer)
