"""Figures of chapter 07 (MovieLens 100k, the published experiment), drawn only from the committed results files.

Every function here reads ``results/<preset>.csv`` (written by ``python -m fmedu experiment``)
or ``results/peers.csv`` (``python -m fmedu peers``) through :mod:`fmedu.movielens.analysis`
and never trains: ``make figures`` regenerates every figure from the committed results. The
summaries the chapter prints come from the same functions, so a figure and the chapter's
numbers cannot disagree.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

from ..movielens.analysis import (
    METHOD_ORDER,
    PUBLISHED_ADAM,
    PUBLISHED_PROX,
    curves,
    held_out,
    long_table,
    peer_results,
    peer_split,
    results,
    selection_summary,
    stability_summary,
)
from ..registry import figure, save_png, write_csv

COLORS = {"prox": "C3", "prox-published": "C1", "sgd": "C0", "adagrad": "C2", "adam": "C4"}
LABELS = {
    "prox": "prox, exact step",
    "prox-published": "prox as published (V frozen)",
    "sgd": "SGD",
    "adagrad": "Adagrad",
    "adam": "Adam",
}
OFFSCALE = "above the axis"


def _offscale(ax, x, y, top, color):
    """Draw ``y`` clipped at ``top``; a ▲ at the top edge marks every point above it."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    over = ~(y <= top)
    ax.plot(x, np.where(over, top, y), color=color, marker="o", ms=3)
    if over.any():
        ax.plot(x[over], np.full(over.sum(), top), ls="none", marker="^", ms=8, color=color, clip_on=False)
    return bool(over.any())


def _method_lines(ax, summary, key_lo="lo", key_hi="hi", top=None):
    """One line per method over η, with its ±2 s.e. band; returns whether anything was clipped."""
    clipped = False
    for method in METHOD_ORDER:
        sel = sorted((s for s in summary if s["method"] == method), key=lambda s: s["eta"])
        if not sel:
            continue
        eta = [s["eta"] for s in sel]
        mean = np.array([s["mean"] for s in sel])
        if top is None:
            ax.plot(eta, mean, color=COLORS[method], marker="o", ms=3)
        else:
            clipped |= _offscale(ax, eta, mean, top, COLORS[method])
        lo = np.array([s[key_lo] for s in sel])
        hi = np.array([s[key_hi] for s in sel])
        if top is not None:
            lo, hi = np.minimum(lo, top), np.minimum(hi, top)
        ax.fill_between(eta, lo, hi, color=COLORS[method], alpha=0.25, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("step size η (log scale)")
    ax.grid(True, which="both", alpha=0.3)
    return clipped


def _legend_below(fig, methods, clipped=False, extra=()):
    handles = [plt.Line2D([], [], color=COLORS[m], marker="o", ms=3, label=LABELS[m]) for m in methods]
    handles += list(extra)
    if clipped:
        handles.append(plt.Line2D([], [], ls="none", marker="^", ms=8, color="0.3", label=OFFSCALE))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=8, frameon=False)


# --------------------------------------------------------------------------- published 10 epochs


