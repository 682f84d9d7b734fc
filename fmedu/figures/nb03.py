"""Figures of chapter 03 (what an FM can express): the best off-diagonal fit against k with the
proven bounds."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .. import expressiveness as ex
from ..registry import figure, save_png, write_csv

FLOOR = 1e-17  # where an exact 0 is drawn on a log axis (always with its own marker)
EXACT_TOL = 1e-8  # a fit with relative error at most this counts as exact (chapter 03)


def plot_k_scan(rows: list[dict]) -> Figure:
    """One panel per example: best relative off-diagonal error against k, the proven range of k*
    (shaded), the exactness threshold (dashed) and the observed k* (ringed)."""
    names = list(dict.fromkeys(r["example"] for r in rows))
    n = max(r["k"] for r in rows)
    observed = ex.observed_k(rows, EXACT_TOL)
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.4), sharex=True, sharey=True)
    any_zero = False
    for ax, name in zip(axes.flat, names):
        sel = [r for r in rows if r["example"] == name]
        lo, up = sel[0]["proven_lower"], sel[0]["proven_upper"]
        ks = np.array([r["k"] for r in sel])
        err = np.array([r["rel_error"] for r in sel])
        ax.axvspan(lo - 0.4, up + 0.4, color="tab:green", alpha=0.18, lw=0)
        ax.axhline(EXACT_TOL, color="grey", lw=1, ls="--")
        ax.semilogy(ks, np.maximum(err, FLOOR), "o-", color="tab:blue", ms=5)
        zero = err == 0
        if zero.any():
            any_zero = True
            ax.plot(ks[zero], np.full(zero.sum(), FLOOR), "v", color="black", ms=7)
        if name in observed:
            k_obs = observed[name]
            ax.plot([k_obs], [max(err[ks == k_obs][0], FLOOR)], "o", mfc="none", mec="tab:red", ms=13, mew=2)
        bounds = f"{lo}" if lo == up else f"{lo} to {up}"
        ax.set_title(f"{name}: proven $k^*$ = {bounds}, observed {observed.get(name, 'none')}", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.set_xticks(range(1, n + 1))
    for ax in axes[1]:
        ax.set_xlabel("$k$ (columns of $V$)")
    for ax in axes[:, 0]:
        ax.set_ylabel(r"best $\|\mathrm{off}(VV^\top - W)\|_F \,/\, \|\mathrm{off}(W)\|_F$")
    ax0 = axes.flat[0]
    ax0.set_ylim(FLOOR / 5, 10)
    handles: list[Artist] = [
        Line2D([], [], color="tab:blue", marker="o", label="best fit of 4 random starts (relative error)"),
        Patch(color="tab:green", alpha=0.3, label="proven range of $k^*$ (lower to upper bound)"),
        Line2D([], [], color="grey", ls="--", label=r"threshold $10^{-8}$: below it a fit counts as exact"),
        Line2D([], [], ls="none", marker="o", mfc="none", mec="tab:red", ms=11, mew=2, label="observed $k^*$"),
    ]
    if any_zero:
        handles.append(Line2D([], [], ls="none", marker="v", color="black", label="error exactly 0 (drawn at 1e-17)"))
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=9, frameon=False)
    fig.suptitle(f"Least-squares fits need exactly the proven $k^*$ where the bounds meet ($n$ = {n})")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


@figure("03_k_reconstruction")
def k_reconstruction(out_dir: Path) -> list[Path]:
    rows = ex.k_scan_rows()
    return [
        write_csv(out_dir / "03_k_reconstruction.csv", rows),
        save_png(plot_k_scan(rows), out_dir / "03_k_reconstruction.png"),
    ]


def three_vector_rows() -> list[dict]:
    """The three vectors of length √2 at 120° (chapter 03's tiny example): coordinates and the
    pairwise inner products, which are all −1."""
    import math

    coords = [
        (math.sqrt(2) * math.cos(2 * math.pi * i / 3), math.sqrt(2) * math.sin(2 * math.pi * i / 3)) for i in range(3)
    ]
    rows: list[dict] = []
    for i, (x, y) in enumerate(coords):
        nx, ny = coords[(i + 1) % 3]
        rows.append({"feature": i + 1, "x": x, "y": y, "inner_with_next": x * nx + y * ny})
    return rows


def plot_three_vectors(rows: list[dict]) -> Figure:
    """Left: three vectors at 120° whose pairwise inner products are all −1 (k = 2 suffices).
    Right: the 3 × 3 matrix V Vᵀ, with the off-diagonal the FM uses and the diagonal it ignores."""
    fig, (ax, ax_m) = plt.subplots(1, 2, figsize=(9.5, 4.2), gridspec_kw={"width_ratios": [1, 1]})
    colors = ["tab:blue", "tab:orange", "tab:green"]
    for r, c in zip(rows, colors):
        ax.annotate("", xy=(r["x"], r["y"]), xytext=(0, 0), arrowprops={"arrowstyle": "-|>", "color": c, "lw": 2})
        ax.text(1.15 * r["x"], 1.15 * r["y"], f"$v_{r['feature']}$", color=c, ha="center", va="center", fontsize=13)
    theta = np.linspace(0, 2 * np.pi / 3, 50)
    ax.plot(0.45 * np.cos(theta), 0.45 * np.sin(theta), color="grey", lw=1)
    ax.text(0.55 * np.cos(np.pi / 3), 0.55 * np.sin(np.pi / 3), "120°", fontsize=10, ha="left")
    ax.set_xlim(-1.9, 1.9)
    ax.set_ylim(-1.9, 1.9)
    ax.set_aspect("equal")
    ax.axhline(0, color="lightgrey", lw=0.8)
    ax.axvline(0, color="lightgrey", lw=0.8)
    ax.set_xlabel("first column of $V$")
    ax.set_ylabel("second column of $V$")
    ax.set_title(r"$\|v_i\|^2 = 2$, $\langle v_i, v_j\rangle = 2\cos 120° = -1$", fontsize=10)
    G = np.array([[r["x"] * s["x"] + r["y"] * s["y"] for s in rows] for r in rows])
    shade = np.where(np.eye(3, dtype=bool), 0.0, 1.0)
    ax_m.imshow(shade, cmap="Blues", vmin=-0.6, vmax=1.6)
    for i in range(3):
        for j in range(3):
            label = f"{G[i, j]:.0f}" + ("\n(unused)" if i == j else "")
            ax_m.text(j, i, label, ha="center", va="center", fontsize=11)
    ax_m.set_xticks(range(3), [f"$v_{j + 1}$" for j in range(3)])
    ax_m.set_yticks(range(3), [f"$v_{i + 1}$" for i in range(3)])
    ax_m.set_title(r"$VV^\top$: the FM reads only the off-diagonal (blue)", fontsize=10)
    fig.suptitle("Three features that all clash pairwise: two columns suffice, one does not")
    fig.tight_layout()
    return fig


@figure("03_three_vectors")
def three_vectors(out_dir: Path) -> list[Path]:
    rows = three_vector_rows()
    return [
        write_csv(out_dir / "03_three_vectors.csv", rows),
        save_png(plot_three_vectors(rows), out_dir / "03_three_vectors.png"),
    ]
