"""Definitions shared by the engine's CPU and GPU backends: methods, runs, checks, the driver.

Pure numpy: no compiled code here, so both backends import it without importing each other.

Shapes (R runs, N samples, n features, k latent dimensions, K1 = k + 1):

* data: ``idx`` int64 ``(N, m)`` padded with −1, ``nnz`` int64 ``(N,)``, ``y`` float64
  ``(N,)`` in {−1, +1}; row numbers ``train_rows``, ``val_rows``, ``test_rows`` int64.
* parameters: ``w0`` ``(R,)`` and ``theta`` ``(R, n, K1)``: run r's w is ``theta[r, :, 0]`` and
  its V is ``theta[r, :, 1:]``, so a touched feature is one contiguous row.
* optimiser state, only for the runs of that method (``slots[r]`` is run r's index among
  them): Adagrad ``sum_w0`` ``(Ra,)``, ``sum_theta`` ``(Ra, n, K1)`` (torch's ``state_sum``);
  Adam ``exp_avg_w0``, ``exp_avg_sq_w0`` ``(Rm,)``, ``exp_avg``, ``exp_avg_sq`` ``(Rm, n, K1)``
  (torch's names) and ``last_step`` int64 ``(Rm, n)``, each row's last step with a gradient.
* shuffles: ``orders`` int64 ``(S, N_train)``, one permutation of ``train_rows`` per distinct
  seed, and ``order_of_run`` int64 ``(R,)``: run r visits ``orders[order_of_run[r]]``.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np

from ..errors import FMInputError
from ..prox.bounds import step_size_bound

__all__ = [
    "METHODS",
    "CODES",
    "PROX",
    "PROX_PUB",
    "SGD",
    "ADAGRAD",
    "ADAM",
    "PROX_LIN",
    "PROX_METHODS",
    "Run",
    "penalised_bound",
    "init_params",
    "epoch_permutation",
    "check_data",
    "check_rows",
    "check_runs",
    "check_settings",
    "TrainerBase",
]

METHODS = ("prox", "prox-published", "sgd", "adagrad", "adam", "prox-linearised")
CODES = {m: i for i, m in enumerate(METHODS)}
PROX, PROX_PUB, SGD, ADAGRAD, ADAM, PROX_LIN = range(6)
PROX_METHODS = ("prox", "prox-published", "prox-linearised")

ADAGRAD_EPS = 1e-10  # torch.optim.Adagrad default
MAX_NEWTON = 100  # cap on the evaluations of one prox step's z-iteration (a test checks a random sweep stays below it)


@dataclass(frozen=True)
class Run:
    """One training run: method, step size and seed (initialisation and shuffles).

    Optional, with defaults that give the unpenalised, constant-step run bit for bit:
    ``lam_w``, ``lam_v`` ≥ 0, the per-touch L2 penalty ½ Σ_{i ∈ idx} (λ_w w_i² + λ_v ‖v_i‖²)
    added to each sample's loss (only the rows the sample touches, never w0); ``decay`` in
    (0, 1], the step size of epoch e (1-based) being eta · decay^(e − 1).
    """

    method: str
    eta: float
    seed: int
    lam_w: float = 0.0
    lam_v: float = 0.0
    decay: float = 1.0


def init_params(seed: int, n: int, k: int, init_std: float = 0.01) -> tuple[float, np.ndarray, np.ndarray]:
    """(w0, w, V) of a run: w0 = 0, w and V ~ N(0, init_std²) from ``SeedSequence([seed, 0])``."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0]))
    w = init_std * rng.standard_normal(n)
    V = init_std * rng.standard_normal((n, k))
    return 0.0, w, V


def epoch_permutation(seed: int, epoch: int, rows: np.ndarray) -> np.ndarray:
    """The order in which a run with ``seed`` visits ``rows`` in ``epoch`` (fresh each epoch)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 1, int(epoch)]))
    return np.asarray(rows, dtype=np.int64)[rng.permutation(len(rows))]


def _positive_int(value, name: str) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise FMInputError(f"{name} must be a positive integer, got {value!r}") from None
    if number < 1:
        raise FMInputError(f"{name} must be a positive integer, got {value!r}")
    return number


def host_array(values, name: str) -> np.ndarray:
    """``values`` as a NumPy array on the host. A torch tensor is accepted from any real device and
    whether or not it requires grad (the engine copies the data); a ``meta`` tensor has no data
    and is refused in words."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return np.asarray(values)
    if isinstance(values, torch.Tensor):
        from ..validation import check_devices

        check_devices(**{name: values})
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _integer_array(values, name: str) -> np.ndarray:
    """``values`` as int64, refusing floats and booleans (np.asarray(..., int64) would truncate them)."""
    arr = host_array(values, name)
    if arr.size and arr.dtype.kind not in "iu":
        raise FMInputError(
            f"{name} must hold integers, got dtype {arr.dtype}; convert it with np.asarray({name}, dtype=np.int64)"
        )
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise FMInputError(f"{name} holds {int(arr.max())}, too large for an index")
    return np.ascontiguousarray(arr, dtype=np.int64)