def plot_published(rows: list[dict], base_rate_loss: float):
    """Left: the published set-up against the blog's printed curves. Right: the exact step and
    Adam on the correct join, training and held-out test loss, with the base rate's loss."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.4))
    ep = np.arange(1, 11)
    ax = axes[0]
    for method, pub, label in (("prox-published", PUBLISHED_PROX, "prox"), ("adam", PUBLISHED_ADAM, "Adam")):
        c = curves(rows, "published", method)
        ax.plot(ep, pub, "k--" if method == "adam" else "k:", label=f"blog's printed curve, {label}")
        ax.plot(ep, c.mean(0), color=COLORS[method], marker="o", ms=3, label=f"ours, published set-up, {label}")
        ax.fill_between(ep, c.min(0), c.max(0), color=COLORS[method], alpha=0.25, lw=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean training loss over the epoch")
    ax.set_title("Published set-up: the blog's curves reproduced", fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    ax.set_ylim(0.405, 0.50)
    ax.grid(True, alpha=0.3)
    ax = axes[1]
    report = held_out(rows)[1]
    for method in ("prox", "adam"):
        for column, style, word in (("train_loss", "-", "training"), (report, "--", report.split("_")[0])):
            c = curves(rows, "corrected", method, column)
            ax.plot(ep, c.mean(0), style, color=COLORS[method], marker="o", ms=3, label=f"{LABELS[method]}, {word}")
    ax.axhline(base_rate_loss, color="0.4", lw=1, ls=":", label=f"base-rate loss {base_rate_loss:.3f}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean logistic loss")
    ax.set_title("Correct join, V trained: the exact step at η = 1/23 gets worse every epoch", fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


@figure("07_published_curves")
def published_curves(out_dir: Path) -> list[Path]:
    rows = results("published-10epoch")
    table = []
    for variant in ("published", "corrected"):
        for method in sorted({r["method"] for r in rows if r["variant"] == variant}):
            for column in ("train_loss", held_out(rows)[1], "v_rms", "w0"):
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
        write_csv(out_dir / "07_published_curves.csv", table),
        save_png(plot_published(rows, _base_rate_loss()), out_dir / "07_published_curves.png"),
    ]


def _base_rate_loss() -> float:
    """Held-out log-loss of predicting the training share of positives (from the peer results)."""
    rows = peer_results()
    return next(r["log_loss"] for r in rows if r["model"] == "base rate" and r["split"] == peer_split(rows))


def plot_latent_norms(rows: list[dict]):
    """RMS latent-row norm after each epoch: frozen (published), exact prox at η = 1/23, Adam."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for variant, method, word in (
        ("published", "prox-published", "prox as published: V never moves"),
        ("corrected", "prox", "prox, exact step, η = 1/23"),
        ("corrected", "adam", "Adam, default settings"),
    ):
        c = curves(rows, variant, method, "v_rms")
        ax.plot(np.arange(0, c.shape[1] + 1), np.r_[0.01 * math.sqrt(20), c.mean(0)], marker="o", ms=3,
                color=COLORS[method], label=word)  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("epoch (0: the initial N(0, 0.01²) values)")
    ax.set_ylabel("RMS of ‖v_i‖ over the 2,728 features (log scale)")
    ax.set_title("The exact step grows V twentyfold, Adam over a hundredfold", fontsize=10)
    ax.legend(fontsize=8, loc="center right")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


@figure("07_latent_norms")
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
        write_csv(out_dir / "07_latent_norms.csv", table),
        save_png(plot_latent_norms(rows), out_dir / "07_latent_norms.png"),
    ]


# --------------------------------------------------------------------------- stability sweeps


def _summary_rows(summary, keys=("variant", "method", "eta", "column", "attempts", "mean", "sd", "lo", "hi")):
    return [{k: s[k] for k in keys} for s in summary]


