"""Figures and summaries of notebook 06 (MovieLens 100k), drawn only from the results files.

Every function here reads ``results/<preset>.csv`` (written by ``python -m fmedu experiment``)
and never trains: ``make figures`` regenerates the figures from the committed results.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..movielens.analysis import (
    PUBLISHED_ADAM,
    PUBLISHED_PROX,
    curves,
    long_table,
    results,
    stability_summary,
)
from ..registry import figure, save_png, write_csv

COLORS = {"prox": "C3", "prox-published": "C1", "sgd": "C0", "adagrad": "C2", "adam": "C4"}
LABELS = {
    "prox": "prox (exact step)",
    "prox-published": "prox as published (V frozen, E3)",
    "sgd": "SGD",
    "adagrad": "Adagrad",
    "adam": "Adam",
}


def _plot_stability(ax, summary, title, methods=None, ymax=None):
    for method in [m for m in COLORS if methods is None or m in methods]:
        sel = sorted((s for s in summary if s["method"] == method), key=lambda s: s["eta"])
        if not sel:
            continue
        eta = [s["eta"] for s in sel]
        mean = np.array([s["mean"] for s in sel])
        ax.plot(
            eta, mean, marker="o", ms=3, color=COLORS[method], label=f"{LABELS[method]} ({sel[0]['attempts']} attempts)"
        )
        ax.fill_between(eta, [s["lo"] for s in sel], [s["hi"] for s in sel], color=COLORS[method], alpha=0.25)
    ax.set_xscale("log")
    ax.set_xlabel("step size η")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if ymax is not None:
        ax.set_ylim(top=ymax)


def plot_published(rows: list[dict]) -> Figure:
    """Left: published mode against the blog's printed curves. Right: the corrected runs."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ep = np.arange(1, 11)
    ax = axes[0]
    for method, pub, label in (("prox-published", PUBLISHED_PROX, "prox"), ("adam", PUBLISHED_ADAM, "Adam")):
        c = curves(rows, "published", method)
        ax.plot(ep, pub, "k--" if method == "adam" else "k:", label=f"blog, {label}")
        ax.plot(ep, c.mean(0), color=COLORS[method], marker="o", ms=3, label=f"ours as published, {label}")
        ax.fill_between(ep, c.min(0), c.max(0), color=COLORS[method], alpha=0.25)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean training loss (before each update)")
    ax.set_title("Published set-up (E3, E4): reproduced", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    ax = axes[1]
    for method in ("prox", "adam"):
        for column, style in (("train_loss", "-"), ("val_loss", "--")):
            c = curves(rows, "corrected", method, column)
            ax.plot(
                ep,
                c.mean(0),
                style,
                color=COLORS[method],
                marker="o",
                ms=3,
                label=f"{LABELS[method]}, {'training' if column == 'train_loss' else 'validation'}",
            )
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_title("Corrected (correct join, V trained, η = 1/23 for prox)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_latent_norms(rows: list[dict]) -> Figure:
    """RMS latent-row norm after each epoch: frozen (published), exact prox at η = 1/23, Adam."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for variant, method in (("published", "prox-published"), ("corrected", "prox"), ("corrected", "adam")):
        c = curves(rows, variant, method, "v_rms")
        ax.plot(
            np.arange(0, c.shape[1] + 1),
            np.r_[0.01 * math.sqrt(20), c.mean(0)],
            marker="o",
            ms=3,
            color=COLORS[method],
            label=LABELS[method],
        )
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("RMS of ‖v_i‖ over the 2,728 features")
    ax.set_title("Latent vectors: frozen, exploding, growing", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def _summary_rows(summary):
    return [
        {k: s[k] for k in ("variant", "method", "eta", "column", "attempts", "mean", "sd", "lo", "hi")} for s in summary
    ]


@figure("06_published_curves")
def published_curves(out_dir: Path) -> list[Path]:
    rows = results("published-10epoch")
    table = []
    for variant in ("published", "corrected"):
        for method in sorted({r["method"] for r in rows if r["variant"] == variant}):
            for column in ("train_loss", "val_loss", "v_rms", "w0"):
                c = curves(rows, variant, method, column)
                for e in range(c.shape[1]):
                    table.append(
                        {
                            "variant": variant,
                            "method": method,
                            "column": column,
                            "epoch": e + 1,
                            "mean": float(np.mean(c[:, e])),
                            "min": float(np.min(c[:, e])),
                            "max": float(np.max(c[:, e])),
                        }
                    )
    for e in range(10):
        for method, pub in (("blog-prox", PUBLISHED_PROX), ("blog-adam", PUBLISHED_ADAM)):
            table.append(
                {
                    "variant": "blog",
                    "method": method,
                    "column": "train_loss",
                    "epoch": e + 1,
                    "mean": pub[e],
                    "min": pub[e],
                    "max": pub[e],
                }
            )
    return [
        write_csv(out_dir / "06_published_curves.csv", table),
        save_png(plot_published(rows), out_dir / "06_published_curves.png"),
    ]


@figure("06_latent_norms")
def latent_norms(out_dir: Path) -> list[Path]:
    rows = results("published-10epoch")
    table = [
        {
            "variant": r["variant"],
            "method": r["method"],
            "attempt": r["attempt"],
            "epoch": r["epoch"],
            "v_rms": r["v_rms"],
        }
        for r in rows
    ]
    return [
        write_csv(out_dir / "06_latent_norms.csv", table),
        save_png(plot_latent_norms(rows), out_dir / "06_latent_norms.png"),
    ]


def plot_stability_published(rows: list[dict]) -> Figure:
    """Best training loss per (method, η) on the published subset; right panel without Adam."""
    summary = stability_summary(rows, "train_loss")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    _plot_stability(axes[0], summary, "First 1,000 ratings, 10 epochs: every method")
    _plot_stability(axes[1], summary, "the same without Adam", methods=("prox", "prox-published", "sgd", "adagrad"))
    for ax in axes:
        ax.set_ylabel("best training loss (mean ± 2 s.e.)")
    axes[0].legend(fontsize=7)
    _clip(axes[0], summary)
    _clip(axes[1], [s for s in summary if s["method"] != "adam"])
    fig.tight_layout()
    return fig


def plot_stability_full(rows: list[dict]) -> Figure:
    """Best training and validation loss per (method, η) on all ratings."""
    train = stability_summary(rows, "train_loss")
    val = stability_summary(rows, "val_loss")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    _plot_stability(axes[0], train, "All ratings, 20 epochs: training loss")
    _plot_stability(axes[1], val, "held-out validation loss (10 %)")
    axes[0].set_ylabel("best loss over epochs (mean ± 2 s.e.)")
    axes[0].legend(fontsize=7)
    _clip(axes[0], train + val)
    fig.tight_layout()
    return fig


def plot_long(rows: list[dict]) -> Figure:
    """Exact prox for 50 epochs: mean training and validation loss per epoch, one line per η."""
    table = long_table(rows)
    etas = sorted({t["eta"] for t in table})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    cmap = plt.get_cmap("viridis")
    for i, eta in enumerate(etas):
        for ax, column in zip(axes, ("train_loss", "val_loss")):
            sel = [t for t in table if t["eta"] == eta and t["column"] == column]
            ax.plot(
                [t["epoch"] for t in sel],
                [t["mean"] for t in sel],
                color=cmap(i / max(len(etas) - 1, 1)),
                label=f"η = {eta:.2g}",
            )
    axes[0].set_ylabel("mean loss over attempts")
    for ax, title in zip(axes, ("exact prox, 50 epochs: training loss", "validation loss")):
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def _clip(ax, summary, margin=0.05):
    vals = [s["hi"] for s in summary if math.isfinite(s["hi"])]
    lows = [s["lo"] for s in summary if math.isfinite(s["lo"])]
    if vals:
        top = min(max(vals), 1.5)
        ax.set_ylim(min(lows) - margin * (top - min(lows)), top)


@figure("06_stability_published")
def stability_published(out_dir: Path) -> list[Path]:
    rows = results("stability-published")
    return [
        write_csv(out_dir / "06_stability_published.csv", _summary_rows(stability_summary(rows, "train_loss"))),
        save_png(plot_stability_published(rows), out_dir / "06_stability_published.png"),
    ]


@figure("06_stability_full")
def stability_full(out_dir: Path) -> list[Path]:
    rows = results("stability-full")
    summary = stability_summary(rows, "train_loss") + stability_summary(rows, "val_loss")
    return [
        write_csv(out_dir / "06_stability_full.csv", _summary_rows(summary)),
        save_png(plot_stability_full(rows), out_dir / "06_stability_full.png"),
    ]


@figure("06_long")
def long_run(out_dir: Path) -> list[Path]:
    rows = results("long")
    return [write_csv(out_dir / "06_long.csv", long_table(rows)), save_png(plot_long(rows), out_dir / "06_long.png")]
