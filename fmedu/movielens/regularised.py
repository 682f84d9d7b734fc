"""The regularised FM against logistic regression on MovieLens' five official folds (the course's
chapter on regularised proximal point).

``python -m fmedu experiment regularised`` trains, on each official fold k = 1..5
(:mod:`fmedu.movielens.folds`: u{k}.base less a seeded 10 % validation part for training,
u{k}.test for reporting only), the exact prox step, SGD, Adagrad and Adam, each without and
with the per-touch L2 penalty ½ Σ_{i ∈ idx} (λ_w w_i² + λ_v ‖v_i‖²) (``fmedu.engine.Run``'s
``lam_w``, ``lam_v``), with a per-epoch step decay η_e = η₀ γ^(e − 1). Per method, penalty
(yes/no) and fold, the penalty, η₀, γ and the epoch are chosen on the validation rows only:

* stage ``coarse``: the grid ``Config.grids`` (every setting, seed 0, ``epochs`` epochs);
* stage ``refine``: η₀ × {1/2, 2} around every cell's coarse choice, and for the penalised
  cells λ_w × {1/3, 3} (λ_v kept) and λ_v × {1/2, 2} (λ_w kept) at the chosen η₀ and γ (a
  separate penalty for the linear and the latent rows, as libFM's per-group penalties);
* stage ``seeds``: the final choice again with seeds 1, 2, … (the spread over seeds).

Logistic regression (scikit-learn, C chosen on the same validation rows) and the Bayesian FM
(myFM, Gibbs sampling; its priors choose the regularisation) are fitted on the same training
rows. The chosen runs are retrained to their chosen epoch (their recorded validation loss must
come back bit for bit) to score each test row; each model's test log-loss is compared with
logistic regression's on the same test rows: the mean paired difference with a 95 % paired
bootstrap interval over the test rows (seeded), and across the folds a t interval over the five
fold differences.

Files under ``--out`` (default ``results/``):

* ``NAME.csv``: one row per (run, epoch) of every stage, ``RUN_COLUMNS``; resumable: a run
  with all its epochs is never redone, a run cut off mid-write is trained again.
* ``NAME-peers.csv``: logistic regression (each C) and the Bayesian FM per fold and split.
* ``NAME-summary.csv``: one row per (method, penalised, fold) at the choices made on
  validation, ``SUMMARY_COLUMNS`` (``diff_vs_lr``, ``diff_lo``, ``diff_hi``: the paired
  difference of test log-loss against logistic regression and its interval), plus the rows of
  ``logistic regression`` and ``bayesian fm``; written fold by fold (a finished fold is kept).
  ``epoch_in_last_tenth`` flags a chosen epoch in the last tenth of the budget, and
  ``val_gain_last_tenth`` is what that last tenth gained on validation (the loss at epoch
  0.9 · budget minus the chosen one): where it is tiny, the budget does not bind in effect.
* ``NAME-folds.csv``: per model, the mean over the folds with its interval, the folds whose
  interval lies below zero, and the chosen epochs in the last tenth of the budget.
* ``NAME.json``: provenance (configuration, seeds, git commit, package versions, device, the
  wall time of every session).

``regularised-mechanism`` (:func:`run_mechanism`) records, on fold 1, the RMS norm of the
latent vectors per feature group after every epoch for the exact prox step, its linearised
ablation (``prox-linearised``) and SGD at a few constant (η, λ_v): ``NAME.csv`` with
``MECHANISM_COLUMNS``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FMInputError, ResultsError
from ..paths import append_complete, check_output_folder
from . import results_file
from .metrics import log_loss, roc_auc

__all__ = [
    "Config",
    "MechanismConfig",
    "PRESETS",
    "RUN_COLUMNS",
    "SUMMARY_COLUMNS",
    "FOLD_COLUMNS",
    "MECHANISM_COLUMNS",
    "METHOD_LABELS",
    "paired_bootstrap",
    "fold_interval",
    "choose",
    "run_regularised",
    "run_mechanism",
    "run",
    "load_csv",
]

FM_METHODS = ("prox", "sgd", "adagrad", "adam")
# what the rows of an existing runs file depend on: a resumed run must agree on these (the grids may grow)
_ROW_MEANING = ("folds", "epochs", "k", "init_std", "val_fraction", "val_seed", "subset")
RUN_COLUMNS = [
    "preset", "stage", "fold", "method", "penalised", "lam_w", "lam_v", "eta", "decay", "seed", "epoch",
    "train_loss", "val_loss", "test_loss", "v_rms", "w0", "n_train", "n_val", "n_test",
]  # fmt: skip
SUMMARY_COLUMNS = [
    "method", "penalised", "fold", "lam_w", "lam_v", "eta", "decay", "epoch", "stage", "val_log_loss",
    "test_log_loss", "test_auc", "diff_vs_lr", "diff_lo", "diff_hi", "epoch_budget", "epoch_in_last_tenth",
    "seeds", "seed_test_min", "seed_test_max", "n_test", "val_gain_last_tenth",
]  # fmt: skip
FOLD_COLUMNS = [
    "method", "penalised", "folds", "mean_test_log_loss", "mean_test_auc", "mean_diff_vs_lr", "diff_lo",
    "diff_hi", "folds_below_zero", "folds_interval_below_zero", "epochs_in_last_tenth", "max_val_gain_last_tenth",
]  # fmt: skip
PEER_COLUMNS = ["fold", "model", "setting", "split", "n", "log_loss", "auc", "fit_s"]
MECHANISM_COLUMNS = [
    "preset", "fold", "method", "eta", "lam_w", "lam_v", "seed", "epoch", "group", "rows", "v_rms", "val_loss",
]  # fmt: skip
METHOD_LABELS = {"lr": "logistic regression", "bfm": "bayesian fm"}
GROUPS = ("user", "movie", "age", "gender", "occupation", "genre")


def _penalties(lam_v_values, ratio=0.1):
    return [(round(ratio * lv, 12), lv) for lv in lam_v_values]


@dataclass(frozen=True)
class Config:
    """A five-fold regularisation experiment.

    ``grids[method]`` = (η₀ values and γ values without penalty, η₀ values and γ values with it);
    ``penalties``: the coarse (λ_w, λ_v) pairs; ``refine_w`` / ``refine_v``: the factors of the
    refine stage's penalties, ``refine_eta``: its factors of η₀ (every cell; prox settings at or
    beyond the convexity bound are left out);
    refine stage; ``seeds``: the extra seeds of the chosen settings; ``subset``: use only the first
    ``subset`` training, validation and test rows of each fold (tests).
    """

    name: str
    description: str
    folds: tuple = (1, 2, 3, 4, 5)
    epochs: int = 50
    k: int = 20
    init_std: float = 0.01
    val_fraction: float = 0.1
    val_seed: int = 0
    grids: dict = field(default_factory=dict)
    penalties: tuple = ()
    refine_w: tuple = (1 / 3, 1.0, 3.0)
    refine_v: tuple = (0.5, 1.0, 2.0)
    refine_eta: tuple = (0.5, 2.0)
    seeds: tuple = (1, 2)
    lr_C: tuple = (0.1, 0.3, 1.0, 3.0)
    lr_max_iter: int = 2000
    bfm_rank: int = 20
    bfm_seed: int = 0
    bfm_iter: int = 200
    bfm_kept: int = 150
    n_boot: int = 2000
    boot_seed: int = 0
    subset: int | None = None


@dataclass(frozen=True)
class MechanismConfig:
    """Latent norms per feature group over epochs (fold 1, constant step sizes)."""

    name: str
    description: str
    fold: int = 1
    epochs: int = 10
    k: int = 20
    methods: tuple = ("prox", "prox-linearised", "sgd")
    etas: tuple = (0.003, 0.01, 0.03)
    penalties: tuple = ((0.0, 0.0), (0.003, 0.03), (0.01, 0.1))
    seed: int = 0
    subset: int | None = None


_FULL_GRIDS = {
    # method: (eta0 values without penalty, their decays, eta0 values with penalty, their decays); the
    # unpenalised prox step degrades at eta >= 0.02 (its gender and occupation latent vectors grow; chapter 09)
    "prox": ((0.003, 0.01, 0.03), (0.85, 0.9, 1.0), (0.02, 0.04, 0.08), (0.85, 0.9)),
    "sgd": ((0.003, 0.01, 0.03), (0.85, 0.9, 1.0), (0.02, 0.04, 0.08), (0.85, 0.9)),
    "adagrad": ((0.01, 0.03, 0.1), (0.85, 0.9, 1.0), (0.02, 0.05, 0.1), (0.85, 0.9)),
    "adam": ((1e-4, 3e-4, 1e-3), (0.85, 0.9, 1.0), (1e-4, 3e-4, 1e-3), (0.85, 0.9)),
}

PRESETS: dict[str, Any] = {
    "regularised": Config(
        "regularised",
        "five official folds (u1-u5): exact prox, SGD, Adagrad, Adam with and without a per-touch L2 "
        "penalty and a decaying step, penalty/step/decay/epoch chosen on validation; logistic regression "
        "and the Bayesian FM on the same rows; paired intervals against logistic regression",
        grids=_FULL_GRIDS,
        penalties=tuple(_penalties((0.01, 0.03, 0.1))),
    ),
    "regularised-smoke": Config(
        "regularised-smoke",
        "CI smoke test of the regularised experiment: folds 1 and 2, first 3,000 training, 500 validation "
        "and 1,000 test rows, 3 epochs, two settings per method, one extra seed",
        folds=(1, 2),
        epochs=3,
        k=4,
        grids={m: (g[0][1:2], (0.9,), g[2][1:2], (0.9,)) for m, g in _FULL_GRIDS.items()},
        penalties=((0.003, 0.03),),
        refine_w=(1.0, 3.0),
        refine_v=(1.0,),
        refine_eta=(2.0,),
        seeds=(1,),
        lr_C=(0.3, 1.0),
        bfm_rank=4,
        bfm_iter=20,
        bfm_kept=10,
        n_boot=200,
        subset=3000,
    ),
    "regularised-mechanism": MechanismConfig(
        "regularised-mechanism",
        "fold 1: RMS latent norm per feature group over 10 epochs for the exact prox step, its first-order "
        "(linearised) ablation and SGD, constant eta in {0.003, 0.01, 0.03}, per-touch L2 (lam_w, lam_v) in "
        "{(0, 0), (0.003, 0.03), (0.01, 0.1)}",
    ),
    "regularised-mechanism-smoke": MechanismConfig(
        "regularised-mechanism-smoke",
        "CI smoke test of the mechanism runs: first 3,000 training rows, 2 epochs, one setting",
        epochs=2,
        k=4,
        etas=(0.03,),
        penalties=((0.0, 0.0),),
        subset=3000,
    ),
}


# --------------------------------------------------------------------------- statistics


def paired_bootstrap(loss_a, loss_b, n_boot: int, seed, level: float = 0.95) -> tuple[float, float, float]:
    """Mean paired difference mean(a − b) and its percentile bootstrap interval over the rows.

    Each resample draws the n rows with replacement (the same rows for a and b, as
    multinomial counts), seeded by ``seed`` (anything :func:`numpy.random.default_rng` takes).
    Returns (difference, low, high).
    """
    a, b = np.asarray(loss_a, dtype=np.float64), np.asarray(loss_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise FMInputError(f"paired losses must be two 1-D arrays of one length, got {a.shape} and {b.shape}")
    if not (isinstance(n_boot, int) and n_boot >= 1):
        raise FMInputError(f"n_boot must be a positive int, got {n_boot!r}")
    d = a - b
    n = d.size
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    batch = max(1, min(n_boot, 2_000_000 // n))
    for start in range(0, n_boot, batch):
        size = min(batch, n_boot - start)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=size)
        means[start : start + size] = counts @ d / n
    tail = (1.0 - level) / 2
    lo, hi = np.quantile(means, [tail, 1.0 - tail])
    return float(d.mean()), float(lo), float(hi)


def fold_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of per-fold values and its Student-t interval (n − 1 degrees of freedom)."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    mean = float(v.mean())
    if v.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return mean, mean - half, mean + half


# --------------------------------------------------------------------------- files


def load_csv(path, columns: list[str]) -> list[dict]:
    """Rows of one of this module's CSV files (numbers converted); a last line cut off by an
    interruption is skipped; a wrong header or a damaged line raises ResultsError."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if lines and lines[-1] != "":
        lines = lines[:-1]  # cut off mid-write
    if not lines or lines[0] != ",".join(columns):
        raise ResultsError(f"{path}, line 1: not the header {','.join(columns)!r}; move the file away to start over")
    rows = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        fields = next(csv.reader([line]))
        if len(fields) != len(columns):
            raise ResultsError(f"{path}, line {lineno}: {len(fields)} fields where a row has {len(columns)}")
        row: dict[str, Any] = {}
        for c, value in zip(columns, fields):
            try:
                row[c] = int(value) if value.lstrip("-").isdigit() else float(value)
            except ValueError:
                row[c] = value
        rows.append(row)
    return rows