def check_data(idx, nnz, y, n_features: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The padded one-hot data as contiguous arrays, refused with a clear message when malformed."""
    n_features = _positive_int(n_features, "n_features")
    idx = _integer_array(idx, "idx")
    nnz = _integer_array(nnz, "nnz")
    y_arr = host_array(y, "y")
    if y_arr.dtype.kind not in "iuf":
        raise FMInputError(f"labels y must be numbers in {{-1, +1}}, got dtype {y_arr.dtype}")
    y = np.ascontiguousarray(y_arr, dtype=np.float64)
    if idx.ndim != 2 or nnz.shape != (idx.shape[0],) or y.shape != (idx.shape[0],):
        raise FMInputError(f"idx must be (N, m), nnz and y (N,); got {idx.shape}, {nnz.shape}, {y.shape}")
    if idx.shape[0] == 0:
        raise FMInputError("the data set is empty: pass at least one sample")
    if not np.all(np.isin(y, (-1.0, 1.0))):
        raise FMInputError("labels y must be in {-1, +1}; map 0/1 labels with y = 2*label - 1")
    if np.any(nnz < 1) or np.any(nnz > idx.shape[1]):
        raise FMInputError("every sample needs 1 <= nnz <= idx.shape[1]")
    cols = np.arange(idx.shape[1])[None, :]
    present = cols < nnz[:, None]
    if np.any(idx[present] < 0) or np.any(idx[present] >= n_features):
        raise FMInputError(f"feature indices must lie in [0, {n_features}) for the first nnz entries of each row")
    if np.any(idx[~present] != -1):
        raise FMInputError("idx must be padded with -1 after the first nnz entries of each row")
    inside = np.where(present, idx, -1 - cols)  # padding made distinct
    ordered = np.sort(inside, axis=1)
    if np.any(ordered[:, 1:] == ordered[:, :-1]):
        row = int(np.nonzero((ordered[:, 1:] == ordered[:, :-1]).any(1))[0][0])
        raise FMInputError(
            f"sample {row} repeats a feature index; the indices of one sample must be distinct "
            "(merge repeated features)"
        )
    return idx, nnz, y


def check_rows(rows, n_samples: int, name: str, *, allow_empty: bool = True) -> np.ndarray:
    """Row numbers into the data: integers in [0, N), each at most once (checked before any kernel)."""
    arr = host_array(rows, name)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise FMInputError(
            f"{name} must be a 1-D array of integer row numbers, got shape {arr.shape} dtype {arr.dtype}"
            + ("; a boolean mask converts with np.flatnonzero(mask)" if arr.dtype == bool else "")
        )
    if not arr.size and not allow_empty:
        raise FMInputError(f"{name} is empty: pass at least one row")
    if arr.dtype.kind == "u" and arr.size and arr.max() >= n_samples:  # before a cast could wrap it
        raise FMInputError(
            f"{name} contains row {int(arr.max())}, outside [0, {n_samples}) for a data set of {n_samples} samples"
        )
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n_samples):
        bad = int(arr[(arr < 0) | (arr >= n_samples)][0])
        raise FMInputError(f"{name} contains row {bad}, outside [0, {n_samples}) for a data set of {n_samples} samples")
    if np.unique(arr).size != arr.size:
        raise FMInputError(f"{name} repeats a row; each sample may appear at most once")
    return np.ascontiguousarray(arr)


def check_settings(k: int, init_std: float) -> tuple[int, float]:
    """The factorisation dimension k >= 1 and a finite init_std >= 0."""
    k = _positive_int(k, "k (factorization dimension)")
    if isinstance(init_std, bool) or not isinstance(init_std, int | float | np.floating | np.integer):
        raise FMInputError(f"init_std must be a finite number >= 0, got {init_std!r}")
    if not (math.isfinite(init_std) and init_std >= 0):
        raise FMInputError(f"init_std must be a finite number >= 0, got {init_std!r}")
    return k, float(init_std)


def penalised_bound(max_nnz: int, lam_v: float) -> float:
    """The exact prox step's convexity bound with the per-touch penalty λ_v, for both labels.

    S_λ(z) = (1 + ηλ_v + β) I − β 11ᵀ (β = ηyz) must stay positive definite for z in [0, 1]:
    along 1, 1 + ηλ_v − (d − 1)ηz > 0 for y = +1, i.e. η < 1/(d − 1 − λ_v) (every η once
    λ_v ≥ d − 1); off 1, 1 + ηλ_v − ηz > 0 for y = −1, i.e. η < 1/(1 − λ_v) (d ≥ 2). λ_w does
    not enter. The formula's one home is :func:`fmedu.prox.bounds.step_size_bound`.
    """
    return step_size_bound(max_nnz, "exact", None, lam_v=lam_v)


def _check_option(value, name: str, run, low_open: bool = False, high: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise FMInputError(f"{name} must be a finite number, got {value!r} in {run!r}")
    ok = math.isfinite(value) and (value > 0 if low_open else value >= 0) and (high is None or value <= high)
    if not ok:
        span = "in (0, 1]" if high is not None else "finite and >= 0"
        raise FMInputError(f"{name} must be {span}, got {value!r} in {run!r}")


def check_runs(runs, max_nnz: int, allow_beyond_bound: bool) -> list[Run]:
    """Known methods, finite positive step sizes, penalties >= 0, decay in (0, 1], and prox step
    sizes below the exact bound (:func:`penalised_bound`)."""
    runs = list(runs)
    if not runs:
        raise FMInputError("runs is empty: pass at least one fmedu.engine.Run")
    for run in runs:
        if not isinstance(run, Run):
            raise FMInputError(f"runs must hold fmedu.engine.Run(method, eta, seed) objects, got {run!r}")
        if isinstance(run.eta, bool) or not isinstance(run.eta, int | float | np.floating | np.integer):
            raise FMInputError(f"step size eta must be a positive finite number, got {run.eta!r}")
        if isinstance(run.seed, bool) or not isinstance(run.seed, int | np.integer) or run.seed < 0:
            raise FMInputError(f"seed must be a non-negative integer, got {run.seed!r}")
        if run.method not in CODES:
            raise FMInputError(f"unknown method {run.method!r}; choose one of {', '.join(METHODS)}")
        if not (math.isfinite(run.eta) and run.eta > 0):
            raise FMInputError(f"step size eta must be positive and finite, got {run.eta!r}")
        _check_option(run.lam_w, "penalty lam_w", run)
        _check_option(run.lam_v, "penalty lam_v", run)
        _check_option(run.decay, "decay", run, low_open=True, high=1.0)
        bound = penalised_bound(max_nnz, float(run.lam_v))
        if run.method in PROX_METHODS and run.eta >= bound and not allow_beyond_bound:
            what = "1/(d-1)" if run.lam_v == 0 else f"(with lam_v={run.lam_v:g})"
            raise FMInputError(
                f"{run.method} step size eta={run.eta:g} is not below the convexity bound {what} = "
                f"{bound:g} for max nnz d={max_nnz}; pick a smaller eta or pass "
                "allow_beyond_bound=True for a demonstration"
            )
    return runs


def check_splits(train_rows, val_rows, test_rows, n_samples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three row sets: training (default: every row), validation and test (default: none), disjoint."""
    train = (
        np.arange(n_samples, dtype=np.int64)
        if train_rows is None
        else check_rows(train_rows, n_samples, "train_rows", allow_empty=False)
    )
    held = {}
    for name, rows in (("val_rows", val_rows), ("test_rows", test_rows)):
        held[name] = np.zeros(0, np.int64) if rows is None else check_rows(rows, n_samples, name)
        if np.intersect1d(held[name], train).size:
            raise FMInputError(f"{name} shares rows with train_rows; held-out rows must not be trained on")
    if np.intersect1d(held["val_rows"], held["test_rows"]).size:
        raise FMInputError(
            "val_rows and test_rows share rows; the test split must be separate from the validation split"
        )
    return train, held["val_rows"], held["test_rows"]


class TrainerBase:
    """What the CPU and GPU trainers share: checks, initial parameters, optimiser state, shuffles.

    ``runs``: a list of :class:`Run`. ``train_rows``: the rows visited each epoch (default:
    all); ``val_rows`` / ``test_rows``: held-out rows evaluated after every epoch (may be
    empty). ``allow_beyond_bound``: permit prox step sizes beyond the exact bound η < 1/(d−1).
    A backend implements ``_epoch(orders, order_of_run, t_start)``, returning the
    ``(R, 4)`` records (train, validation and test loss, RMS latent norm) and ``w0`` ``(R,)``,
    and ``params(r)``. The arrays here are host (numpy) arrays; see the module docstring.
    """

    def __init__(
        self,
        runs,
        idx,
        nnz,
        y,
        *,
        n_features: int,
        train_rows=None,
        val_rows=None,
        test_rows=None,
        k: int = 20,
        init_std: float = 0.01,
        allow_beyond_bound: bool = False,
    ) -> None:
        self.idx, self.nnz, self.y = check_data(idx, nnz, y, n_features)
        k, init_std = check_settings(k, init_std)
        self.train_rows, self.val_rows, self.test_rows = check_splits(
            train_rows, val_rows, test_rows, self.idx.shape[0]
        )
        self.runs = check_runs(runs, int(self.nnz[self.train_rows].max()), allow_beyond_bound)
        self.n, self.k = int(n_features), int(k)
        R, K1 = len(self.runs), self.k + 1
        self.methods = np.array([CODES[r.method] for r in self.runs], dtype=np.int64)
        self.etas = np.array([float(r.eta) for r in self.runs], dtype=np.float64)
        self.decays = np.array([float(r.decay) for r in self.runs], dtype=np.float64)
        # (R, 2): per-touch penalties (λ_w, λ_v) of every run
        self.lams = np.array([[float(r.lam_w), float(r.lam_v)] for r in self.runs], dtype=np.float64)
        self.slots = np.zeros(R, dtype=np.int64)
        for code in range(len(METHODS)):
            mine = self.methods == code
            self.slots[mine] = np.arange(int(mine.sum()))
        self.w0 = np.zeros(R)
        self.theta = np.empty((R, self.n, K1))
        for r, run in enumerate(self.runs):
            self.w0[r], self.theta[r, :, 0], self.theta[r, :, 1:] = init_params(run.seed, self.n, self.k, init_std)
        Ra, Rm = int(np.sum(self.methods == ADAGRAD)), int(np.sum(self.methods == ADAM))
        self.adagrad = (np.zeros(Ra), np.zeros((Ra, self.n, K1)))
        self.adam = (
            np.zeros(Rm),
            np.zeros(Rm),
            np.zeros((Rm, self.n, K1)),
            np.zeros((Rm, self.n, K1)),
            np.zeros((Rm, self.n), dtype=np.int64),
        )
        self.epochs_done = 0
        self.steps_done = 0

    def orders(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """``(orders, order_of_run)`` of ``epoch``: one permutation per distinct seed."""
        seeds = sorted({run.seed for run in self.runs})
        orders = np.empty((len(seeds), len(self.train_rows)), dtype=np.int64)
        for s, seed in enumerate(seeds):
            orders[s] = epoch_permutation(seed, epoch, self.train_rows)
        order_of_run = np.array([seeds.index(run.seed) for run in self.runs], dtype=np.int64)
        return orders, order_of_run

    def epoch_etas(self) -> np.ndarray:
        """The step size of every run in the next epoch e (1-based): eta · decay^(e − 1)
        (exactly eta when decay = 1)."""
        return self.etas * np.power(self.decays, float(self.epochs_done))

    def _epoch(self, orders, order_of_run, t_start: int):
        raise NotImplementedError

    def params(self, r: int) -> tuple[float, np.ndarray, np.ndarray]:
        """(w0, w, V) of run r after the last epoch, as plain arrays (the dense torch parameters).

        ``r`` counts the runs as given, from 0; a negative or too large index raises
        FMInputError rather than picking a run from the end.
        """
        R = len(self.runs)
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 0 <= r < R:
            raise FMInputError(f"run index must be an integer from 0 to {R - 1} (one per run given), got {r!r}")
        return self._params_of(int(r))

    def _params_of(self, r: int) -> tuple[float, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def epoch(self) -> dict:
        """Train every run for one epoch; returns per-run arrays ``train_loss`` (mean loss of each
        sample before its own update), ``val_loss``, ``test_loss`` (NaN without such rows),
        ``v_rms`` (RMS latent-row norm) and ``w0``, all after the epoch."""
        orders, order_of_run = self.orders(self.epochs_done)
        records, w0 = self._epoch(orders, order_of_run, self.steps_done)
        self.epochs_done += 1
        self.steps_done += len(self.train_rows)
        return {
            "train_loss": records[:, 0].copy(),
            "val_loss": records[:, 1].copy(),
            "test_loss": records[:, 2].copy(),
            "v_rms": records[:, 3].copy(),
            "w0": np.array(w0, dtype=np.float64),
        }
