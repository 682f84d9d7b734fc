"""Fast multi-run training of logistic FMs on one-hot data, batch size 1 (chapter 07).

Many independent runs (method × step size × attempt) are trained at once: each run has
its own parameters, its own seed (initialisation and per-epoch shuffle) and its own step
size. Backends: :mod:`~fmedu.engine.cpu` (numba, parallel over runs) and
:mod:`~fmedu.engine.cuda` (numba-cuda: one launch per epoch, one thread block per run), both
built from the per-sample pieces of :mod:`~fmedu.engine.rules` and :mod:`~fmedu.engine.adam`
(one source compiled for both); :mod:`~fmedu.engine.common` holds the checks and the driver.

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
  the engine reproduces this lazily: a row's skipped zero-gradient steps are caught up in
  O(1) when the row is next touched, and every row at the end of each epoch
  (:mod:`fmedu.engine.adam`).

* ``prox-linearised``: an ablation, not a proximal step: the exact step's z* and linear
  weights, with S(z)⁻¹ replaced by its first-order truncation I − β(I − 11ᵀ)
  (:mod:`~fmedu.engine.penalised`).

Every method takes the per-touch L2 penalty of ``Run(..., lam_w, lam_v)``, ½ Σ_{i ∈ idx}
(λ_w w_i² + λ_v ‖v_i‖²) added to each sample's loss (libFM's SGD penalty: only the rows the
sample touches, never w0): inside the prox objective for the prox steps (a closed form again,
:mod:`~fmedu.engine.penalised`), as its gradient on the touched rows for SGD, Adagrad and Adam
(so that Adam's catch-up of untouched rows stays exact: their gradient, penalty included, is
zero). ``Run(..., decay=γ)`` sets the step size of epoch e to η γ^(e − 1). At λ = 0 and γ = 1
the runs are the unpenalised, constant-step runs bit for bit.

Per epoch the engine records the published training loss (each sample's logistic loss
before its own update, averaged over the epoch), the held-out losses on ``val_rows`` and
``test_rows`` after the epoch, the RMS norm of the latent rows and ``w0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import FMInputError
from .common import METHODS, Run, TrainerBase, epoch_permutation, init_params
from .cpu import Trainer, newton_z, set_threads

__all__ = [
    "METHODS",
    "Run",
    "Trainer",
    "SweepResult",
    "TrainerBase",
    "make_trainer",
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
    test_loss: np.ndarray
    v_rms: np.ndarray
    w0: np.ndarray
    trainer: TrainerBase = field(repr=False)


def make_trainer(runs, idx, nnz, y, *, device: str = "cpu", lanes: int = 32, **kwargs) -> TrainerBase:
    """A :class:`Trainer` (``device="cpu"``) or a :class:`fmedu.engine.cuda.CudaTrainer`
    (``device="cuda"``, ``lanes`` threads per run) for ``runs``; keyword arguments as
    :class:`fmedu.engine.common.TrainerBase`."""
    if device == "cpu":
        return Trainer(runs, idx, nnz, y, **kwargs)
    if device == "cuda":
        from .cuda import CudaTrainer

        return CudaTrainer(runs, idx, nnz, y, lanes=lanes, **kwargs)
    raise FMInputError(f"device must be 'cpu' or 'cuda', got {device!r}")


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
    test_rows=None,
    k: int = 20,
    init_std: float = 0.01,
    device: str = "cpu",
    allow_beyond_bound: bool = False,
    progress=None,
) -> SweepResult:
    """Train ``runs`` for ``epochs`` epochs; ``progress(epoch, record)`` is called after each.

    ``train_rows``: the rows visited each epoch (default all); ``val_rows``, ``test_rows``:
    held-out rows, evaluated after every epoch (disjoint from the training rows).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs < 1:
        raise FMInputError(f"epochs must be a positive int, got {epochs!r}")
    epochs = int(epochs)
    trainer = make_trainer(
        runs,
        idx,
        nnz,
        y,
        device=device,
        n_features=n_features,
        train_rows=train_rows,
        val_rows=val_rows,
        test_rows=test_rows,
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
    return SweepResult(
        list(runs), stack["train_loss"], stack["val_loss"], stack["test_loss"], stack["v_rms"], stack["w0"], trainer
    )
