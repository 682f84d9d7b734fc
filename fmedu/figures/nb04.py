"""Figures of chapter 04 (user–item data and identifiability): the regularisers along families of
parameters with identical predictions, and what a fit to a planted FM recovers."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .. import user_item as ui
from ..registry import figure, save_png, write_csv

FLOOR = 1e-17  # where an exact 0 is drawn on a log axis (always with its own marker)
RECOVERED_TOL = 1e-6  # a quantity counts as recovered when its max abs error is at most this
RECOVERY_SETTINGS = ("user-item", "pairs", "pairs+triples")
RECOVERY_SEEDS = (0, 1, 2)
QUANTITY_LABELS = {
    "predictions": "predictions",
    "V": "$V$",
    "V up to rotation": "$V$ up to\nrotation",
    "w": "$w$",
    "B": "$B$",
    "JBJ": "$JBJ$",
}


def plot_regularisers(reparam: list[dict], translation: list[dict]) -> Figure:
    """Two families of parameters with identical predictions: (a) V_u R_θ, V_i R_θ⁻ᵀ,
    (b) translations absorbed by the linear terms. Log y: the values span two orders of magnitude."""
    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(10, 4.4), sharey=True)
    th = [r["theta"] for r in reparam]
    ax_a.semilogx(th, [r["frobenius_sq"] for r in reparam], color="tab:blue", label=r"$\|V\|_F^2$ (usual regulariser)")
    ax_a.semilogx(th, [r["B_frobenius_sq"] for r in reparam], color="tab:orange", label=r"$\|B\|_F^2$")
    ax_a.semilogx(
        th,
        [r["two_nuclear_norm"] for r in reparam],
        color="grey",
        ls="--",
        label=r"$2\|B\|_*$: smallest $\|V\|_F^2$ for this $B$",
    )
    ax_a.set_xlabel(r"$\theta$ in $R_\theta = \mathrm{diag}(\theta, 1/\theta, 1)$ (log scale)")
    ax_a.set_title(r"(a) $V_u R_\theta$, $V_i R_\theta^{-\top}$: $B$ fixed")
    th = [r["theta"] for r in translation]
    ax_b.plot(th, [r["frobenius_sq"] for r in translation], color="tab:blue", label=r"$\|V\|_F^2$")
    ax_b.plot(th, [r["B_frobenius_sq"] for r in translation], color="tab:orange", label=r"$\|B\|_F^2$")
    ax_b.plot(
        th,
        [r["JBJ_frobenius_sq"] for r in translation],
        color="tab:green",
        ls="-.",
        label=r"$\|JBJ\|_F^2$ (set by the predictions)",
    )
    ax_b.set_xlabel(r"$\theta$: user vectors $+\,\theta s_0$, item vectors $+\,\theta t_0$")
    ax_b.set_title(r"(b) translations absorbed by $w$: $B$ changes")
    for ax in (ax_a, ax_b):
        ax.set_yscale("log")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="upper center")
    ax_a.set_ylabel("regulariser value (log scale)")
    ax_a.set_ylim(top=4e4)
    fig.suptitle("Every point gives the same predictions on all user–item pairs; the regularisers still change")
    fig.tight_layout()
    return fig


def recovery_rows(settings=RECOVERY_SETTINGS, seeds=RECOVERY_SEEDS) -> list[dict]:
    """Rows ``{setting, seed, quantity, applies, max_abs_error}`` of
    :func:`fmedu.expressiveness.planted_recovery` (``max_abs_error`` None where it does not apply)."""
    rows = []
    for setting in settings:
        for seed in seeds:
            for quantity, err in ui.planted_recovery(setting, seed).items():
                rows.append(
                    {
                        "setting": setting,
                        "seed": seed,
                        "quantity": quantity,
                        "applies": err is not None,
                        "max_abs_error": err,
                    }
                )
    return rows


def plot_recovery(rows: list[dict]) -> Figure:
    """Worst error over seeds of each quantity, per data setting (log scale); "n/a" where a
    quantity does not exist for that data, a marker for an exact 0."""
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    quantities = list(dict.fromkeys(r["quantity"] for r in rows))
    seeds = len({r["seed"] for r in rows})
    fig, ax = plt.subplots(figsize=(9, 4.6))
    width = 0.8 / len(settings)
    colors = ["tab:blue", "tab:orange", "tab:green"]
    any_zero = False
    for s, setting in enumerate(settings):
        xs = np.arange(len(quantities)) + (s - (len(settings) - 1) / 2) * width
        for x, q in zip(xs, quantities):
            errs = [r["max_abs_error"] for r in rows if r["setting"] == setting and r["quantity"] == q]
            if not errs or any(e is None for e in errs):
                ax.text(x, 1e-9, "n/a", rotation=90, ha="center", va="center", fontsize=9, color=colors[s])
                ax.texts[-1].set_clip_on(True)
                continue
            worst = max(errs)
            if worst == 0:
                any_zero = True
                ax.plot([x], [FLOOR], "v", color="black")
                continue
            ax.bar(x, worst, width, bottom=FLOOR, color=colors[s], log=True)
    ax.set_yscale("log")
    ax.set_ylim(FLOOR, 1e3)
    ax.set_xlim(-0.5, len(quantities) - 0.5)  # every group, its "n/a" labels included, inside the frame
    ax.axhline(RECOVERED_TOL, color="grey", lw=1, ls="--")
    ax.set_xticks(np.arange(len(quantities)), [QUANTITY_LABELS.get(q, q) for q in quantities])
    ax.set_ylabel(f"max |fitted − planted| (worst of {seeds} seeds, log scale)")
    handles: list[Artist] = [Patch(color=colors[s], label=setting) for s, setting in enumerate(settings)]
    handles.append(Line2D([], [], color="grey", ls="--", label=r"recovered if below $10^{-6}$"))
    handles.append(Line2D([], [], ls="none", marker="$n/a$", color="black", ms=14, label="does not apply to this data"))
    if any_zero:
        handles.append(Line2D([], [], ls="none", marker="v", color="black", label="error exactly 0"))
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(True, axis="y", which="major", alpha=0.3)
    ax.set_title("Predictions are always recovered; $V$ up to rotation only with mixed sample sizes", fontsize=11)
    fig.tight_layout()
    return fig


@figure("04_regularisers")
def regularisers(out_dir: Path) -> list[Path]:
    reparam, translation = ui.reparametrisation_rows(), ui.translation_rows()
    rows = [{"family": "reparametrisation"} | r for r in reparam]
    rows += [{"family": "translation"} | r | {"two_nuclear_norm": ""} for r in translation]
    return [
        write_csv(out_dir / "04_regularisers.csv", rows),
        save_png(plot_regularisers(reparam, translation), out_dir / "04_regularisers.png"),
    ]


@figure("04_recovery")
def recovery(out_dir: Path) -> list[Path]:
    rows = recovery_rows()
    return [write_csv(out_dir / "04_recovery.csv", rows), save_png(plot_recovery(rows), out_dir / "04_recovery.png")]


def plot_block_diagram(n_u: int = 3, n_i: int = 4) -> Figure:
    """The n × n interaction matrix W of user–item data, split into its blocks: the user–item block
    B (and its mirror Bᵀ), the only entries any one-hot pair x = e_u + e_{n_u+i} reads; the user–user
    and item–item blocks and the diagonal, which no prediction reads."""
    n = n_u + n_i
    grid = np.zeros((n, n))
    grid[:n_u, n_u:] = 2  # B
    grid[n_u:, :n_u] = 1  # Bᵀ (the same numbers)
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    from matplotlib.colors import ListedColormap

    ax.imshow(grid, cmap=ListedColormap(["#eeeeee", "#9ecae1", "#3182bd"]), vmin=0, vmax=2)
    for i in range(n):
        for j in range(n):
            if i == j:
                txt = "·"
            elif i < n_u <= j:
                txt = f"$B_{{{i}{j - n_u}}}$"
            elif j < n_u <= i:
                txt = f"$B_{{{j}{i - n_u}}}$"
            else:
                txt = "unused"
            ax.text(j, i, txt, ha="center", va="center", fontsize=8 if txt == "unused" else 10)
    ax.axhline(n_u - 0.5, color="black", lw=1.5)
    ax.axvline(n_u - 0.5, color="black", lw=1.5)
    labels = [f"user {u}" for u in range(n_u)] + [f"item {i}" for i in range(n_i)]
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_title(f"$W$ for {n_u} users and {n_i} items: a prediction reads only the user–item block $B$", fontsize=10)
    fig.tight_layout()
    return fig


@figure("04_block_diagram")
def block_diagram(out_dir: Path) -> list[Path]:
    n_u, n_i = 3, 4
    rows = [
        {"row": i, "col": j, "block": "diagonal" if i == j else ("B" if (i < n_u) != (j < n_u) else "unused")}
        for i in range(n_u + n_i)
        for j in range(n_u + n_i)
    ]
    return [
        write_csv(out_dir / "04_block_diagram.csv", rows),
        save_png(plot_block_diagram(n_u, n_i), out_dir / "04_block_diagram.png"),
    ]