def _text(rows: list[dict], columns: list[str], header: bool) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([repr(float(row[c])) if isinstance(row[c], float) else row[c] for c in columns])
    return buf.getvalue()


def _append(path: Path, rows: list[dict], columns: list[str]) -> None:
    """Append complete rows in one flushed, fsync'ed write, cut back if the write fails; a new
    file is created whole, with its header, by the atomic writer. A link is followed either way."""
    if not path.exists() or path.stat().st_size == 0:
        results_file.atomic_write(path, _text(rows, columns, True))
    else:
        append_complete(path, _text(rows, columns, False))


def _keep_rows(path: Path, columns: list[str], keep) -> int:
    """Rewrite ``path`` (atomically) with only the lines whose row satisfies ``keep``; returns the
    number of rows dropped (nothing is rewritten when none is)."""
    if not path.exists():
        return 0
    rows = load_csv(path, columns)
    lines = path.read_text(encoding="utf-8").split("\n")
    body = [line for line in lines[1:] if line]
    if len(body) != len(rows):
        raise ResultsError(f"{path}: blank or damaged lines; move the file away to start over")
    kept = [line for line, row in zip(body, rows) if keep(row)]
    if len(kept) != len(body):
        results_file.atomic_write(path, "\n".join([lines[0], *kept]) + "\n")
    return len(body) - len(kept)


