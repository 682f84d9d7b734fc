"""Reading and summarising the MovieLens results files (chapter 06).

Everything here reads ``results/<preset>.csv`` (written by ``python -m fmedu experiment``) and
never trains; the chapter's figures (:mod:`fmedu.figures.nb06`) are drawn from these summaries.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import ResultsError
from .experiments import load_results

__all__ = [
    "RESULTS",
    "PUBLISHED_PROX",
    "PUBLISHED_ADAM",
    "PUBLISHED_PROX_W0",
    "PUBLISHED_ADAM_W0",
    "results",
    "curves",
    "prediction_parts",
    "reproduction_table",
    "best_per_run",
    "stability_summary",
    "long_table",
    "chosen_on_validation",
]

RESULTS = Path(__file__).resolve().parents[2] / "results"

# The blog's printed 10-epoch training losses (its prox trainer and torch Adam, default settings).
PUBLISHED_PROX = (0.4695, 0.4362, 0.427, 0.4224, 0.4194, 0.4173, 0.4167, 0.4155, 0.4145, 0.4146)
PUBLISHED_ADAM = (0.4655, 0.4596, 0.4655, 0.471, 0.4744, 0.4747, 0.4777, 0.4793, 0.4802, 0.4824)
# ... and the global bias w0 it printed after each epoch
PUBLISHED_PROX_W0 = (-1.148, -1.468, -1.294, -1.254, -1.419, -1.301, -1.368, -1.467, -1.605, -1.365)
PUBLISHED_ADAM_W0 = (0.539, 1.586, 2.668, 3.805, 5.116, 6.48, 7.992, 9.433, 11.15, 12.72)


def results(preset: str, folder: Path | None = None) -> list[dict]:
    """Rows of ``results/<preset>.csv``; a clear error if the file was never produced."""
    path = Path(folder or RESULTS) / f"{preset}.csv"
    if not path.exists():
        raise ResultsError(f"{path} is missing: run `python -m fmedu experiment {preset}` first")
    return load_results(path)


def curves(rows: list[dict], variant: str, method: str, column: str = "train_loss") -> np.ndarray:
    """``(attempts, epochs)`` array of ``column`` for one variant and method (first step size)."""
    sel = [r for r in rows if r["variant"] == variant and r["method"] == method]
    attempts = sorted({r["attempt"] for r in sel})
    epochs = max(r["epoch"] for r in sel)
    out = np.full((len(attempts), epochs), np.nan)
    for r in sel:
        out[attempts.index(r["attempt"]), r["epoch"] - 1] = r[column]
    return out


def prediction_parts(idx, nnz, y, w0, w, V, rows) -> list[dict]:
    """Per label: mean linear part w0 + Σ w_i and mean / sd of the pairwise part ½(‖Σv_i‖² − Σ‖v_i‖²).

    Notebook 06 uses it to show where the exact step's predictions go wrong."""
    out = []
    for label in (1.0, -1.0):
        sel = np.asarray(rows)[y[rows] == label]
        I = idx[sel]  # (S, m) padded with -1
        present = (I >= 0)[..., None]
        Vg = np.where(present, V[np.where(I >= 0, I, 0)], 0.0)  # (S, m, k)
        s = Vg.sum(1)
        pair = 0.5 * ((s * s).sum(1) - (Vg * Vg).sum((1, 2)))
        lin = w0 + np.where(I >= 0, w[np.where(I >= 0, I, 0)], 0.0).sum(1)
        out.append(
            {
                "y": int(label),
                "samples": len(sel),
                "linear_mean": float(lin.mean()),
                "pairwise_mean": float(pair.mean()),
                "pairwise_sd": float(pair.std()),
            }
        )
    return out


def reproduction_table(rows: list[dict]) -> list[dict]:
    """Per epoch: the published losses and our published-mode means (prox and Adam), differences."""
    prox = curves(rows, "published", "prox-published").mean(0)
    adam = curves(rows, "published", "adam").mean(0)
    out = []
    for e, (pp, pa) in enumerate(zip(PUBLISHED_PROX, PUBLISHED_ADAM)):
        out.append(
            {
                "epoch": e + 1,
                "published_prox": pp,
                "ours_prox": float(prox[e]),
                "diff_prox": float(prox[e] - pp),
                "published_adam": pa,
                "ours_adam": float(adam[e]),
                "diff_adam": float(adam[e] - pa),
            }
        )
    return out


