"""Figures of notebook 01 (Rendle's reformulation): cost of the naive, fast and sparse forms."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .. import cost
from ..registry import figure, save_png, write_csv

DENSE_NS = (128, 256, 512, 1024, 2048, 4096)
SPARSE_NNZ = (1, 2, 4, 8, 16, 32, 64)
SPARSE_NS = (1_000, 1_000_000)


def measure_dense_cost(ns=DENSE_NS, k: int = 16, batch: int = 64) -> list[dict]:
    """Rows ``{n, form, seconds}``: one batch of ``batch`` dense samples per timing."""
    return [{"n": t.size, "form": t.form, "seconds": t.seconds} for t in cost.time_dense_forms(ns, k=k, batch=batch)]


def measure_sparse_cost(nnzs=SPARSE_NNZ, ns=SPARSE_NS, k: int = 16, batch: int = 256) -> list[dict]:
    """Rows ``{n, nnz, seconds}`` of the sparse form at two very different n."""
    rows = []
    for t in cost.time_sparse_form(nnzs, ns=ns, k=k, batch=batch):
        rows.append({"n": int(t.form.split("=")[1]), "nnz": t.size, "seconds": t.seconds})
    return rows


def dense_slopes(rows: list[dict]) -> dict[str, float]:
    """Fitted log-log slope of seconds against n for each form."""
    out = {}
    for form in sorted({r["form"] for r in rows}):
        sel = [r for r in rows if r["form"] == form]
        out[form] = cost.fit_loglog_slope([r["n"] for r in sel], [r["seconds"] for r in sel])
    return out


def sparse_slopes(rows: list[dict], min_nnz: int = 8) -> dict[int, float]:
    """Slope of seconds against nnz for nnz ≥ ``min_nnz`` (below it, fixed per-call overhead dominates)."""
    out = {}
    for n in sorted({r["n"] for r in rows}):
        sel = [r for r in rows if r["n"] == n and r["nnz"] >= min_nnz]
        out[n] = cost.fit_loglog_slope([r["nnz"] for r in sel], [r["seconds"] for r in sel])
    return out


def plot_dense_cost(rows: list[dict]) -> Figure:
    """Log-log seconds against n, naive and Rendle forms, fitted slopes in the legend."""
    slopes = dense_slopes(rows)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    labels = {"naive": "naive double sum, O(n²k)", "rendle": "Rendle's form, O(nk)"}
    for form, marker in (("naive", "o"), ("rendle", "s")):
        sel = [r for r in rows if r["form"] == form]
        ax.loglog(
            [r["n"] for r in sel],
            [r["seconds"] for r in sel],
            marker=marker,
            label=f"{labels[form]}: slope {slopes[form]:.2f}",
        )
    ax.set_xlabel("n (features)")
    ax.set_ylabel("seconds per batch of 64")
    ax.set_title("Cost of the pairwise term against n")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_sparse_cost(rows: list[dict]) -> Figure:
    """Log-log seconds against nnz of the sparse form at two values of n."""
    slopes = sparse_slopes(rows)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for n, marker in zip(sorted({r["n"] for r in rows}), "o^"):
        sel = [r for r in rows if r["n"] == n]
        ax.loglog(
            [r["nnz"] for r in sel],
            [r["seconds"] for r in sel],
            marker=marker,
            label=f"n = {n:,}: slope {slopes[n]:.2f} (nnz ≥ 8)",
        )
    ax.set_xlabel("nnz (non-zeros per sample)")
    ax.set_ylabel("seconds per batch of 256")
    ax.set_title("Sparse form: cost follows nnz, not n")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
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