def plot_stability_published(rows: list[dict]):
    """Best training loss per (method, η) on the published 1,000-rating subset (log scale)."""
    summary = stability_summary(rows, "train_loss")
    attempts = summary[0]["attempts"]
    fig, ax = plt.subplots(figsize=(7, 4.8))
    _method_lines(ax, summary)
    ax.set_yscale("log")
    ax.set_ylabel("best training loss over 10 epochs (log scale)")
    ax.set_title(
        f"The published sweep (first 1,000 ratings, training loss only):\n"
        f"large step sizes memorise the subset; mean ± 2 s.e. over {attempts} attempts",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    _legend_below(fig, METHOD_ORDER)
    return fig


@figure("07_stability_published")
def stability_published(out_dir: Path) -> list[Path]:
    rows = results("stability-published")
    return [
        write_csv(out_dir / "07_stability_published.csv", _summary_rows(stability_summary(rows, "train_loss"))),
        save_png(plot_stability_published(rows), out_dir / "07_stability_published.png"),
    ]


STABILITY_TOP = 0.75  # the y-axis of the full sweep ends here; points above are marked


def _linear_baseline() -> float:
    """Held-out log-loss of logistic regression (C = 1) from the peer results."""
    rows = peer_results()
    split = peer_split(rows)
    return next(
        r["log_loss"] for r in rows if (r["model"], r["setting"], r["split"]) == ("logistic regression", "C=1", split)
    )


def plot_stability_full(rows: list[dict], linear_baseline: float | None = None):
    """Left: best training loss per (method, η) as published. Right: test loss at the epoch
    chosen on the validation rows. Linear axes cut at ``STABILITY_TOP`` with ▲ marks above."""
    train = stability_summary(rows, "train_loss")
    choose, report = held_out(rows)
    test = selection_summary(rows, choose, report)
    attempts = test[0]["attempts"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    clipped = _method_lines(axes[0], train, top=STABILITY_TOP)
    clipped |= _method_lines(axes[1], test, top=STABILITY_TOP)
    axes[0].set_ylabel("logistic loss")
    axes[0].set_title("training loss, best epoch (the published measure)", fontsize=10)
    axes[1].set_title(f"{report.split('_')[0]} loss at the epoch chosen on the validation rows", fontsize=10)
    extra = []
    if linear_baseline is not None:
        axes[1].axhline(linear_baseline, color="0.3", ls=":", lw=1)
        extra.append(
            plt.Line2D([], [], color="0.3", ls=":", label=f"logistic regression, C = 1 ({linear_baseline:.3f})")
        )
    axes[0].set_ylim(0.15, STABILITY_TOP)
    fig.suptitle(
        f"All ratings, 20 epochs (bands: ± 2 s.e. over {attempts} seeds on one split). On {report.split('_')[0]} "
        f"loss the exact step has the narrowest valley;\nAdam is the best at the smallest step sizes and the worst "
        f"at the largest",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    _legend_below(fig, METHOD_ORDER, clipped, extra)
    return fig


@figure("07_stability_full")
def stability_full(out_dir: Path) -> list[Path]:
    rows = results("stability-full")
    train = [{**s, "measure": "best training loss"} for s in stability_summary(rows, "train_loss")]
    choose, report = held_out(rows)
    test = [
        {**s, "column": report, "measure": f"{report} at best {choose} epoch"}
        for s in selection_summary(rows, choose, report)
    ]
    keys = ("measure", "method", "eta", "attempts", "mean", "sd", "lo", "hi")
    return [
        write_csv(out_dir / "07_stability_full.csv", [{k: s[k] for k in keys} for s in train + test]),
        save_png(plot_stability_full(rows, _linear_baseline()), out_dir / "07_stability_full.png"),
    ]


LONG_TOP = 0.60


def _label_ends(ax, ends, min_gap):
    """Write each (y, text, color) just right of the last point, nudged apart by ``min_gap``."""
    placed: list[float] = []
    for y, text, color in sorted(ends):
        y = max([y] + [p + min_gap for p in placed[-1:]])
        placed.append(y)
        ax.annotate(text, xy=(1.0, y), xytext=(3, 0), textcoords="offset points", xycoords=("axes fraction", "data"),
                    fontsize=7, color=color, va="center", annotation_clip=False)  # fmt: skip


def plot_long(rows: list[dict]):
    """Exact prox for 50 epochs: mean training and test loss per epoch, one line for every other η."""
    report = held_out(rows)[1]
    table = long_table(rows, columns=("train_loss", report))
    all_etas = sorted({t["eta"] for t in table})
    etas = all_etas[::2]  # five of the ten step sizes: every other one, so that the curves can be told apart
    norm = LogNorm(min(all_etas), max(all_etas))
    cmap = plt.get_cmap("viridis")
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), sharey=True, gridspec_kw={"wspace": 0.32})
    clipped = False
    for ax, column, title in zip(axes, ("train_loss", report), ("training loss", f"{report.split('_')[0]} loss")):
        ends = []
        for eta in etas:
            sel = [t for t in table if t["eta"] == eta and t["column"] == column]
            epochs = np.array([t["epoch"] for t in sel])
            vals = np.array([t["mean"] for t in sel])
            color = cmap(norm(eta))
            over = ~(vals <= LONG_TOP)
            ax.plot(epochs, np.where(over, np.nan, vals), color=color, lw=1.4)
            if over.any():  # mark where the curve is first above the axis
                first = int(np.argmax(over))
                ax.plot(epochs[first], LONG_TOP, marker="^", ms=8, color=color, clip_on=False)
                clipped = True
            if not over[-1]:
                ends.append((float(vals[-1]), f"η = {eta:.1e}", color))
        _label_ends(ax, ends, min_gap=0.009)
        ax.set_xlabel("epoch")
        ax.set_title(f"exact prox, 50 epochs: {title}", fontsize=10)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("mean logistic loss over attempts")
    axes[0].set_ylim(0.38, LONG_TOP)
    fig.suptitle(
        "Small step sizes are stable but slow; from η ≈ 10⁻³ on, more epochs make the test loss worse",
        fontsize=10,
    )
    fig.subplots_adjust(left=0.06, right=0.86, bottom=0.2, top=0.85)
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, fraction=0.025, pad=0.08)
    bar.set_label("step size η (log scale)")
    if clipped:
        fig.legend(
            handles=[
                plt.Line2D(
                    [],
                    [],
                    ls="none",
                    marker="^",
                    ms=8,
                    color="0.3",
                    label="the curve leaves the axis here",
                )
            ],
            loc="lower center",
            fontsize=8,
            frameon=False,
        )
    return fig