def _complete_prefix(path: Path) -> None:
    """Cut a last line without its newline (an interrupted write) off the file, atomically."""
    if not path.exists():
        return
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        results_file.atomic_write(path, raw[: raw.rfind(b"\n") + 1].decode("utf-8"))


# --------------------------------------------------------------------------- provenance


def _provenance_session(threads: int) -> dict:
    from . import experiments

    return {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": experiments._git_commit(),
        "versions": {**experiments._versions(), **_peer_versions()},
        "device": experiments._device("cpu"),
        "command_line": " ".join(sys.argv),
        "wall_s": 0.0,
    }


def _peer_versions() -> dict:
    out = {}
    for name in ("sklearn", "myfm", "scipy"):
        with contextlib.suppress(Exception):
            import importlib
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[name] = importlib.import_module(name).__version__
    return out


def _write_json(path: Path, prov: dict) -> None:
    results_file.atomic_write(path, json.dumps(prov, indent=1, default=str) + "\n")


# --------------------------------------------------------------------------- data


def _fold_data(config, fold: int, ds):
    from .folds import fold_rows

    train, val, test = fold_rows(ds, fold, val_fraction=config.val_fraction, val_seed=config.val_seed)
    if config.subset is not None:
        train, val, test = train[: config.subset], val[: config.subset // 6], test[: config.subset // 3]
    return train, val, test


def _load(data_root=None):
    from .data import load_movielens

    return load_movielens(data_root, join="correct")


# --------------------------------------------------------------------------- the sweep


def _key(row) -> tuple:
    return (
        str(row["stage"]), int(row["fold"]), str(row["method"]), int(row["penalised"]),
        float(row["lam_w"]), float(row["lam_v"]), float(row["eta"]), float(row["decay"]), int(row["seed"]),
    )  # fmt: skip


def _coarse_settings(config: Config) -> list[tuple]:
    """(method, penalised, lam_w, lam_v, eta, decay) of the coarse stage."""
    out = []
    for method in FM_METHODS:
        plain_etas, plain_decays, pen_etas, pen_decays = config.grids[method]
        for eta in plain_etas:
            for decay in plain_decays:
                out.append((method, 0, 0.0, 0.0, float(eta), float(decay)))
        for lam_w, lam_v in config.penalties:
            for eta in pen_etas:
                for decay in pen_decays:
                    out.append((method, 1, float(lam_w), float(lam_v), float(eta), float(decay)))
    return out


def choose(rows: list[dict]) -> dict:
    """Per (fold, method, penalised): the seed-0 run and epoch with the lowest validation loss.

    Returns ``{(fold, method, penalised): row}`` (the chosen epoch's row; ties: first in file
    order). Only validation losses enter the choice.
    """
    best: dict[tuple, dict] = {}
    for row in rows:
        if int(row["seed"]) != 0 or row["stage"] == "seeds":
            continue
        cell = (int(row["fold"]), row["method"], int(row["penalised"]))
        v = float(row["val_loss"])
        if math.isnan(v):
            continue
        if cell not in best or v < float(best[cell]["val_loss"]):
            best[cell] = row
    return best


def _round(x: float) -> float:
    """A refined penalty to 4 significant digits (0.003 · 3 is 0.009, not 0.009000000000000001)."""
    return float(f"{x:.4g}")


def _refine_settings(config: Config, chosen: dict, fold: int) -> list[tuple]:
    """Around each cell's coarse choice: other penalties (penalised cells) and other step sizes (every cell)."""
    from ..engine.common import penalised_bound
    from .data import MAX_NNZ

    out = []
    for method in FM_METHODS:
        for pen in (0, 1):
            row = chosen.get((fold, method, pen))
            if row is None:
                continue
            for fe in config.refine_eta:
                eta = _round(float(row["eta"]) * fe)
                if method == "prox" and eta >= penalised_bound(MAX_NNZ, float(row["lam_v"])):
                    continue
                out.append((method, pen, float(row["lam_w"]), float(row["lam_v"]), eta, float(row["decay"])))
        row = chosen.get((fold, method, 1))
        if row is None:
            continue
        for fw in config.refine_w:
            for fv in config.refine_v:
                if (fw == 1.0) == (fv == 1.0):  # one penalty at a time (a cross): the centre is the coarse run
                    continue
                out.append(
                    (
                        method,
                        1,
                        _round(float(row["lam_w"]) * fw),
                        _round(float(row["lam_v"]) * fv),
                        float(row["eta"]),
                        float(row["decay"]),
                    )  # fmt: skip
                )
    coarse = set(_coarse_settings(config))
    return [setting for setting in out if setting not in coarse]  # a coarse run is not trained again


def _train_chunk(config, stage, fold, settings, seeds, ds, rows3, threads, csv_path, done, name):
    """Train the settings × seeds not yet done (one engine call for all) and append their rows."""
    from .. import engine

    todo = [
        (s, seed)
        for s in settings
        for seed in seeds
        if (stage, fold, s[0], s[1], s[2], s[3], s[4], s[5], seed) not in done
    ]
    if not todo:
        return 0
    train, val, test = rows3
    runs = [engine.Run(m, eta, seed, lam_w=lw, lam_v=lv, decay=dec) for (m, _, lw, lv, eta, dec), seed in todo]
    res = engine.train_runs(
        runs, ds.idx, ds.nnz, ds.y, n_features=ds.n_features, epochs=config.epochs, train_rows=train,
        val_rows=val, test_rows=test, k=config.k, init_std=config.init_std,
    )  # fmt: skip
    out = []
    for r, ((m, pen, lw, lv, eta, dec), seed) in enumerate(todo):
        for e in range(config.epochs):
            out.append(
                {
                    "preset": name, "stage": stage, "fold": fold, "method": m, "penalised": pen, "lam_w": lw,
                    "lam_v": lv, "eta": eta, "decay": dec, "seed": seed, "epoch": e + 1,
                    "train_loss": float(res.train_loss[r, e]), "val_loss": float(res.val_loss[r, e]),
                    "test_loss": float(res.test_loss[r, e]), "v_rms": float(res.v_rms[r, e]),
                    "w0": float(res.w0[r, e]), "n_train": len(train), "n_val": len(val), "n_test": len(test),
                }
            )  # fmt: skip
    _append(csv_path, out, RUN_COLUMNS)
    for (m, pen, lw, lv, eta, dec), seed in todo:
        done.add((stage, fold, m, pen, lw, lv, eta, dec, seed))
    return len(todo)


def _finished(rows: list[dict], epochs: int) -> set:
    counts: dict[tuple, int] = {}
    for row in rows:
        counts[_key(row)] = counts.get(_key(row), 0) + 1
    return {k for k, c in counts.items() if c == epochs}


# --------------------------------------------------------------------------- scoring


def _scores(w0, w, V, ds, rows) -> np.ndarray:
    idx = ds.idx[rows]
    mask = idx >= 0
    safe = np.where(mask, idx, 0)
    lin = w0 + (w[safe] * mask).sum(1)
    Vs = V[safe] * mask[..., None]
    s = Vs.sum(1)
    return lin + 0.5 * ((s * s).sum(1) - (Vs * Vs).sum((1, 2)))


def _row_losses(y, p) -> np.ndarray:
    y01 = (np.asarray(y) > 0).astype(np.float64)
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return -(y01 * np.log(p) + (1 - y01) * np.log1p(-p))


def _sigmoid(s):
    return 0.5 * (1.0 + np.tanh(0.5 * s))


def _retrain_chosen(config, fold, chosen_rows, ds, rows3) -> dict:
    """Retrain the chosen seed-0 runs to their chosen epochs; returns {cell: p(test rows)}.

    The validation loss the engine records at the chosen epoch must equal the results file's.
    """
    from .. import engine

    train, val, test = rows3
    cells = list(chosen_rows)
    runs = [
        engine.Run(r["method"], float(r["eta"]), 0, lam_w=float(r["lam_w"]), lam_v=float(r["lam_v"]),
                   decay=float(r["decay"]))
        for r in (chosen_rows[c] for c in cells)
    ]  # fmt: skip
    trainer = engine.Trainer(
        runs, ds.idx, ds.nnz, ds.y, n_features=ds.n_features, train_rows=train, val_rows=val, test_rows=test,
        k=config.k, init_std=config.init_std,
    )  # fmt: skip
    last = max(int(chosen_rows[c]["epoch"]) for c in cells)
    preds: dict = {}
    for e in range(1, last + 1):
        rec = trainer.epoch()
        for r, c in enumerate(cells):
            if int(chosen_rows[c]["epoch"]) == e:
                if rec["val_loss"][r] != float(chosen_rows[c]["val_loss"]):
                    raise ResultsError(
                        f"retraining {c} gave validation loss {rec['val_loss'][r]!r} at epoch {e}, the results "
                        f"file holds {chosen_rows[c]['val_loss']!r}: the file is not this engine's run"
                    )
                w0, w, V = trainer.params(r)
                preds[c] = _sigmoid(_scores(w0, w, V, ds, test))
    return preds


def _fit_peers(config, fold, ds, rows3) -> tuple[list[dict], np.ndarray, np.ndarray, str]:
    """Logistic regression (C on validation) and the Bayesian FM; (peer rows, p_lr, p_bfm, C)."""
    from .peers import fit_bayesian_fm, fit_logistic, one_hot_matrix

    train, val, test = rows3
    X = {s: one_hot_matrix(ds.idx, ds.nnz, ds.n_features, r) for s, r in zip(("train", "val", "test"), rows3)}
    y01 = {s: (ds.y[r] > 0).astype(np.int64) for s, r in zip(("train", "val", "test"), rows3)}
    out, best = [], None
    for C in config.lr_C:
        t0 = time.perf_counter()
        predict = fit_logistic(X["train"], y01["train"], C, config.lr_max_iter)
        fit_s = round(time.perf_counter() - t0, 3)
        for split in ("val", "test"):
            p = predict(X[split])
            out.append({"fold": fold, "model": METHOD_LABELS["lr"], "setting": f"C={C:g}", "split": split,
                        "n": len(p), "log_loss": log_loss(y01[split], p), "auc": roc_auc(y01[split], p),
                        "fit_s": fit_s})  # fmt: skip
            if split == "val" and (best is None or out[-1]["log_loss"] < best[0]):
                best = (out[-1]["log_loss"], C, predict)
    assert best is not None
    p_lr = best[2](X["test"])
    t0 = time.perf_counter()
    predict = fit_bayesian_fm(
        X["train"], y01["train"], config.bfm_rank, config.bfm_seed, config.bfm_iter, config.bfm_kept
    )
    fit_s = round(time.perf_counter() - t0, 3)
    p_bfm = None
    for split in ("val", "test"):
        p = predict(X[split])
        out.append({"fold": fold, "model": METHOD_LABELS["bfm"], "setting": f"rank={config.bfm_rank}", "split": split,
                    "n": len(p), "log_loss": log_loss(y01[split], p), "auc": roc_auc(y01[split], p),
                    "fit_s": fit_s})  # fmt: skip
        p_bfm = p
    return out, p_lr, np.asarray(p_bfm), f"C={best[1]:g}"


def _summarise_fold(config, fold, ds, rows3, run_rows, chosen) -> tuple[list[dict], list[dict]]:
    train, val, test = rows3
    y_test = ds.y[test]
    peer_rows, p_lr, p_bfm, lr_setting = _fit_peers(config, fold, ds, rows3)
    cells = {c: r for c, r in chosen.items() if c[0] == fold}
    preds = _retrain_chosen(config, fold, cells, ds, rows3)
    ll_lr = _row_losses(y_test, p_lr)
    seed_rows: dict[tuple, list[float]] = {}
    mark = config.epochs - config.epochs // 10  # the epoch before the last tenth of the budget
    val_at_mark: dict[tuple, float] = {}
    for row in run_rows:
        if int(row["fold"]) != fold:
            continue
        cell = (fold, row["method"], int(row["penalised"]))
        pick = cells.get(cell)
        if pick is None:
            continue
        same = all(float(row[c]) == float(pick[c]) for c in ("lam_w", "lam_v", "eta", "decay"))
        if same and int(row["seed"]) == 0 and row["stage"] == pick["stage"] and int(row["epoch"]) == mark:
            val_at_mark[cell] = float(row["val_loss"])
        if int(row["epoch"]) != int(pick["epoch"]):
            continue
        if same and (int(row["seed"]) == 0 and row["stage"] == pick["stage"] or row["stage"] == "seeds"):
            seed_rows.setdefault(cell, []).append(float(row["test_loss"]))
    out = []
    boot_seed = [config.boot_seed, fold]
    budget = config.epochs
    for (f, method, pen), pick in sorted(cells.items(), key=lambda kv: (FM_METHODS.index(kv[0][1]), kv[0][2])):
        p = preds[(f, method, pen)]
        diff, lo, hi = paired_bootstrap(_row_losses(y_test, p), ll_lr, config.n_boot, boot_seed)
        seeds = seed_rows.get((f, method, pen), [])
        out.append({
            "method": method, "penalised": pen, "fold": fold, "lam_w": float(pick["lam_w"]),
            "lam_v": float(pick["lam_v"]), "eta": float(pick["eta"]), "decay": float(pick["decay"]),
            "epoch": int(pick["epoch"]), "stage": pick["stage"], "val_log_loss": float(pick["val_loss"]),
            "test_log_loss": log_loss(y_test, p), "test_auc": roc_auc(y_test, p), "diff_vs_lr": diff,
            "diff_lo": lo, "diff_hi": hi, "epoch_budget": budget,
            "epoch_in_last_tenth": int(int(pick["epoch"]) > budget - max(1, budget // 10)),
            "seeds": len(seeds), "seed_test_min": min(seeds) if seeds else math.nan,
            "seed_test_max": max(seeds) if seeds else math.nan, "n_test": len(test),
            "val_gain_last_tenth": val_at_mark.get((f, method, pen), math.nan) - float(pick["val_loss"]),
        })  # fmt: skip
    val_lr = [r for r in peer_rows if r["model"] == METHOD_LABELS["lr"] and r["setting"] == lr_setting]
    val_bfm = [r for r in peer_rows if r["model"] == METHOD_LABELS["bfm"]]
    for label, p, setting_rows in (("lr", p_lr, val_lr), ("bfm", p_bfm, val_bfm)):
        diff, lo, hi = paired_bootstrap(_row_losses(y_test, p), ll_lr, config.n_boot, boot_seed)
        val_ll = next(r["log_loss"] for r in setting_rows if r["split"] == "val")
        out.append({
            "method": METHOD_LABELS[label], "penalised": int(label == "lr"), "fold": fold, "lam_w": math.nan,
            "lam_v": math.nan, "eta": math.nan, "decay": math.nan, "epoch": 0, "stage": setting_rows[0]["setting"],
            "val_log_loss": val_ll, "test_log_loss": log_loss(y_test, p), "test_auc": roc_auc(y_test, p),
            "diff_vs_lr": diff, "diff_lo": lo, "diff_hi": hi, "epoch_budget": 0, "epoch_in_last_tenth": 0,
            "seeds": 1, "seed_test_min": math.nan, "seed_test_max": math.nan, "n_test": len(test),
            "val_gain_last_tenth": math.nan,
        })  # fmt: skip
    return out, peer_rows


def across_folds(summary: list[dict]) -> list[dict]:
    """Per (method, penalised): means over the folds, the t interval of the mean difference against
    logistic regression, and the counts of folds below zero (point estimate, interval)."""
    groups: dict[tuple, list[dict]] = {}
    for row in summary:
        groups.setdefault((row["method"], int(row["penalised"])), []).append(row)
    out = []
    for (method, pen), rows in groups.items():
        diff, lo, hi = fold_interval([r["diff_vs_lr"] for r in rows])
        out.append({
            "method": method, "penalised": pen, "folds": len(rows),
            "mean_test_log_loss": float(np.mean([r["test_log_loss"] for r in rows])),
            "mean_test_auc": float(np.mean([r["test_auc"] for r in rows])), "mean_diff_vs_lr": diff,
            "diff_lo": lo, "diff_hi": hi, "folds_below_zero": sum(r["diff_vs_lr"] < 0 for r in rows),
            "folds_interval_below_zero": sum(r["diff_hi"] < 0 for r in rows),
            "epochs_in_last_tenth": sum(int(r["epoch_in_last_tenth"]) for r in rows),
            "max_val_gain_last_tenth": float(np.max([r["val_gain_last_tenth"] for r in rows])),
        })  # fmt: skip
    return out


# --------------------------------------------------------------------------- driver


def run_regularised(name: str, out="results", *, data_root=None, threads=None, log=None) -> dict:
    """Run or resume the five-fold preset ``name``; returns the provenance dict (``NAME.json``)."""
    from .. import engine

    config = PRESETS[name]
    engine.set_threads(threads)
    out = check_output_folder(out)  # a bad --out is refused before any work
    out.mkdir(parents=True, exist_ok=True)
    say = log or (lambda msg: None)
    paths = {s: out / f"{name}{s}.csv" for s in ("", "-peers", "-summary", "-folds")}
    json_path = out / f"{name}.json"
    with results_file.exclusive(out, name):
        results_file.remove_stale_temporaries(out, name, (*(p.name for p in paths.values()), json_path.name))
        prov: dict[str, Any] = results_file.read_provenance(json_path, name) or {"preset": name, "sessions": []}
        meaning = {k: v for k, v in _jsonable(asdict(config)).items() if k in _ROW_MEANING}
        old = {k: v for k, v in (prov.get("config") or meaning).items() if k in _ROW_MEANING}
        if old != meaning:
            raise ResultsError(f"{json_path} holds runs of another set-up of {name} ({old}); pass another --out folder")
        prov.update({
            "config": _jsonable(asdict(config)), "description": config.description,
            "seeds": "run seed s: init SeedSequence([s, 0]), epoch e shuffle SeedSequence([s, 1, e]); validation "
                     "part default_rng([val_seed, fold]); bootstrap default_rng([boot_seed, fold]); myFM bfm_seed",
            "columns": {"runs": RUN_COLUMNS, "summary": SUMMARY_COLUMNS, "folds": FOLD_COLUMNS, "peers": PEER_COLUMNS},
        })  # fmt: skip
        session = _provenance_session(engine.set_threads(threads))
        prov["sessions"].append(session)
        start = time.perf_counter()

        def save():
            session["wall_s"] = round(time.perf_counter() - start, 3)
            prov["wall_s_total"] = round(sum(s.get("wall_s", 0.0) for s in prov["sessions"]), 3)
            _write_json(json_path, prov)

        for p in paths.values():
            _complete_prefix(p)
        run_rows = load_csv(paths[""], RUN_COLUMNS) if paths[""].exists() else []
        done = _finished(run_rows, config.epochs)
        dropped = _keep_rows(paths[""], RUN_COLUMNS, lambda r: _key(r) in done)  # a run cut off mid-write
        if dropped:
            say(f"set aside {dropped} rows of a run cut off by an interruption; it is trained again")
            session["set_aside_rows"] = dropped
        summarised = (
            {int(r["fold"]) for r in load_csv(paths["-summary"], SUMMARY_COLUMNS)}
            if paths["-summary"].exists()
            else set()
        )
        _keep_rows(paths["-peers"], PEER_COLUMNS, lambda r: int(r["fold"]) in summarised)
        ds = _load(data_root)
        fold_rows3 = {f: _fold_data(config, f, ds) for f in config.folds}
        added = 0
        for fold in config.folds:  # stage 1: the coarse grid, one engine call per method
            for method in FM_METHODS:
                settings = [s for s in _coarse_settings(config) if s[0] == method]
                n = _train_chunk(config, "coarse", fold, settings, (0,), ds, fold_rows3[fold], threads,
                                 paths[""], done, name)  # fmt: skip
                added += n
                if n:
                    say(f"fold {fold} {method}: coarse, {n} runs")
                    save()
        run_rows = load_csv(paths[""], RUN_COLUMNS)
        coarse = choose([r for r in run_rows if r["stage"] == "coarse"])
        for fold in config.folds:  # stage 2: refine the penalties around the coarse choice
            settings = _refine_settings(config, coarse, fold)
            n = _train_chunk(config, "refine", fold, settings, (0,), ds, fold_rows3[fold], threads, paths[""], done,
                             name)  # fmt: skip
            added += n
            if n:
                say(f"fold {fold}: refine, {n} runs")
                save()
        run_rows = load_csv(paths[""], RUN_COLUMNS)
        chosen = choose(run_rows)
        for fold in config.folds:  # stage 3: the final choices with more seeds
            settings = sorted({
                (c[1], c[2], float(r["lam_w"]), float(r["lam_v"]), float(r["eta"]), float(r["decay"]))
                for c, r in chosen.items() if c[0] == fold
            })  # fmt: skip
            n = _train_chunk(config, "seeds", fold, settings, config.seeds, ds, fold_rows3[fold], threads, paths[""],
                             done, name)  # fmt: skip
            added += n
            if n:
                say(f"fold {fold}: seeds, {n} runs")
                save()
        run_rows = load_csv(paths[""], RUN_COLUMNS)
        summary = load_csv(paths["-summary"], SUMMARY_COLUMNS) if paths["-summary"].exists() else []
        summarised = {int(r["fold"]) for r in summary}
        for fold in config.folds:  # stage 4: peers, retraining, paired intervals, fold by fold
            if fold in summarised:
                continue
            rows, peer_rows = _summarise_fold(config, fold, ds, fold_rows3[fold], run_rows, chosen)
            _append(paths["-peers"], peer_rows, PEER_COLUMNS)
            _append(paths["-summary"], rows, SUMMARY_COLUMNS)
            summary += rows
            say(f"fold {fold}: summary written")
            save()
        results_file.atomic_write(paths["-folds"], _text(across_folds(summary), FOLD_COLUMNS, True))
        session["runs_added"] = added
        session["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        prov["runs_complete"] = len(_finished(run_rows, config.epochs))
        save()
    return prov


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))


def feature_groups(ds) -> np.ndarray:
    """The group number (index into ``GROUPS``) of every feature, from its name's prefix."""
    prefixes = [name.split("=", 1)[0] for name in ds.feature_names]
    return np.array([GROUPS.index(p) for p in prefixes], dtype=np.int64)


def run_mechanism(name: str, out="results", *, data_root=None, threads=None, log=None) -> dict:
    """The latent norms per feature group over epochs (``MechanismConfig``): ``NAME.csv`` + ``NAME.json``."""
    from .. import engine

    config = PRESETS[name]
    engine.set_threads(threads)
    out = check_output_folder(out)  # a bad --out is refused before any work
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / f"{name}.csv", out / f"{name}.json"
    with results_file.exclusive(out, name):
        results_file.remove_stale_temporaries(out, name)
        start = time.perf_counter()
        prov = {"preset": name, "description": config.description, "config": _jsonable(asdict(config)),
                "seeds": "init SeedSequence([seed, 0]), epoch e shuffle SeedSequence([seed, 1, e])",
                "columns": MECHANISM_COLUMNS, "sessions": [_provenance_session(1)]}  # fmt: skip
        ds = _load(data_root)
        from .folds import fold_rows

        train, val, _ = fold_rows(ds, config.fold)
        if config.subset is not None:
            train, val = train[: config.subset], val[: config.subset // 6]
        groups = feature_groups(ds)
        runs = [
            engine.Run(m, eta, config.seed, lam_w=lw, lam_v=lv)
            for m in config.methods for eta in config.etas for lw, lv in config.penalties
        ]  # fmt: skip
        trainer = engine.Trainer(runs, ds.idx, ds.nnz, ds.y, n_features=ds.n_features, train_rows=train,
                                 val_rows=val, k=config.k, allow_beyond_bound=False)  # fmt: skip
        seen = np.zeros(ds.n_features, dtype=bool)
        seen[ds.idx[train][ds.idx[train] >= 0]] = True
        rows = []
        for e in range(1, config.epochs + 1):
            rec = trainer.epoch()
            for r, run in enumerate(runs):
                _, _, V = trainer.params(r)
                sq = (V * V).sum(1)
                for g, group in enumerate(GROUPS):
                    mask = (groups == g) & seen
                    rms = float(np.sqrt(sq[mask].mean())) if mask.any() else math.nan
                    rows.append({"preset": name, "fold": config.fold, "method": run.method, "eta": run.eta,
                                 "lam_w": run.lam_w, "lam_v": run.lam_v, "seed": run.seed, "epoch": e,
                                 "group": group, "rows": int(mask.sum()), "v_rms": rms,
                                 "val_loss": float(rec["val_loss"][r])})  # fmt: skip
            if log:
                log(f"epoch {e}")
        results_file.atomic_write(csv_path, _text(rows, MECHANISM_COLUMNS, True))
        prov["sessions"][0]["wall_s"] = round(time.perf_counter() - start, 3)
        prov["sessions"][0]["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        prov["wall_s_total"] = prov["sessions"][0]["wall_s"]
        _write_json(json_path, prov)
    return prov


def run(name: str, out="results", *, data_root=None, threads=None, log=None) -> dict:
    """Run the regularisation preset ``name`` (five folds or mechanism)."""
    if name not in PRESETS:
        raise FMInputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    if isinstance(PRESETS[name], MechanismConfig):
        return run_mechanism(name, out, data_root=data_root, threads=threads, log=log)
    return run_regularised(name, out, data_root=data_root, threads=threads, log=log)
