"""Chapter 09's pieces (regularised proximal point): the toy of section 4 and readers of the
committed regularised results.

* :func:`toy_rows`: a block of d touched latent rows stepped by the implicit map S_λ(z)⁻¹ and by the
  explicit (gradient) map under random labels with a fixed dual weight z;
  :func:`factor_rows`: the one-dimensional factors 1/(1 + ηh) and 1 − ηh.
* :func:`read_rows`, :func:`across`, :func:`versus`, :func:`folds_rows`, :func:`grid_edges`: the five-fold
  comparison (``results/regularised-summary.csv``, ``results/regularised-folds.csv``,
  ``results/regularised.csv``); :func:`mechanism_rows`, :func:`mechanism_at`: the latent norms per
  feature group (``results/regularised-mechanism.csv``).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from .regularised import fold_interval

RESULTS = Path(__file__).resolve().parents[2] / "results"
SUMMARY = RESULTS / "regularised-summary.csv"
FOLDS = RESULTS / "regularised-folds.csv"
MECHANISM = RESULTS / "regularised-mechanism.csv"

# the toy of section 3: one block of d touched rows, k latent columns, fixed dual weight z
TOY_D, TOY_K, TOY_Z, TOY_ETA, TOY_TOUCHES, TOY_SEED = 11, 3, 0.25, 0.05, 600, 0


def _float(text: str) -> float:
    return float("nan") if text in ("", "nan") else float(text)


def read_rows(path: Path) -> list[dict]:
    """CSV rows with numeric fields converted (ints stay ints where they look like ints)."""
    out = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            conv: dict = {}
            for key, value in row.items():
                try:
                    conv[key] = int(value)
                except ValueError:
                    try:
                        conv[key] = _float(value)
                    except ValueError:
                        conv[key] = value
            out.append(conv)
    return out


def fold_table(summary: list[dict]) -> list[dict]:
    """Per (method, penalised, fold): test log-loss, the paired difference against logistic
    regression and its bootstrap interval, the chosen settings and epoch."""
    keep = ("method", "penalised", "fold", "lam_w", "lam_v", "eta", "decay", "epoch", "epoch_budget")
    rows = []
    for r in summary:
        row = {k: r[k] for k in keep}
        row.update(test_log_loss=r["test_log_loss"], diff=r["diff_vs_lr"], lo=r["diff_lo"], hi=r["diff_hi"])
        rows.append(row)
    return rows


def label(method: str, penalised: int) -> str:
    if method in ("logistic regression", "bayesian fm"):
        return {"logistic regression": "logistic regression", "bayesian fm": "Bayesian FM"}[method]
    return f"{method} + L2" if penalised else method


def across(summary: list[dict], method: str, penalised: int, column: str = "diff_vs_lr") -> tuple[float, float, float]:
    """Mean over the five folds of ``column`` and its 95 % t interval."""
    sel = sorted((r for r in summary if r["method"] == method and r["penalised"] == penalised), key=lambda r: r["fold"])
    values = [r[column] for r in sel]
    return fold_interval(values)


def versus(summary: list[dict], a: tuple[str, int], b: tuple[str, int]) -> tuple[float, float, float]:
    """Mean over folds of test log-loss(a) − test log-loss(b) and its 95 % t interval (paired by fold)."""

    def by_fold(key):
        return {r["fold"]: r["test_log_loss"] for r in summary if (r["method"], r["penalised"]) == key}

    fa, fb = by_fold(a), by_fold(b)
    return fold_interval([fa[f] - fb[f] for f in sorted(fa)])


def toy_rows(touches: int = TOY_TOUCHES, seed: int = TOY_SEED) -> list[dict]:
    """RMS of a d × k block after each touch, for four update rules and one random label sequence.

    Every touch draws y = ±1 with equal probability and sets β = η y z (z fixed): the implicit step
    solves S_λ V = V_t with S_λ = (a + β)I − β11ᵀ, a = 1 + ηλ_v; the explicit (gradient) step is
    V ← V + β(11ᵀ − I)V − ηλ_v V.
    """
    rng = np.random.default_rng(seed)
    d, k, z, eta = TOY_D, TOY_K, TOY_Z, TOY_ETA
    V0 = rng.normal(0.0, 0.1, size=(d, k))
    labels = rng.choice([-1.0, 1.0], size=touches)
    x = (d - 1) * eta * z
    threshold = (math.sqrt(1 + x * x) - 1) / eta
    rules = [
        ("implicit, λ_v = 0", "implicit", 0.0),
        ("explicit, λ_v = 0", "explicit", 0.0),
        (f"implicit, λ_v = {threshold / 3:.3f} (⅓ of threshold)", "implicit", threshold / 3),
        (f"implicit, λ_v = {2 * threshold:.3f} (2 × threshold)", "implicit", 2 * threshold),
    ]
    J = np.ones((d, d))
    rows = []
    for name, kind, lam in rules:
        V = V0.copy()
        a = 1 + eta * lam
        rows.append({"rule": name, "touch": 0, "rms": float(np.sqrt((V**2).mean())), "threshold": threshold})
        for t, y in enumerate(labels, start=1):
            beta = eta * y * z
            if kind == "implicit":
                V = np.linalg.solve((a + beta) * np.eye(d) - beta * J, V)
            else:
                V = V + beta * (J - np.eye(d)) @ V - eta * lam * V
            rows.append({"rule": name, "touch": t, "rms": float(np.sqrt((V**2).mean())), "threshold": threshold})
    return rows


def factor_rows(points: int = 201) -> list[dict]:
    """Per-step factor along a direction of curvature h of the loss: implicit 1/(1 + ηh), explicit 1 − ηh."""
    out = []
    for x in np.linspace(-0.8, 3.0, points):
        out.append({"eta_h": float(x), "implicit": float(1 / (1 + x)), "explicit": float(1 - x)})
    return out


def mechanism_rows(path: Path = MECHANISM) -> list[dict]:
    """RMS latent norm per (method, η, λ_w, λ_v, group, epoch), from the committed results."""
    return [
        {k: r[k] for k in ("method", "eta", "lam_w", "lam_v", "group", "epoch", "rows", "v_rms", "val_loss")}
        for r in read_rows(path)
    ]


def mechanism_at(rows: list[dict], method: str, eta: float, lam_v: float, group: str, epoch: int) -> float:
    (value,) = [
        r["v_rms"]
        for r in rows
        if r["method"] == method
        and r["eta"] == eta
        and r["lam_v"] == lam_v
        and r["group"] == group
        and r["epoch"] == epoch
    ]
    return value


FOLD_METHODS = [
    ("sgd", 0),
    ("prox", 0),
    ("adagrad", 0),
    ("sgd", 1),
    ("prox", 1),
    ("adagrad", 1),
    ("bayesian fm", 0),
]


def folds_rows(summary_path: Path = SUMMARY) -> list[dict]:
    summary = read_rows(summary_path)
    rows = []
    for method, pen in FOLD_METHODS:
        for r in sorted(
            (r for r in summary if r["method"] == method and r["penalised"] == pen), key=lambda r: r["fold"]
        ):
            rows.append(
                {
                    "method": label(method, pen),
                    "fold": r["fold"],
                    "diff": r["diff_vs_lr"],
                    "lo": r["diff_lo"],
                    "hi": r["diff_hi"],
                }
            )
        mean, lo, hi = across(summary, method, pen)
        rows.append({"method": label(method, pen), "fold": "mean", "diff": mean, "lo": lo, "hi": hi})
    return rows


def grid_edges(method: str, penalised: int, runs_path: Path = RESULTS / "regularised.csv") -> list[dict]:
    """Per fold: the chosen η and λ_v (committed summary) against the smallest and largest tried (all runs)."""
    tried: dict[int, tuple[set, set]] = {}
    with open(runs_path, newline="") as fh:
        for r in csv.DictReader(fh):
            if r["method"] == method and int(r["penalised"]) == penalised:
                etas, lams = tried.setdefault(int(r["fold"]), (set(), set()))
                etas.add(float(r["eta"]))
                lams.add(float(r["lam_v"]))
    out = []
    for r in sorted(read_rows(SUMMARY), key=lambda r: r["fold"]):
        if r["method"] == method and r["penalised"] == penalised:
            etas, lams = tried[r["fold"]]
            out.append(
                {
                    "fold": r["fold"],
                    "eta": r["eta"],
                    "eta_tried": (min(etas), max(etas)),
                    "lam_v": r["lam_v"],
                    "lam_v_tried": (min(lams), max(lams)),
                    "eta_at_edge": r["eta"] in (min(etas), max(etas)),
                    "lam_v_at_edge": r["lam_v"] in (min(lams), max(lams)),
                }
            )
    return out
