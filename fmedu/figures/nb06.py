"""Figures and demos of chapter 06 (the Sherman–Morrison prox solve).

``06_split``: the geometry of (6.5) for the worked example: V_t split along 1 and its complement,
and V*(z) = M/λ_mean + P/λ_⊥ as z runs from 0 to 1.

``06_dual_function``: q(z) and q'(z) of three samples, with z* from both maximisers.
``06_step_cost``: seconds per prox step, the published-style torch implementation
(golden section, torch ops per evaluation of q) against the reduced closed form, at
MovieLens size (n = 2728, k = 20), against nnz.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from .. import cost, prox, testing
from ..prox.lecture import (
    COST_NNZ,
    OPTIMISER_FRACTIONS,
    QUOTED_NNZ,
    compare_with_optimiser,
    cost_ratios,
    latent_split,
    optimiser_cases,
    quoted_speedup,
    read_step_cost,
    worked_example,
)
from ..prox.published import PublishedProxTrainer
from ..registry import figure, save_png, write_csv

F64 = torch.float64


# --------------------------------------------------------------------------- q and q'

DUAL_EXAMPLES = (  # (label, y, nnz, scale, fraction of the exact bound, seed)
    ("y = +1, d = 11", 1, 11, 0.3, 0.9, 5),
    ("y = −1, d = 6", -1, 6, 0.5, 0.5, 2),
    ("y = +1, d = 3", 1, 3, 0.01, 0.5, 3),
)


def dual_rows(points: int = 199) -> list[dict]:
    """Rows ``{example, z, q, q_prime, z_newton, z_golden}`` on an interior grid of (0, 1)."""
    rows = []
    for name, y, nnz, scale, fraction, seed in DUAL_EXAMPLES:
        idx, w0, w, V = testing.random_prox_case(20, 5, nnz, scale, seed)
        eta = testing.eta_below(nnz, y, fraction)
        label = f"{name}, η = {eta:.3g} ({fraction:g} × bound), V entries ~ {scale:g}"
        s = prox.sample_scalars(idx, w0, w, V)
        z_newton, z_golden = prox.maximise_q_newton(s, y, eta), prox.maximise_q_golden(s, y, eta)
        for z in np.linspace(0.0, 1.0, points + 2)[1:-1]:
            rows.append(
                {
                    "example": label,
                    "z": float(z),
                    "q": prox.q_reduced(float(z), s, y, eta),
                    "q_prime": prox.q_prime(float(z), s, y, eta),
                    "z_newton": z_newton,
                    "z_golden": z_golden,
                }
            )
    return rows


def plot_dual(rows: list[dict]) -> Figure:
    """One column per example: q(z) with its maximiser (top) and q'(z) crossing zero there (bottom).

    Each panel's y-range is fitted to its own curve over the whole of (0, 1); q' → ±∞ at z = 0
    and 1, so its axis shows the 2nd to 98th percentile of the plotted values, as the panel says.
    """
    examples = list(dict.fromkeys(r["example"] for r in rows))
    fig, axes = plt.subplots(2, len(examples), figsize=(4.2 * len(examples), 6.2), sharex=True)
    for col, label in enumerate(examples):
        sel = [r for r in rows if r["example"] == label]
        z = np.array([r["z"] for r in sel])
        q = np.array([r["q"] for r in sel])
        dq = np.array([r["q_prime"] for r in sel])
        z_star = sel[0]["z_newton"]
        q_star = float(np.interp(z_star, z, q))
        ax_q, ax_d = axes[0, col], axes[1, col]
        ax_q.plot(z, q, color=f"C{col}")
        ax_q.plot([z_star], [q_star], "o", color=f"C{col}", label=f"maximiser z* = {z_star:.3f}")
        ax_q.axvline(z_star, color="k", lw=0.6, ls=":")
        ax_q.set_title(label, fontsize=9)
        ax_q.set_ylabel("q(z)  (nats)")
        ax_q.legend(fontsize=8, loc="lower center")
        ax_d.plot(z, dq, color=f"C{col}")
        ax_d.plot([z_star], [0.0], "o", color=f"C{col}")
        ax_d.axhline(0.0, color="k", lw=0.8)
        low, high = np.percentile(dq, [2, 98])
        ax_d.set_ylim(low - 0.1 * (high - low), high + 0.1 * (high - low))
        ax_d.text(0.97, 0.95, "q' → ±∞ at z = 0, 1 (cut)", transform=ax_d.transAxes, ha="right", va="top", fontsize=7.5)
        ax_d.set_xlabel("dual variable z")
        ax_d.set_ylabel("q'(z)  (nats per unit of z)")
        for ax in (ax_q, ax_d):
            ax.grid(True, alpha=0.3)
    fig.suptitle("Each dual function q peaks once, where q' = −y ŷ(θ(z)) − log(z/(1−z)) crosses zero", fontsize=11)
    fig.tight_layout()
    return fig


@figure("06_dual_function")
def dual_figure(out_dir: Path) -> list[Path]:
    rows = dual_rows()
    return [
        write_csv(out_dir / "06_dual_function.csv", rows),
        save_png(plot_dual(rows), out_dir / "06_dual_function.png"),
    ]


# --------------------------------------------------------------------------- against a generic optimiser


# --------------------------------------------------------------------------- the split of V_t


def split_rows(points: int = 101) -> list[dict]:
    """Rows ``{z, v1, v2, lam_mean, lam_perp, z_star}``: V*(z) = M/λ_mean + P/λ_perp of the worked
    example (d = 2, k = 1, y = +1, η = 1/2, v_t = (1/2, 1)) for z from 0 to 1, with its step's z*."""
    idx, y, w0, w, V, eta = worked_example()
    z_star = prox.prox_step(idx, y, w0, w, V, eta).z
    M, P, _, _ = latent_split(V)
    rows = []
    for z in np.linspace(0.0, 1.0, points):
        lam_mean, lam_perp = prox.s_eigenvalues(2, eta, y, float(z))
        v_star = M / lam_mean + P / lam_perp
        rows.append(
            {
                "z": float(z),
                "v1": float(v_star[0, 0]),
                "v2": float(v_star[1, 0]),
                "lam_mean": lam_mean,
                "lam_perp": lam_perp,
                "z_star": z_star,
            }
        )
    return rows


