"""Reading and summarising the MovieLens results files (chapter 07).

Everything here reads ``results/<preset>.csv`` (written by ``python -m fmedu experiment``) and
never trains; the chapter's figures (:mod:`fmedu.figures.nb07`) are drawn from these summaries.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import FMInputError, ResultsError
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
    "held_out",
    "peer_split",
    "run_choices",
    "selection_summary",
    "choose_step_size",
    "selection_table",
    "spread_over_eta",
    "load_peers",
    "peer_results",
    "peer_summary",
    "peer_refits",
    "provenance_table",
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


def long_table(rows: list[dict], columns=None) -> list[dict]:
    """Mean over attempts of each of ``columns`` per (η, epoch); by default the training,
    validation and (where the results have one) test loss."""
    if columns is None:
        columns = (
            ("train_loss", "val_loss", "test_loss") if rows and "test_loss" in rows[0] else ("train_loss", "val_loss")
        )
    table = []
    for eta in sorted({r["eta"] for r in rows}):
        sel = [r for r in rows if r["eta"] == eta]
        for column in columns:
            for e in sorted({r["epoch"] for r in sel}):
                vals = [r[column] for r in sel if r["epoch"] == e]
                table.append({"eta": eta, "column": column, "epoch": e, "mean": float(np.mean(vals))})
    return table


# --------------------------------------------------------------------------- choosing on validation


def held_out(rows: list[dict]) -> tuple[str, str]:
    """``(choose, report)`` columns: choose on the validation rows, report the test rows.

    Results files written before the experiments had a test split have no ``test_loss``; for
    those the report column is ``val_loss`` too (the optimistic same-rows report), so that
    callers can say which one they show."""
    has_test = any("test_loss" in r and math.isfinite(r["test_loss"]) for r in rows)
    return "val_loss", ("test_loss" if has_test else "val_loss")


def peer_split(rows: list[dict]) -> str:
    """The split the peer results are reported on: ``"test"``, or ``"validation"`` for results
    written before the experiments had a test split."""
    return "test" if any(r["split"] == "test" for r in rows) else "validation"


def run_choices(rows: list[dict], choose: str = "val_loss", report: str = "test_loss") -> dict:
    """(variant, method, eta) → per-attempt choices: the epoch with the smallest ``choose`` value
    (early stopping on the validation rows) and the ``choose``, ``report`` and training loss there.

    A run whose ``choose`` value is never finite is given epoch 0 and +inf everywhere."""
    runs: dict[tuple, dict[int, dict]] = {}
    for r in rows:
        key = (r["variant"], r["method"], r["eta"])
        v = r[choose] if math.isfinite(r[choose]) else math.inf
        best = runs.setdefault(key, {}).get(r["attempt"])
        if best is None or v < best["choose"]:
            runs[key][r["attempt"]] = {
                "attempt": r["attempt"],
                "epoch": r["epoch"] if math.isfinite(v) else 0,
                "choose": v,
                "report": r[report] if math.isfinite(v) and math.isfinite(r[report]) else math.inf,
                "train": r["train_loss"] if math.isfinite(v) else math.inf,
            }
    return {key: [att[a] for a in sorted(att)] for key, att in runs.items()}


def _mean_band(vals: np.ndarray) -> tuple[float, float, float, float]:
    """mean, sd and mean ± 2 standard errors over attempts (+inf if any value is infinite)."""
    n = len(vals)
    if not np.all(np.isfinite(vals)):
        return math.inf, 0.0, math.inf, math.inf
    mean = float(vals.mean())
    sd = float(vals.std(ddof=1)) if n > 1 else 0.0
    se = sd / math.sqrt(n)
    return mean, sd, mean - 2 * se, mean + 2 * se


def selection_summary(rows: list[dict], choose: str = "val_loss", report: str = "test_loss") -> list[dict]:
    """Per (variant, method, eta): each attempt stopped at its best ``choose`` epoch; the mean of
    ``choose`` there (what the step size is chosen by), and the mean, sd and ±2 s.e. band of
    ``report`` there (what is reported), plus the median chosen epoch."""
    out = []
    for (variant, method, eta), picks in sorted(run_choices(rows, choose, report).items()):
        chosen = np.array([p["choose"] for p in picks])
        reported = np.array([p["report"] for p in picks])
        mean, sd, lo, hi = _mean_band(reported)
        out.append(
            {
                "variant": variant,
                "method": method,
                "eta": eta,
                "attempts": len(picks),
                "choose": choose,
                "choose_mean": float(chosen.mean()) if np.all(np.isfinite(chosen)) else math.inf,
                "report": report,
                "mean": mean,
                "sd": sd,
                "lo": lo,
                "hi": hi,
                "train_mean": float(np.mean([p["train"] for p in picks])),
                "epoch_median": float(np.median([p["epoch"] for p in picks])),
            }
        )
    return out


def choose_step_size(summary: list[dict], method: str) -> dict:
    """The summary row of ``method`` whose step size has the smallest mean ``choose`` value."""
    sel = [s for s in summary if s["method"] == method]
    if not sel:
        raise ResultsError(f"no runs of method {method!r} in the summary")
    return min(sel, key=lambda s: s["choose_mean"])


def selection_table(rows: list[dict], choose: str = "val_loss", report: str = "test_loss") -> list[dict]:
    """One row per method: the step size and epochs chosen on ``choose``, and ``report`` there."""
    summary = selection_summary(rows, choose, report)
    methods = [m for m in METHOD_ORDER if any(s["method"] == m for s in summary)]
    return [choose_step_size(summary, m) for m in methods]


def spread_over_eta(summary: list[dict], method: str, key: str = "mean") -> float:
    """max − min over the step sizes of ``key`` (how much the choice of η matters for ``method``)."""
    vals = [s[key] for s in summary if s["method"] == method]
    return max(vals) - min(vals)


def stable_width(etas, losses, tol: float = 0.005) -> tuple[float, bool]:
    """Width in decades, log10(η_hi / η_lo), of the step sizes whose loss is within ``tol`` of the
    smallest loss, and whether that set reaches an end of the grid (then the width is a lower
    bound). Non-finite losses count as outside. Unlike max − min of the loss over the grid, it
    does not grow with how far the grid reaches into divergence or into too-small steps."""
    e = np.asarray(etas, dtype=np.float64)
    v = np.asarray(losses, dtype=np.float64)
    if e.ndim != 1 or e.shape != v.shape or e.size == 0 or np.any(e <= 0):
        raise FMInputError(f"need matching 1-D arrays of positive step sizes and losses, got {e.shape}, {v.shape}")
    if not np.any(np.isfinite(v)):
        raise FMInputError("no finite loss: the width is undefined")
    order = np.argsort(e)
    e, v = e[order], v[order]
    inside = np.isfinite(v) & (v <= np.nanmin(np.where(np.isfinite(v), v, np.nan)) + tol)
    lo, hi = np.flatnonzero(inside)[[0, -1]]
    return float(np.log10(e[hi] / e[lo])), bool(lo == 0 or hi == len(e) - 1)


METHOD_ORDER = ("prox", "prox-published", "sgd", "adagrad", "adam")


# --------------------------------------------------------------------------- peers and provenance


def load_peers(path) -> list[dict]:
    """Rows of a ``peers.csv`` (written by ``python -m fmedu peers``) with numbers converted."""
    import csv

    path = Path(path)
    if not path.exists():
        raise ResultsError(f"{path} is missing: run `python -m fmedu peers` first (needs the 'peers' extra)")
    out = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            row = dict(row)
            row["seed"], row["n"] = int(row["seed"]), int(row["n"])
            for c in ("log_loss", "auc", "fit_s"):
                row[c] = float(row[c])
            out.append(row)
    return out


def peer_results(folder: Path | None = None) -> list[dict]:
    """Rows of ``results/peers.csv`` (written by ``python -m fmedu peers``)."""
    return load_peers(Path(folder or RESULTS) / "peers.csv")


def peer_refits(folder: Path | None = None) -> list[dict]:
    """The refits of the blog's methods recorded in ``results/peers.json`` (method, step size,
    attempt, epoch, the sweep's validation loss and the refit's, and whether they are equal)."""
    import json

    path = Path(folder or RESULTS) / "peers.json"
    if not path.exists():
        raise ResultsError(f"{path} is missing: run `python -m fmedu peers` first (needs the 'peers' extra)")
    return json.loads(path.read_text()).get("blog_refits", [])


def peer_summary(rows: list[dict], split: str = "test") -> list[dict]:
    """Per (model, setting): seeds, mean and sd over seeds of log-loss and AUC on ``split``."""
    keys = list(dict.fromkeys((r["model"], r["setting"]) for r in rows if r["split"] == split))
    if not keys:
        raise ResultsError(f"the peer results have no {split!r} rows")
    out = []
    for model, setting in keys:
        sel = [r for r in rows if r["split"] == split and (r["model"], r["setting"]) == (model, setting)]
        ll = np.array([r["log_loss"] for r in sel])
        auc = np.array([r["auc"] for r in sel])
        out.append(
            {
                "model": model,
                "setting": setting,
                "split": split,
                "seeds": len(sel),
                "n": sel[0]["n"],
                "log_loss": float(ll.mean()),
                "log_loss_sd": float(ll.std(ddof=1)) if len(sel) > 1 else 0.0,
                "auc": float(auc.mean()),
                "auc_sd": float(auc.std(ddof=1)) if len(sel) > 1 else 0.0,
                "fit_s": float(np.mean([r["fit_s"] for r in sel])),
            }
        )
    return out


def provenance_table(
    names=("published-10epoch", "stability-published", "stability-full", "long", "peers"),
) -> list[dict]:
    """One line per results file: runs (or fits), total wall time, device and the code's commit."""
    import json

    out = []
    for name in names:
        path = RESULTS / f"{name}.json"
        if not path.exists():
            raise ResultsError(
                f"{path} is missing: run `python -m fmedu {'peers' if name == 'peers' else 'experiment ' + name}`"
            )
        prov = json.loads(path.read_text())
        if name == "peers":
            sessions = [prov]
            runs = len(prov["fits"])
        else:
            sessions = [s for s in prov["sessions"] if s["runs_added"]]
            runs = len({(r["variant"], r["method"], r["eta_index"], r["attempt"]) for r in results(name)})
        devices = sorted({f"{s['device']['backend']} ({s['device']['threads']} threads)" for s in sessions})
        commits = sorted({(s["git"]["commit"] or "?")[:7] for s in sessions})
        out.append(
            {
                "results": name,
                "runs": runs,
                "wall_s": round(sum(s["wall_s"] for s in sessions), 1),
                "device": ", ".join(devices),
                "commits": ", ".join(commits),
            }
        )
    return out