def best_per_run(rows: list[dict], column: str = "train_loss") -> dict:
    """(variant, method, eta) → array over attempts of the best (smallest) epoch value of ``column``.

    A run whose losses became non-finite counts as +inf (it never recovered)."""
    runs: dict[tuple, dict[int, float]] = {}
    for r in rows:
        key = (r["variant"], r["method"], r["eta"])
        v = r[column]
        v = math.inf if not math.isfinite(v) else v
        att = runs.setdefault(key, {})
        att[r["attempt"]] = min(att.get(r["attempt"], math.inf), v)
    return {key: np.array([att[a] for a in sorted(att)]) for key, att in runs.items()}


def stability_summary(rows: list[dict], column: str = "train_loss") -> list[dict]:
    """Rows ``variant, method, eta, attempts, mean, sd, lo, hi`` of the best loss per run.

    Band: mean ± 2 standard errors over attempts (about a 95 % interval for the mean)."""
    out = []
    for (variant, method, eta), vals in sorted(best_per_run(rows, column).items()):
        finite = vals[np.isfinite(vals)]
        n = len(vals)
        mean = float(vals.mean()) if len(finite) == n else math.inf
        sd = float(vals.std(ddof=1)) if n > 1 and len(finite) == n else 0.0
        se = sd / math.sqrt(n) if n else 0.0
        out.append(
            {
                "variant": variant,
                "method": method,
                "eta": eta,
                "column": column,
                "attempts": n,
                "mean": mean,
                "sd": sd,
                "lo": mean - 2 * se,
                "hi": mean + 2 * se,
            }
        )
    return out


def long_table(rows: list[dict]) -> list[dict]:
    """Mean over attempts of training, validation and test loss per (η, epoch)."""
    table = []
    for eta in sorted({r["eta"] for r in rows}):
        sel = [r for r in rows if r["eta"] == eta]
        for column in ("train_loss", "val_loss", "test_loss"):
            for e in sorted({r["epoch"] for r in sel}):
                vals = [r[column] for r in sel if r["epoch"] == e]
                table.append({"eta": eta, "column": column, "epoch": e, "mean": float(np.mean(vals))})
    return table


def chosen_on_validation(rows: list[dict]) -> list[dict]:
    """Per (variant, method): the step size and epoch chosen on the validation split, and the
    test loss of that choice (chapter 06's held-out comparison).

    The choice minimises the mean validation loss over attempts among the (η, epoch) pairs
    whose runs all stayed finite; the test split played no part in it. Rows ``variant,
    method, eta, epoch, attempts, val_mean, test_mean, test_sd, test_lo, test_hi`` (band:
    mean ± 2 standard errors over attempts). Variants without held-out rows are skipped.
    """
    groups: dict[tuple, dict[tuple, list[dict]]] = {}
    for r in rows:
        if r["n_val"] > 0 and r["n_test"] > 0:
            groups.setdefault((r["variant"], r["method"]), {}).setdefault((r["eta"], r["epoch"]), []).append(r)
    out = []
    for (variant, method), cells in sorted(groups.items()):
        best = None
        for (eta, epoch), sel in cells.items():
            val = np.array([r["val_loss"] for r in sel])
            if len(val) and np.all(np.isfinite(val)) and (best is None or val.mean() < best[0]):
                best = (float(val.mean()), eta, epoch, sel)
        if best is None:
            continue
        val_mean, eta, epoch, sel = best
        test = np.array([r["test_loss"] for r in sel])
        sd = float(test.std(ddof=1)) if len(test) > 1 else 0.0
        se = sd / math.sqrt(len(test))
        out.append(
            {
                "variant": variant,
                "method": method,
                "eta": eta,
                "epoch": epoch,
                "attempts": len(sel),
                "val_mean": val_mean,
                "test_mean": float(test.mean()),
                "test_sd": sd,
                "test_lo": float(test.mean()) - 2 * se,
                "test_hi": float(test.mean()) + 2 * se,
            }
        )
    return out
