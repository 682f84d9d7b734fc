"""Figures of chapter 08 (does an FM beat a linear model?), drawn from the committed results
files and, for the conceptual picture of pairing, from seeded simulated losses.

Nothing here trains: ``make figures`` regenerates every figure without the data set's models.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ..movielens.analysis import held_out, peer_results, peer_split, peer_summary, results, selection_table
from ..registry import figure, save_png, write_csv
from .nb07 import LABELS

__all__ = ["LABELS", "comparison_table", "plot_comparison", "plot_pairing", "pairing_simulation"]

FM_COLOR, LINEAR_COLOR, BAYES_COLOR = "C3", "C1", "C2"

# --------------------------------------------------------------------------- pairing (conceptual)


def pairing_simulation(rows: int = 2000, redraws: int = 2000, seed: int = 0) -> dict:
    """Simulated per-row losses of two models that share each row's difficulty, and the means of
    the two models and of their difference over ``redraws`` test sets drawn with replacement."""
    rng = np.random.default_rng(seed)
    difficulty = rng.exponential(0.43, size=rows)  # shared by both models
    a = difficulty + rng.normal(0.0, 0.03, size=rows)
    b = difficulty + 0.003 + rng.normal(0.0, 0.03, size=rows)
    counts = rng.multinomial(rows, np.full(rows, 1.0 / rows), size=redraws)
    mean_a, mean_b = counts @ a / rows, counts @ b / rows
    independent = rng.multinomial(rows, np.full(rows, 1.0 / rows), size=redraws) @ b / rows
    return {"a": a, "b": b, "paired": mean_b - mean_a, "unpaired": independent - mean_a}


def plot_pairing(sim: dict | None = None):
    """Left: per-row losses of two models (shared difficulty). Right: the spread of the difference
    of their mean losses over redrawn test sets, paired and as if independent."""
    sim = sim if sim is not None else pairing_simulation()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    ax = axes[0]
    ax.scatter(sim["a"], sim["b"], s=4, alpha=0.35, color="0.3")
    top = float(np.quantile(np.r_[sim["a"], sim["b"]], 0.995))
    ax.plot([0, top], [0, top], color="C0", lw=1, label="equal loss")
    ax.set_xlim(-0.1, top)
    ax.set_ylim(-0.1, top)
    ax.set_xlabel("loss of model A on a row")
    ax.set_ylabel("loss of model B on the same row")
    ax.set_title("Rows that are hard for one model are hard for the other", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, alpha=0.3)
    ax = axes[1]
    bins = np.linspace(
        min(sim["unpaired"].min(), sim["paired"].min()), max(sim["unpaired"].max(), sim["paired"].max()), 60
    )
    ax.hist(sim["unpaired"], bins=bins, color="0.6", alpha=0.7, label="unpaired (independent test sets)")
    ax.hist(sim["paired"], bins=bins, color="C3", alpha=0.7, label="paired (the same rows for both)")
    ax.axvline(0.0, color="k", lw=1, ls=":")
    ax.set_xlabel("mean loss of B − mean loss of A over a redrawn test set")
    ax.set_ylabel("number of redraws")
    ax.set_title("Pairing removes the shared difficulty from a comparison", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


@figure("08_pairing")
def pairing(out_dir: Path) -> list[Path]:
    sim = pairing_simulation()
    table = [
        {"quantity": name, "mean": float(np.mean(sim[name])), "sd": float(np.std(sim[name], ddof=1))}
        for name in ("paired", "unpaired")
    ]
    return [write_csv(out_dir / "08_pairing.csv", table), save_png(plot_pairing(sim), out_dir / "08_pairing.png")]


# --------------------------------------------------------------------------- peers


def comparison_table(split_rows=None, peer_rows=None) -> list[dict]:
    """The chapter's side-by-side table on the test rows: each method of the blog at the step
    size and epochs chosen on the validation rows (mean and sd over attempts), the base rate,
    logistic regression (C = 1) and the Bayesian FM (rank 0 and 20; mean and sd over seeds)."""
    rows = split_rows if split_rows is not None else results("stability-full")
    peer_rows = peer_rows if peer_rows is not None else peer_results()
    split = peer_split(peer_rows)
    peers = peer_summary([r for r in peer_rows if not r["model"].startswith("blog: ")], split)
    out = []
    for s in selection_table(rows, *held_out(rows)):
        refits = [r["auc"] for r in peer_rows if r["model"] == f"blog: {s['method']}" and r["split"] == split]
        out.append(
            {
                "group": "the post's methods (batch 1, no regularisation)",
                "split": s["report"].split("_")[0],
                "model": LABELS[s["method"]],
                "setting": f"η = {s['eta']:.2g}, epoch {s['epoch_median']:g} (median)",
                "repeats": s["attempts"],
                "log_loss": s["mean"],
                "log_loss_sd": s["sd"],
                "auc": float(np.mean(refits)) if refits else math.nan,
                "auc_repeats": len(refits),
            }
        )
    for p in peers:
        if p["model"] == "logistic regression" and p["setting"] != "C=1":
            continue
        out.append(
            {
                "group": "baselines" if p["model"] != "Bayesian FM (myFM)" else "what practitioners use",
                "split": "val" if p["split"] == "validation" else p["split"],
                "model": p["model"] + (" (linear)" if p["setting"] == "rank=0" else ""),
                "setting": p["setting"],
                "repeats": p["seeds"],
                "log_loss": p["log_loss"],
                "log_loss_sd": p["log_loss_sd"],
                "auc": p["auc"],
                "auc_repeats": p["seeds"],
            }
        )
    return out


def plot_comparison(table: list[dict]):
    """Test log-loss of every model, best at the bottom, with ±1 sd over attempts or seeds."""
    shown = [t for t in table if t["log_loss"] < 0.5]
    shown.sort(key=lambda t: -t["log_loss"])
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(shown) + 2.4))
    ypos = np.arange(len(shown))

    def color(t):
        if t["model"] == LABELS["prox-published"]:
            return LINEAR_COLOR
        if t["group"] == "baselines" or t["model"].endswith("(linear)"):
            return "0.4"
        return BAYES_COLOR if "practitioners" in t["group"] else FM_COLOR

    colors = [color(t) for t in shown]
    ax.errorbar([t["log_loss"] for t in shown], ypos, xerr=[t["log_loss_sd"] for t in shown], fmt="none", ecolor="0.3")
    ax.scatter([t["log_loss"] for t in shown], ypos, c=colors, zorder=3)
    ax.set_yticks(ypos, [t["model"] for t in shown], fontsize=9)
    for y, t in zip(ypos, shown):
        ax.annotate(t["setting"], xy=(1.0, y), xycoords=("axes fraction", "data"), xytext=(6, 0),
                    textcoords="offset points", fontsize=7, color="0.35", va="center")  # fmt: skip
    lr = next(t["log_loss"] for t in table if t["model"] == "logistic regression")
    ax.axvline(lr, color="0.5", ls=":", lw=1)
    lo = min(t["log_loss"] - t["log_loss_sd"] for t in shown)
    hi = max(t["log_loss"] + t["log_loss_sd"] for t in shown)
    ax.set_xlim(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
    ax.set_xlabel(f"{table[0]['split']} log-loss (lower is better); bars: ±1 sd over attempts or seeds")
    ax.set_title("Test log-loss: the post's methods near or above a linear model, a Bayesian FM below", fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)
    dropped = [t["model"] for t in table if t["log_loss"] >= 0.5]
    groups = [
        (FM_COLOR, "the post's FM methods (batch 1, unregularised)"),
        (LINEAR_COLOR, "frozen-vector prox (a linear model)"),
        ("0.4", "linear baselines"),
        (BAYES_COLOR, "Bayesian FM (myFM)"),
    ]
    ax.legend(
        handles=[plt.Line2D([], [], ls="none", marker="o", color=c, label=label) for c, label in groups],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        ncol=2,
        fontsize=8,
        frameon=False,
        title=("not shown (loss ≥ 0.5): " + ", ".join(dropped)) if dropped else None,
        title_fontsize=8,
    )
    fig.tight_layout()
    return fig


@figure("08_comparison")
def comparison(out_dir: Path) -> list[Path]:
    table = comparison_table()
    return [
        write_csv(out_dir / "08_comparison.csv", table),
        save_png(plot_comparison(table), out_dir / "08_comparison.png"),
    ]
