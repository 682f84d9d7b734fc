"""Chapter 01 (Rendle's reformulation): the pair grid and the cost figures.

Figures:

* ``01_pair_grid`` (a conceptual diagram): the n × n grid of terms ⟨v_i, v_j⟩ x_i x_j;
  the full square, minus its diagonal, halved, leaves the pairs i < j;

* ``01_cost_vs_n``: seconds per batch of the naive O(n²k) form and of Rendle's O(nk) form
  against n, on log-log axes with slope-2 and slope-1 reference lines;
* ``01_sparse_cost``: seconds per batch of the sparse form against nnz at n = 10³ and
  n = 10⁶, on linear axes with the fitted line a + b·nnz at n = 10³ (a: the fixed cost of a call);
  at n = 10⁶ the points bend upward and no line is drawn.

``python -m fmedu figures --only 01`` measures, writes the CSV and draws the PNG from the
same rows. The chapter reads the committed CSV (:func:`committed`) and draws it with the
same function, so its copy and the PNG never disagree.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import NullFormatter

from .. import cost
from ..registry import figure, read_csv, save_png, write_csv

# n from ~1,400 to ~5,800 in steps of √2: the n × n matrix of inner products of the naive
# form is out of cache at every measured size, so the fit sees the operation count, not a
# cache transition between sizes.
DENSE_NS = (1448, 2048, 2896, 4096, 5793)
DENSE_K, DENSE_BATCH = 16, 64
# small batches: per-call temporaries stay below ~0.5 MB, so no size pays for fresh memory
SPARSE_NNZ = (4, 8, 16, 32, 64, 128)
SPARSE_NS = (1_000, 1_000_000)
SPARSE_K, SPARSE_BATCH = 16, 32
LABELS = {"naive": "naive form, O(n²k + Bn²) per batch", "rendle": "Rendle's form, O(Bnk) per batch"}


# --------------------------------------------------------------------------- measurements


def measure_dense_cost(ns=DENSE_NS, k: int = DENSE_K, batch: int = DENSE_BATCH) -> list[dict]:
    """Rows ``{n, form, seconds}``: seconds per batch of ``batch`` dense samples."""
    return [
        {"n": t.size, "form": t.form, "seconds": t.seconds}
        for t in cost.time_dense_forms(ns, k=k, batch=batch, repeat=7)
    ]


def measure_sparse_cost(nnzs=SPARSE_NNZ, ns=SPARSE_NS, k: int = SPARSE_K, batch: int = SPARSE_BATCH) -> list[dict]:
    """Rows ``{n, nnz, seconds}``: seconds per batch of the sparse form at two very different n."""
    rows = []
    for t in cost.time_sparse_form(nnzs, ns=ns, k=k, batch=batch, repeat=9):
        rows.append({"n": int(t.form.split("=")[1]), "nnz": t.size, "seconds": t.seconds})
    return rows


def committed(name: str) -> list[dict]:
    """The committed rows of figure ``name`` (``"01_cost_vs_n"`` or ``"01_sparse_cost"``)."""
    return read_csv(f"{name}.csv")


def dense_slopes(rows: list[dict]) -> dict[str, float]:
    """Fitted log-log slope of seconds against n for each form."""
    out = {}
    for form in ("naive", "rendle"):
        sel = [r for r in rows if r["form"] == form]
        out[form] = cost.fit_loglog_slope([r["n"] for r in sel], [r["seconds"] for r in sel])
    return out


def sparse_lines(rows: list[dict]) -> dict[int, dict[str, float]]:
    """For each n, the least-squares line seconds ≈ a + b·nnz and its largest relative deviation.

    ``a`` is the fixed cost of a call (seconds), ``b`` the cost per non-zero feature (seconds),
    ``max_deviation`` = max |seconds − (a + b·nnz)| / seconds over the measured points.
    """
    out = {}
    for n in sorted({r["n"] for r in rows}):
        sel = [r for r in rows if r["n"] == n]
        m, t = np.array([r["nnz"] for r in sel], float), np.array([r["seconds"] for r in sel])
        b, a = np.polyfit(m, t, 1)
        out[n] = {"a": float(a), "b": float(b), "max_deviation": float(np.max(np.abs(t - (a + b * m)) / t))}
    return out


def sparse_residuals(rows: list[dict]) -> dict[int, list[float]]:
    """For each n, the relative residuals (seconds − (a + b·nnz)) / seconds of its fitted line, by nnz."""
    lines, out = sparse_lines(rows), {}
    for n, line in lines.items():
        sel = sorted((r for r in rows if r["n"] == n), key=lambda r: r["nnz"])
        out[n] = [(r["seconds"] - (line["a"] + line["b"] * r["nnz"])) / r["seconds"] for r in sel]
    return out


def sparse_n_ratios(rows: list[dict]) -> dict[int, float]:
    """Time at the largest n divided by time at the smallest n, for each nnz."""
    small, large = min(r["n"] for r in rows), max(r["n"] for r in rows)
    t = {(r["n"], r["nnz"]): r["seconds"] for r in rows}
    return {m: t[(large, m)] / t[(small, m)] for m in sorted({r["nnz"] for r in rows})}


# --------------------------------------------------------------------------- the pair grid

PAIR_GRID_N = 5
PANELS = ("full square", "minus the diagonal", "halved")


def pair_grid_rows(n: int = PAIR_GRID_N) -> list[dict]:
    """One row per cell and panel: ``{panel, i, j, kept}``; ``kept`` is 1 for the cells the panel keeps.

    Panel "full square" keeps all n² cells (i, j), "minus the diagonal" the n(n − 1) cells
    i ≠ j, "halved" the n(n − 1)/2 cells i < j (the mirror cells i > j are shown as the
    half that the factor ½ removes).
    """
    rule = {PANELS[0]: lambda i, j: True, PANELS[1]: lambda i, j: i != j, PANELS[2]: lambda i, j: i < j}
    return [
        {"panel": p, "i": i, "j": j, "kept": int(rule[p](i, j))}
        for p in PANELS
        for i in range(1, n + 1)
        for j in range(1, n + 1)
    ]


def plot_pair_grid(rows: list[dict]) -> Figure:
    """Three n × n grids: every term, the diagonal struck out, and the upper triangle kept."""
    n = max(r["i"] for r in rows)
    fig, axes = plt.subplots(1, 3, figsize=(10.0, 3.9))
    captions = {
        PANELS[0]: rf"$\sum_{{i,j}}$: all $n^2 = {n * n}$ terms",
        PANELS[1]: rf"minus the diagonal $i = j$: $n(n-1) = {n * (n - 1)}$ left",
        PANELS[2]: rf"$\times\frac{{1}}{{2}}$: $n(n-1)/2 = {n * (n - 1) // 2}$ pairs $i<j$",
    }
    for ax, panel in zip(axes, PANELS):
        for r in (r for r in rows if r["panel"] == panel):
            i, j = r["i"], r["j"]
            colour = "#1f77b4" if r["kept"] else ("#d62728" if i == j else "#c7d7e8")
            alpha = 0.85 if r["kept"] else (0.25 if i == j else 0.6)
            ax.add_patch(Rectangle((j - 1, n - i), 1, 1, facecolor=colour, alpha=alpha, edgecolor="white", lw=1.5))
            if not r["kept"] and i == j:
                ax.plot([j - 1, j], [n - i, n - i + 1], color="#d62728", lw=1.2)
                ax.plot([j - 1, j], [n - i + 1, n - i], color="#d62728", lw=1.2)
            elif not r["kept"]:
                ax.text(j - 0.5, n - i + 0.5, "=", ha="center", va="center", fontsize=9, color="0.35")
        ax.set_xlim(0, n)
        ax.set_ylim(0, n)
        ax.set_aspect("equal")
        ax.set_xticks([j - 0.5 for j in range(1, n + 1)], [str(j) for j in range(1, n + 1)])
        ax.set_yticks([n - i + 0.5 for i in range(1, n + 1)], [str(i) for i in range(1, n + 1)])
        ax.tick_params(length=0)
        ax.set_xlabel("feature j")
        ax.set_ylabel("feature i")
        ax.set_title(captions[panel], fontsize=10)
    axes[2].set_xlabel("feature j\n(light cells: cell (i, j) = cell (j, i), the mirror image)")
    fig.suptitle("The pairs i < j are half of (the full square minus its diagonal)")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- plots


def _reference_line(ax, xs, ys, slope: int, label: str) -> None:
    """A dashed line c·x^slope through the geometric centre of the points (xs, ys)."""
    cx = math.exp(sum(map(math.log, xs)) / len(xs))
    cy = math.exp(sum(map(math.log, ys)) / len(ys))
    lo, hi = min(xs), max(xs)
    ax.loglog([lo, hi], [cy * (lo / cx) ** slope, cy * (hi / cx) ** slope], "--", color="0.5", lw=1, label=label)


def _plain_ticks(ax, ticks) -> None:
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(list(ticks), [f"{t:,}" for t in ticks])


def plot_dense_cost(rows: list[dict]) -> Figure:
    """Log-log seconds against n, naive and Rendle forms, fitted slopes in the legend, references."""
    slopes = dense_slopes(rows)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for form, marker in (("naive", "o"), ("rendle", "s")):
        sel = [r for r in rows if r["form"] == form]
        xs, ys = [r["n"] for r in sel], [r["seconds"] for r in sel]
        ax.loglog(xs, ys, marker=marker, label=f"{LABELS[form]}: fitted slope {slopes[form]:.2f}")
        _reference_line(ax, xs, ys, 2 if form == "naive" else 1, f"slope {2 if form == 'naive' else 1} (reference)")
    _plain_ticks(ax, sorted({r["n"] for r in rows}))
    ax.set_xlabel("n (features per sample)")
    ax.set_ylabel(f"CPU seconds per batch of {DENSE_BATCH} (k = {DENSE_K})")
    ax.set_title("Naive cost grows like n², Rendle's like n")
    ax.legend(fontsize=8, loc="center right")
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return fig


def draw_sparse_lines(ax, rows: list[dict], what: str, batch: int, k: int, fit=None) -> None:
    """Seconds against nnz at each n (points) with the fitted lines a + b·nnz (dashed), linear axes.

    Shared by the sparse panels of chapters 01 and 02; ``what`` names the computation in the title.
    ``fit`` lists the n that get a fitted line (default: every n); the points of any other n are
    joined by a thin line, because a straight line does not describe them.
    """
    lines, ratios = sparse_lines(rows), sparse_n_ratios(rows)
    nnz = sorted({r["nnz"] for r in rows})
    for (n, line), marker in zip(lines.items(), "o^"):
        sel = [r for r in rows if r["n"] == n]
        fitted = fit is None or n in fit
        label = f"n = {n:,}: {1e6 * line['a']:.0f} µs + {1e6 * line['b']:.2f} µs per non-zero"
        (points,) = ax.plot(
            [r["nnz"] for r in sel],
            [1e6 * r["seconds"] for r in sel],
            marker=marker,
            linestyle="none" if fitted else "-",
            lw=0.8,
            label=label if fitted else f"n = {n:,}: measured (not a straight line)",
        )
        if fitted:
            ends = [1e6 * line["a"], 1e6 * (line["a"] + line["b"] * nnz[-1])]
            ax.plot([0, nnz[-1]], ends, "--", color=points.get_color())
    ax.set_xticks(nnz[2:], [str(m) for m in nnz[2:]])
    ax.set_xlim(0, nnz[-1] * 1.05)
    ax.set_ylim(0, None)
    ax.set_xlabel("nnz (non-zero features per sample)")
    ax.set_ylabel(f"CPU microseconds per batch of {batch} (k = {k})")
    ax.set_title(f"{what}: time grows with nnz; n = 10⁶ costs ≤ {max(ratios.values()):.1f}× n = 10³")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, alpha=0.3)


def plot_sparse_cost(rows: list[dict]) -> Figure:
    """Seconds against nnz of the sparse form at two values of n; the fitted line a + b·nnz at the smaller n."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    draw_sparse_lines(ax, rows, "Sparse form", SPARSE_BATCH, SPARSE_K, fit=(min(r["n"] for r in rows),))
    fig.tight_layout()
    return fig


@figure("01_pair_grid")
def pair_grid(out_dir: Path) -> list[Path]:
    rows = pair_grid_rows()
    return [
        write_csv(out_dir / "01_pair_grid.csv", rows),
        save_png(plot_pair_grid(rows), out_dir / "01_pair_grid.png"),
    ]


@figure("01_cost_vs_n")
def cost_vs_n(out_dir: Path) -> list[Path]:
    rows = measure_dense_cost()
    return [
        write_csv(out_dir / "01_cost_vs_n.csv", rows),
        save_png(plot_dense_cost(rows), out_dir / "01_cost_vs_n.png"),
    ]


@figure("01_sparse_cost")
def sparse_cost(out_dir: Path) -> list[Path]:
    rows = measure_sparse_cost()
    return [
        write_csv(out_dir / "01_sparse_cost.csv", rows),
        save_png(plot_sparse_cost(rows), out_dir / "01_sparse_cost.png"),
    ]
