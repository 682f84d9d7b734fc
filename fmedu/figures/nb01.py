"""Chapter 01 (Rendle's reformulation): the cost figures.

Figures (both are timings; timings vary from machine to machine):

* ``01_cost_vs_n``: seconds per batch of the naive O(n²k) form and of Rendle's O(nk) form
  against n, on log-log axes with slope-2 and slope-1 reference lines;
* ``01_sparse_cost``: seconds per batch of the sparse form against nnz at n = 10³ and
  n = 10⁶, on linear axes with the fitted lines a + b·nnz (a: the fixed cost of a call).

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
LABELS = {"naive": "naive double sum, O(n²k)", "rendle": "Rendle's form, O(nk)"}


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


def sparse_n_ratios(rows: list[dict]) -> dict[int, float]:
    """Time at the largest n divided by time at the smallest n, for each nnz."""
    small, large = min(r["n"] for r in rows), max(r["n"] for r in rows)
    t = {(r["n"], r["nnz"]): r["seconds"] for r in rows}
    return {m: t[(large, m)] / t[(small, m)] for m in sorted({r["nnz"] for r in rows})}


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


def draw_sparse_lines(ax, rows: list[dict], what: str, batch: int, k: int) -> None:
    """Seconds against nnz at each n (points) with the fitted lines a + b·nnz (dashed), linear axes.

    Shared by the sparse panels of chapters 01 and 02; ``what`` names the computation in the title.
    """
    lines, ratios = sparse_lines(rows), sparse_n_ratios(rows)
    nnz = sorted({r["nnz"] for r in rows})
    for (n, line), marker in zip(lines.items(), "o^"):
        sel = [r for r in rows if r["n"] == n]
        (points,) = ax.plot(
            [r["nnz"] for r in sel],
            [1e6 * r["seconds"] for r in sel],
            marker=marker,
            linestyle="none",
            label=f"n = {n:,}: {1e6 * line['a']:.0f} µs + {1e6 * line['b']:.2f} µs per non-zero",
        )
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
    """Seconds against nnz of the sparse form at two values of n, with the fitted lines a + b·nnz."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    draw_sparse_lines(ax, rows, "Sparse form", SPARSE_BATCH, SPARSE_K)
    fig.tight_layout()
    return fig


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