def plot_split(rows: list[dict]) -> Figure:
    """The plane of (v1, v2): V_t, its parts M (along 1) and P (sum zero), and V*(z) for z in [0, 1]."""
    idx, y, w0, w, V, eta = worked_example()
    M, P, _, _ = latent_split(V)
    m = (float(M[0, 0]), float(M[1, 0]))
    vt = (float(V[0, 0]), float(V[1, 0]))
    z_star = rows[0]["z_star"]
    star = min(rows, key=lambda r: abs(r["z"] - z_star))
    lam_mean, lam_perp = prox.s_eigenvalues(2, eta, y, z_star)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    ax.plot(
        [-0.2, 2.0], [-0.2, 2.0], color="tab:gray", lw=0.8, ls="--", label="direction 1 = (1, 1): eigenvalue λ_mean"
    )
    ax.plot([0.2, 1.3], [1.3, 0.2], color="tab:gray", lw=0.8, ls=":", label="direction (1, −1): eigenvalue λ_⊥")
    ax.annotate("", xy=m, xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": "tab:blue", "lw": 1.5})
    ax.annotate("", xy=vt, xytext=m, arrowprops={"arrowstyle": "->", "color": "tab:orange", "lw": 1.5})
    ax.plot(*vt, "ko", label="V_t = (1/2, 1) = M + P")
    ax.plot([], [], color="tab:blue", label="M = mean row along 1 (m = C/d)")
    ax.plot([], [], color="tab:orange", label="P = V_t − M, sums to zero (p = A − C/d)")
    ax.plot(
        [r["v1"] for r in rows],
        [r["v2"] for r in rows],
        color="tab:green",
        lw=2,
        label="V*(z) = M/λ_mean + P/λ_⊥, z from 0 to 1",
    )
    ax.plot(star["v1"], star["v2"], "o", color="tab:green", ms=8, label=f"the step, z* = {z_star:.3f}")
    ax.annotate(
        f"M/λ_mean: M × {1 / lam_mean:.2f}\nP/λ_⊥: P × {1 / lam_perp:.2f}",
        (star["v1"], star["v2"]),
        xytext=(12, -30),
        textcoords="offset points",
        fontsize=8,
    )
    ax.set_xlim(-0.2, 2.0)
    ax.set_ylim(-0.2, 2.0)
    ax.set_aspect("equal")
    ax.set_xlabel("v1")
    ax.set_ylabel("v2")
    ax.set_title(
        "S(z)⁻¹ stretches the part along 1 by 1/λ_mean\nand shrinks the part that sums to zero by 1/λ_⊥", fontsize=10
    )
    ax.legend(fontsize=7.5, loc="upper left")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


@figure("06_split")
def split_figure(out_dir: Path) -> list[Path]:
    rows = split_rows()
    return [write_csv(out_dir / "06_split.csv", rows), save_png(plot_split(rows), out_dir / "06_split.png")]


# --------------------------------------------------------------------------- cost per step


def step_cost_rows(nnzs=COST_NNZ, n: int = 2728, k: int = 20, seed: int = 0, rounds: int = 9) -> list[dict]:
    """Rows ``{nnz, implementation, seconds}``: CPU seconds per step of each trainer on a fixed sample.

    ``published`` is :class:`fmedu.prox.published.PublishedProxTrainer` (corrected write, so it
    does the same work as the exact step); ``reduced`` is :class:`fmedu.prox.ProxTrainer`.
    Both at the published step size 1/(2·11 + 1) and MovieLens size (n = 2728, k = 20), labels
    alternating. :func:`fmedu.cost.best_times` groups calls into runs of at least 0.05 s, times
    the two alternately ``rounds`` times in CPU time of this process (time spent waiting for a
    busy CPU does not count) and keeps the best of each.
    """
    gen = torch.Generator().manual_seed(seed)
    w0 = torch.zeros((), dtype=F64)
    w = 0.01 * torch.randn(n, dtype=F64, generator=gen)
    V = 0.01 * torch.randn(n, k, dtype=F64, generator=gen)
    eta = prox.step_size_bound(11, "published")
    rows = []
    for nnz in nnzs:
        idx = torch.randperm(n, generator=gen)[:nnz]
        trainers: dict[str, PublishedProxTrainer | prox.ProxTrainer] = {
            "published": PublishedProxTrainer(w0, w, V, eta, fix_write=True),
            "reduced": prox.ProxTrainer(w0, w, V, eta),
        }
        labels = {name: itertools.cycle((1, -1)) for name in trainers}
        fns = {name: (lambda tr=tr, lb=labels[name]: tr.step(idx, next(lb))) for name, tr in trainers.items()}
        best = cost.best_times(fns, repeat=rounds, min_seconds=0.05, clock=time.process_time)
        rows += [{"nnz": nnz, "implementation": name, "seconds": best[name]} for name in trainers]
    return rows


def plot_step_cost(rows: list[dict]) -> Figure:
    """Left: CPU microseconds per step against d, both implementations. Right: their ratio per d,
    with the quoted value (d = 11) marked."""
    ratios = cost_ratios(rows)
    quoted = quoted_speedup(rows)
    fig, (ax, ax_r) = plt.subplots(1, 2, figsize=(10, 4))
    for name, marker, label in (
        ("published", "o", "published: golden section, torch ops per q"),
        ("reduced", "s", "reduced: three scalars + Newton"),
    ):
        sel = [r for r in rows if r["implementation"] == name]
        ax.plot([r["nnz"] for r in sel], [1e6 * r["seconds"] for r in sel], marker=marker, label=label)
    ax.set_yscale("log")
    ax.yaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlabel("d (non-zeros of the sample)")
    ax.set_ylabel("CPU microseconds per step (log scale)")
    ax.set_title("CPU time per step (best of 9 rounds)")
    ax.legend(fontsize=8, loc="center right")
    ax.grid(True, which="major", alpha=0.3)
    ds = list(ratios)
    ax_r.bar(ds, [ratios[d] for d in ds], color="tab:gray", width=1.2)
    ax_r.axhline(quoted, color="tab:red", ls="--", label=f"quoted: {quoted}× at d = {QUOTED_NNZ}")
    ax_r.set_ylim(0, 1.25 * max(ratios.values()))
    ax_r.set_xticks(ds)
    ax_r.set_xlabel("d (non-zeros of the sample)")
    ax_r.set_ylabel("published / reduced  (×)")
    ax_r.set_title("Speed-up per d")
    ax_r.legend(fontsize=8, loc="upper left")
    ax_r.grid(True, axis="y", alpha=0.3)
    fig.suptitle(
        f"One prox step at MovieLens size (n = 2728, k = 20, one thread): "
        f"the reduced step is {quoted}× faster at d = {QUOTED_NNZ}",
        fontsize=10.5,
    )
    fig.tight_layout()
    return fig


@figure("06_step_cost")
def step_cost_figure(out_dir: Path) -> list[Path]:
    rows = step_cost_rows()
    return [write_csv(out_dir / "06_step_cost.csv", rows), save_png(plot_step_cost(rows), out_dir / "06_step_cost.png")]


__all__ = [
    "split_rows",
    "plot_split",
    "DUAL_EXAMPLES",
    "dual_rows",
    "plot_dual",
    "OPTIMISER_FRACTIONS",
    "optimiser_cases",
    "compare_with_optimiser",
    "COST_NNZ",
    "step_cost_rows",
    "cost_ratios",
    "QUOTED_NNZ",
    "quoted_speedup",
    "read_step_cost",
    "plot_step_cost",
]
