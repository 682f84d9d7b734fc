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

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..movielens.penalty import TOY_D, TOY_ETA, TOY_K, TOY_Z, factor_rows, folds_rows, mechanism_rows, toy_rows
from ..registry import figure, save_png, write_csv

# --------------------------------------------------------------------------- reading results


# --------------------------------------------------------------------------- the toy


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
        "Five folds: with a per-touch penalty, SGD, prox and Adagrad beat logistic regression; "
        "the Bayesian FM is best\n"
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