@figure("07_long")
def long_run(out_dir: Path) -> list[Path]:
    rows = results("long")
    return [
        write_csv(out_dir / "07_long.csv", long_table(rows, columns=("train_loss", *dict.fromkeys(held_out(rows))))),
        save_png(plot_long(rows), out_dir / "07_long.png"),
    ]


# --------------------------------------------------------------------------- speed


def read_csv(name: str, folder: Path | None = None) -> list[dict]:
    """Rows of a committed figure CSV ``figures/<name>.csv`` (strings)."""
    import csv

    path = Path(folder or Path(__file__).resolve().parents[2] / "figures") / f"{name}.csv"
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def step_rates(ds, rows, steps: int = 200) -> dict:
    """Prox steps per second, one thread each, on the same MovieLens samples at η = 1/23: the
    published torch step, the reduced torch step of chapter 06 and the compiled engine (live demo
    of chapter 07; ``python -m fmedu bench`` is the benchmark)."""
    import time

    import torch

    from .. import engine, prox
    from ..movielens import bench

    published = bench.published_steps_per_second(ds.idx, ds.nnz, ds.y, ds.n_features, steps=steps)
    w0, w, V = engine.init_params(0, ds.n_features, 20)
    trainer = prox.ProxTrainer(
        torch.tensor(w0, dtype=torch.float64), torch.from_numpy(w), torch.from_numpy(V), bench.ETA
    )
    samples = [(torch.from_numpy(ds.idx[r, : ds.nnz[r]].copy()), float(ds.y[r])) for r in range(steps + 1)]
    trainer.step(*samples[0])  # warm-up
    start = time.perf_counter()
    for sample in samples[1:]:
        trainer.step(*sample)
    reduced = steps / (time.perf_counter() - start)
    compiled = bench.engine_steps_per_second(ds.idx, ds.nnz, ds.y, ds.n_features, "prox", rows=rows[:20000])
    return {"published": published, "reduced": reduced, "engine": compiled}


def ulp_sensitivity(ds, rows, eta: float, epochs: int, seed: int = 0) -> float:
    """Largest relative change of an exact-prox run's per-epoch training loss over ``epochs``
    epochs when one initial latent entry (feature 0, column 1) is moved by one unit in the last
    place (chapter 07: how far rounding moves a run)."""
    from .. import engine

    losses = []
    for bump in (False, True):
        trainer = engine.make_trainer(
            [engine.Run("prox", eta, seed)], ds.idx, ds.nnz, ds.y, n_features=ds.n_features, train_rows=rows
        )
        if bump:
            trainer.theta[0, 0, 1] = np.nextafter(trainer.theta[0, 0, 1], np.inf)
        losses.append([trainer.epoch()["train_loss"][0] for _ in range(epochs)])
    a, b = np.array(losses)
    return float(np.max(np.abs(a - b) / np.abs(a)))


__all__ = [
    "ulp_sensitivity",
    "step_rates",
    "plot_published",
    "plot_latent_norms",
    "plot_stability_published",
    "plot_stability_full",
    "plot_long",
]
