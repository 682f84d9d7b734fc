"""What practitioners would use instead: a linear baseline and a Bayesian FM (chapter 07).

``python -m fmedu peers`` fits, on exactly the training rows and features of the
``stability-full`` experiment (correct join, the same fixed seeded split), and scores on its
validation and test rows:

* the base rate (predict the training share of 5-star ratings for everyone);
* logistic regression (scikit-learn, L2-regularised, lbfgs) for a grid of C, C = 1 being the
  library's default;
* a Bayesian FM fitted by Gibbs sampling (myFM), rank 20, and rank 0 (a Bayesian linear
  model), several seeds; its hierarchical priors choose the regularisation, so nothing is
  tuned on the validation rows;
* the blog's methods again, for their AUC: each method of the ``stability-full`` results
  retrained with the engine at the step size chosen on the validation rows, for the first
  attempts, each stopped at its own chosen epoch (the results files hold losses only). Their
  validation loss must equal the results file's for the same attempt and epoch, which checks
  that the refit is the run the sweep recorded.

It writes ``results/peers.csv`` (one row per model, setting, seed and split: ``n``,
``log_loss``, ``auc``) and ``results/peers.json`` (configuration, seeds, package versions,
device, git commit, wall times). Chapter 07 only reads these files.

The fits need the optional extra ``peers`` (``pip install -e '.[peers]'``); reading the
results does not.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FMInputError, ResultsError
from ..paths import output_folder
from .analysis import load_peers
from .metrics import log_loss, roc_auc
from .results_file import atomic_write

__all__ = [
    "PeerConfig",
    "COLUMNS",
    "SPLIT_PRESET",
    "one_hot_matrix",
    "experiment_split",
    "fit_logistic",
    "fit_bayesian_fm",
    "run_peers",
    "load_peers",
]

SPLIT_PRESET = "stability-full"  # the experiment whose split and features the peers use
COLUMNS = ["model", "setting", "seed", "split", "n", "log_loss", "auc", "fit_s"]


@dataclass(frozen=True)
class PeerConfig:
    """What ``run_peers`` fits. ``lr_C``: the logistic-regression grid (C = 1 is the default);
    ``fm_ranks`` / ``fm_seeds`` / ``fm_iter`` / ``fm_kept``: myFM's rank, seeds, Gibbs
    iterations and samples kept for prediction (the first ``fm_iter − fm_kept`` are burn-in)."""

    lr_C: tuple = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
    lr_max_iter: int = 2000
    fm_ranks: tuple = (0, 20)
    fm_seeds: tuple = (0, 1, 2)
    fm_iter: int = 200
    fm_kept: int = 150
    blog_attempts: tuple = (0, 1, 2)  # attempts of the blog's methods refitted for their AUC
    subset: int | None = None  # first ``subset`` rows of each split only (tests)


def one_hot_matrix(idx: np.ndarray, nnz: np.ndarray, n_features: int, rows=None):
    """The padded index rows ``idx[rows]`` as a scipy CSR matrix of 0/1 features (the same
    features the engine trains on: one column per feature, a 1 at each of the row's indices)."""
    from scipy import sparse

    rows = np.arange(len(idx)) if rows is None else np.asarray(rows)
    I = np.asarray(idx)[rows]
    present = I >= 0
    if not np.array_equal(present.sum(1), np.asarray(nnz)[rows]):
        raise FMInputError("nnz does not match the non-padding entries of idx")
    r = np.repeat(np.arange(len(rows)), present.sum(1))
    return sparse.csr_matrix((np.ones(int(present.sum())), (r, I[present])), shape=(len(rows), n_features))


def experiment_split(root=None) -> tuple[dict, dict]:
    """The data and the split of the ``SPLIT_PRESET`` experiment.

    Returns ``(data, splits)``: ``data`` has ``idx, nnz, y, n_features``; ``splits`` maps
    ``"train"``, ``"validation"`` (and ``"test"`` where the experiment has one) to row indices."""
    from .experiments import PRESETS, _load_variant

    (variant,) = PRESETS[SPLIT_PRESET].variants
    idx, nnz, y, n_features, *rows = _load_variant(variant, root)
    names = ("train", "validation", "test")[: len(rows)]
    splits = {name: np.asarray(r) for name, r in zip(names, rows) if len(r)}
    return {"idx": idx, "nnz": nnz, "y": y, "n_features": n_features}, splits


def fit_logistic(X, y01, C: float, max_iter: int = 2000):
    """scikit-learn's L2-regularised logistic regression (lbfgs); returns p(x) for a matrix."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, max_iter=max_iter)
    model.fit(X, y01)
    if model.n_iter_[0] >= max_iter:
        raise ResultsError(f"logistic regression (C={C}) did not converge in {max_iter} iterations")
    return lambda Z: model.predict_proba(Z)[:, 1]


def _import_myfm():
    with warnings.catch_warnings():  # myFM imports pkg_resources, which warns that it is deprecated
        warnings.simplefilter("ignore")
        import myfm
    return myfm


def fit_bayesian_fm(X, y01, rank: int, seed: int, n_iter: int = 200, n_kept: int = 150, progress: bool = False):
    """myFM's Gibbs-sampling FM classifier (probit link); returns p(x), the posterior-mean
    probability over the ``n_kept`` last samples."""
    import contextlib
    import functools
    from unittest import mock

    from tqdm import tqdm

    myfm = _import_myfm()
    model = myfm.MyFMClassifier(rank=rank, random_seed=seed)
    # myFM always draws a progress bar; silence it unless asked for
    quiet = (
        mock.patch.object(sys.modules["myfm.base"], "tqdm", functools.partial(tqdm, disable=True))
        if not progress
        else contextlib.nullcontext()
    )
    with quiet:
        model.fit(X, y01, n_iter=n_iter, n_kept_samples=n_kept)
    return lambda Z: model.predict_proba(Z)


def blog_method_choices(results_rows: list[dict], attempts) -> list[dict]:
    """Per method of a ``stability-full`` results file: the step size chosen on validation and,
    for each of ``attempts``, the epoch it stops at and its recorded validation loss there."""
    from .analysis import held_out, run_choices, selection_table

    choose, report = held_out(results_rows)
    picks = run_choices(results_rows, choose, report)
    out = []
    for s in selection_table(results_rows, choose, report):
        for p in picks[(s["variant"], s["method"], s["eta"])]:
            if p["attempt"] in attempts:
                out.append({"method": s["method"], "eta": s["eta"], **p})
    return out


def refit_blog_method(data: dict, splits: dict, method: str, eta: float, attempt: int, epochs: int, k: int = 20):
    """Train one run of the sweep again (same method, step size and seed) for ``epochs`` epochs
    on the training rows; returns p(rows) and the validation loss the engine records."""
    import torch

    from .. import engine
    from ..model import predict_sparse

    trainer = engine.Trainer(
        [engine.Run(method, eta, attempt)],
        data["idx"],
        data["nnz"],
        data["y"],
        n_features=data["n_features"],
        train_rows=splits["train"],
        val_rows=splits["validation"],
        k=k,
    )
    for _ in range(epochs):
        record = trainer.epoch()
    w0, w, V = (torch.as_tensor(t, dtype=torch.float64) for t in trainer.params(0))

    def predict(rows):
        score = predict_sparse(torch.from_numpy(data["idx"][rows]), w0, w, V)
        return torch.sigmoid(score).numpy()

    return predict, float(record["val_loss"][0])


def _versions() -> dict:
    import scipy

    from .experiments import _versions as engine_versions

    out = engine_versions()
    out["scipy"] = scipy.__version__
    try:
        import sklearn

        out["scikit-learn"] = sklearn.__version__
    except ImportError:
        out["scikit-learn"] = None
    try:
        out["myfm"] = _import_myfm().__version__
    except ImportError:
        out["myfm"] = None
    return out


def _score(model, setting, seed, predict, X, fit_s) -> list[dict]:
    rows = []
    for split, (Xs, ys) in X.items():
        p = predict(Xs)
        rows.append(
            {
                "model": model,
                "setting": setting,
                "seed": seed,
                "split": split,
                "n": len(ys),
                "log_loss": log_loss(ys, p),
                "auc": roc_auc(ys, p),
                "fit_s": round(fit_s, 3),
            }
        )
    return rows


def _csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: (repr(row[c]) if isinstance(row[c], float) else row[c]) for c in COLUMNS})
    return buf.getvalue()


def check_dependencies() -> None:
    """scikit-learn and myFM (the ``peers`` extra) are importable; else FMInputError with the install
    command. Called before anything is read or written."""
    missing = []
    try:
        import sklearn  # noqa: F401
    except ImportError:
        missing.append("scikit-learn")
    try:
        _import_myfm()
    except ImportError:
        missing.append("myfm")
    if missing:
        raise FMInputError(
            f"the peer models need {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
            "installed; nothing was written. Install the optional extra: pip install -e '.[peers]'"
        )


def run_peers(out="results", config: PeerConfig | None = None, data_root=None, progress: bool | None = None) -> dict:
    """Fit every peer model of ``config`` and write ``out/peers.csv`` and ``out/peers.json``.

    The optional dependencies and ``out`` are checked before any work. Both files are written
    once, at the end, each by an atomic replacement: a failed or interrupted run leaves existing
    results as they were and no partial files (a re-run starts over: the whole run takes a few
    minutes)."""

    config = config or PeerConfig()
    if progress is None:
        progress = not os.environ.get("CI") and sys.stderr.isatty()
    check_dependencies()
    with output_folder(out) as folder:
        return _run_peers(folder, config, data_root, progress)


def _run_peers(out: Path, config: PeerConfig, data_root, progress: bool) -> dict:
    from .experiments import _device, _git_commit

    csv_path, json_path = out / "peers.csv", out / "peers.json"
    data, splits = experiment_split(data_root)
    if config.subset is not None:
        splits = {name: rows[: config.subset] for name, rows in splits.items()}
    X = {
        name: (one_hot_matrix(data["idx"], data["nnz"], data["n_features"], rows), (data["y"][rows] > 0).astype(int))
        for name, rows in splits.items()
    }
    rows_of = {name: (rows, X[name][1]) for name, rows in splits.items()}
    X_train, y_train = X["train"]
    prov: dict[str, Any] = {
        "preset": "peers",
        "description": "base rate, logistic regression (scikit-learn) and Bayesian FM (myFM, Gibbs sampling) "
        f"on the split and features of the {SPLIT_PRESET} experiment",
        "split_preset": SPLIT_PRESET,
        "split_sizes": {name: len(rows) for name, rows in splits.items()},
        "config": asdict(config),
        "seeds": "logistic regression is deterministic (lbfgs); myFM uses random_seed = seed",
        "columns": COLUMNS,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": _git_commit(),
        "versions": _versions(),
        "device": _device("cpu"),
        "command_line": " ".join(sys.argv),
        "fits": [],
        "blog_refits": [],
    }
    rows: list[dict] = []
    start = time.perf_counter()

    def record(model, setting, seed, fit):
        t0 = time.perf_counter()
        predict = fit()
        fit_s = time.perf_counter() - t0
        rows.extend(_score(model, setting, seed, predict, X, fit_s))
        prov["fits"].append({"model": model, "setting": setting, "seed": seed, "fit_s": round(fit_s, 3)})
        prov["wall_s"] = round(time.perf_counter() - start, 3)
        if progress:
            print(f"[peers] {model} {setting} seed {seed}: {fit_s:.1f} s", file=sys.stderr, flush=True)

    rate = float(y_train.mean())
    record("base rate", f"p={rate:.4f}", 0, lambda: lambda Z: np.full(Z.shape[0], rate))
    for C in config.lr_C:
        record("logistic regression", f"C={C:g}", 0, lambda: fit_logistic(X_train, y_train, C, config.lr_max_iter))
    for rank in config.fm_ranks:
        for seed in config.fm_seeds:
            record(
                "Bayesian FM (myFM)",
                f"rank={rank}",
                seed,
                lambda: fit_bayesian_fm(X_train, y_train, rank, seed, config.fm_iter, config.fm_kept, progress),
            )
    if config.blog_attempts and config.subset is None:
        from .analysis import results

        sweep = results(SPLIT_PRESET, out if (out / f"{SPLIT_PRESET}.csv").exists() else None)
        for c in blog_method_choices(sweep, config.blog_attempts):
            t0 = time.perf_counter()
            predict, val_loss = refit_blog_method(data, splits, c["method"], c["eta"], c["attempt"], c["epoch"])
            fit_s = time.perf_counter() - t0
            setting = f"eta={c['eta']:.6g}, epoch={c['epoch']}"
            for split, (split_rows, ys) in rows_of.items():
                p = predict(split_rows)
                rows.append(
                    {
                        "model": f"blog: {c['method']}",
                        "setting": setting,
                        "seed": c["attempt"],
                        "split": split,
                        "n": len(ys),
                        "log_loss": log_loss(ys, p),
                        "auc": roc_auc(ys, p),
                        "fit_s": round(fit_s, 3),
                    }
                )
            prov["blog_refits"].append(
                {**c, "refit_val_loss": val_loss, "matches_results": abs(val_loss - c["choose"]) <= 1e-9}
            )
            prov["wall_s"] = round(time.perf_counter() - start, 3)
            if progress:
                print(f"[peers] blog {c['method']} attempt {c['attempt']}: {fit_s:.1f} s", file=sys.stderr, flush=True)
    prov["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    prov["wall_s"] = round(time.perf_counter() - start, 3)
    atomic_write(csv_path, _csv_text(rows))  # complete results only, each file replaced at once
    atomic_write(json_path, json.dumps(prov, indent=1) + "\n")
    return prov
