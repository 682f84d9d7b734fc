"""Figures and demos of chapter 09 (regularised proximal point).

``09_toy``: the conceptual picture. Left: the factor by which one step multiplies a direction
of curvature h, implicit 1/(1 + ηh) against explicit 1 − ηh; right: a d = 11, k = 3 block of
latent rows touched by samples of random label with a fixed dual weight z, under the implicit
step (with and without a per-touch penalty) and the explicit step.

``09_mechanism``: the RMS latent norm of the gender and occupation rows over ten epochs on
MovieLens (committed results): the exact step, its first-order truncation and SGD, and the
exact step with a penalty.

``09_folds``: the five-fold comparison against logistic regression: per fold the paired
difference in test log-loss with its bootstrap interval over test rows, and the across-fold
mean with its t interval (committed results).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..movielens.regularised import fold_interval
from ..registry import figure, save_png, write_csv

RESULTS = Path(__file__).resolve().parents[2] / "results"
SUMMARY = RESULTS / "regularised-summary.csv"
FOLDS = RESULTS / "regularised-folds.csv"
MECHANISM = RESULTS / "regularised-mechanism.csv"

# the toy of section 3: one block of d touched rows, k latent columns, fixed dual weight z
TOY_D, TOY_K, TOY_Z, TOY_ETA, TOY_TOUCHES, TOY_SEED = 11, 3, 0.25, 0.05, 600, 0


# --------------------------------------------------------------------------- reading results


def _float(text: str) -> float:
    return float("nan") if text in ("", "nan") else float(text)


def read_rows(path: Path) -> list[dict]:
    """CSV rows with numeric fields converted (ints stay ints where they look like ints)."""
    import csv

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


# --------------------------------------------------------------------------- the toy


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


def plot_toy(factors: list[dict], rows: list[dict]) -> Figure:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11.5, 4.2))
    x = np.array([r["eta_h"] for r in factors])
    ax1.plot(x, [r["implicit"] for r in factors], color="C0", label="implicit step: 1/(1 + ηh)")
    ax1.plot(x, [r["explicit"] for r in factors], color="C3", label="explicit step: 1 − ηh")
    ax1.axhspan(-1, 1, color="0.9", zorder=0)
    ax1.axvline(0, color="0.4", lw=0.8)
    ax1.axhline(1, color="0.4", lw=0.8, ls=":")
    ax1.set_ylim(-2.2, 5.2)
    ax1.set_xlabel("ηh (step size × curvature of the loss along the direction)")
    ax1.set_ylabel("factor per step (shaded: |factor| < 1, shrinks)")
    ax1.text(-0.75, 4.6, "h < 0: implicit\namplifies more", fontsize=9, va="top")
    ax1.text(1.2, 4.6, "h > 0: implicit always\nshrinks; explicit\nflips past ηh = 2", fontsize=9, va="top")
    ax1.legend(loc="lower left", fontsize=9)
    ax1.set_title("One step along a direction of curvature h", fontsize=10)
    for i, name in enumerate(dict.fromkeys(r["rule"] for r in rows)):
        sel = [r for r in rows if r["rule"] == name]
        ax2.plot([r["touch"] for r in sel], [r["rms"] for r in sel], color=f"C{[0, 3, 1, 2][i]}", label=name)
    ax2.set_yscale("log")
    ax2.set_xlabel(f"touches (labels ±1 at random; d = {TOY_D}, k = {TOY_K}, z = {TOY_Z}, η = {TOY_ETA})")
    ax2.set_ylabel("RMS of the touched latent rows (log scale)")
    ax2.legend(fontsize=8, loc="upper left")
    ax2.grid(True, alpha=0.3, which="both")
    ax2.set_title("Random labels: implicit grows, explicit shrinks; a penalty stops it", fontsize=10)
    fig.suptitle("An implicit step damps convex directions but amplifies the FM's indefinite ones", fontsize=11)
    fig.tight_layout()
    return fig


@figure("09_toy")
def toy_figure(out_dir: Path) -> list[Path]:
    factors, rows = factor_rows(), toy_rows()
    blank = {"eta_h": "", "implicit": "", "explicit": "", "rule": "", "touch": "", "rms": "", "threshold": ""}
    csv_rows = [{"panel": "factor", **blank, **r} for r in factors] + [{"panel": "toy", **blank, **r} for r in rows]
    return [
        write_csv(out_dir / "09_toy.csv", csv_rows),
        save_png(plot_toy(factors, rows), out_dir / "09_toy.png"),
    ]


# --------------------------------------------------------------------------- the MovieLens mechanism


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


def plot_mechanism(rows: list[dict], eta: float = 0.01) -> Figure:
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.2), sharey=True)
    curves = [
        ("prox", 0.0, "C0", "-", "exact prox"),
        ("prox-linearised", 0.0, "C1", "--", "prox, first-order S⁻¹"),
        ("sgd", 0.0, "C3", "-", "SGD"),
        ("prox", 0.03, "C2", "-", "exact prox, λ_v = 0.03"),
        ("prox", 0.1, "C4", "-", "exact prox, λ_v = 0.1"),
    ]
    for ax, group in zip(axes, ("gender", "occupation")):
        for method, lam_v, color, ls, name in curves:
            sel = sorted(
                (
                    r
                    for r in rows
                    if r["method"] == method and r["eta"] == eta and r["lam_v"] == lam_v and r["group"] == group
                ),
                key=lambda r: r["epoch"],
            )
            ax.plot(
                [r["epoch"] for r in sel], [r["v_rms"] for r in sel], color=color, ls=ls, marker="o", ms=3, label=name
            )
        n_rows = next(r["rows"] for r in rows if r["group"] == group)
        ax.set_title(f"{group} rows ({n_rows} features)", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3, which="both")
    axes[0].set_ylabel("RMS latent norm (log scale)")
    axes[1].legend(fontsize=8, loc="upper left")
    fig.suptitle(
        f"MovieLens, η = {eta}: only the exact step inflates the rows every sample touches; a penalty stops it",
        fontsize=11,
    )
    fig.tight_layout()
    return fig


@figure("09_mechanism")
def mechanism_figure(out_dir: Path) -> list[Path]:
    rows = mechanism_rows()
    return [
        write_csv(out_dir / "09_mechanism.csv", rows),
        save_png(plot_mechanism(rows), out_dir / "09_mechanism.png"),
    ]


# --------------------------------------------------------------------------- the five folds

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


def plot_folds(rows: list[dict]) -> Figure:
    fig, ax = plt.subplots(figsize=(9.5, 4.6))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for i, m in enumerate(methods):
        sel = [r for r in rows if r["method"] == m]
        per_fold = [r for r in sel if r["fold"] != "mean"]
        (mean,) = [r for r in sel if r["fold"] == "mean"]
        color = "C2" if m == "Bayesian FM" else ("C0" if "L2" in m else "0.5")
        for j, r in enumerate(per_fold):
            y = i - 0.3 + 0.1 * j
            ax.plot([r["lo"], r["hi"]], [y, y], color=color, lw=1, alpha=0.7)
            ax.plot(r["diff"], y, "o", color=color, ms=3)
        ax.plot([mean["lo"], mean["hi"]], [i + 0.25, i + 0.25], color=color, lw=3)
        ax.plot(mean["diff"], i + 0.25, "D", color=color, ms=6)
    ax.axvline(0, color="k", lw=1)
    ax.text(0.0002, len(methods) - 0.45, "logistic regression", fontsize=8, va="bottom")
    ax.set_yticks(range(len(methods)), methods)
    ax.invert_yaxis()
    ax.set_xlabel("test log-loss minus logistic regression's (negative: better than the linear model)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(
        "Five folds: with a per-touch penalty the FMs beat logistic regression; the Bayesian FM is best\n"
        "(thin: folds 1–5 with 95 % bootstrap interval over test rows; thick: mean with 95 % t interval over folds)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


@figure("09_folds")
def folds_figure(out_dir: Path) -> list[Path]:
    rows = folds_rows()
    return [
        write_csv(out_dir / "09_folds.csv", rows),
        save_png(plot_folds(rows), out_dir / "09_folds.png"),
    ]


def grid_edges(method: str, penalised: int, runs_path: Path = RESULTS / "regularised.csv") -> list[dict]:
    """Per fold: the chosen η and λ_v (committed summary) against the smallest and largest tried (all runs)."""
    import csv

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
