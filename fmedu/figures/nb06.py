"""Figures and demos of notebook 05 (the Sherman–Morrison prox solve).

``06_dual_function``: q(z) and q'(z) of three samples, with z* from both maximisers.
``06_step_cost``: seconds per prox step, the published-style torch implementation
(golden section, torch ops per evaluation of q) against the reduced closed form, at
MovieLens size (n = 2728, k = 20), against nnz.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from .. import cost, prox, testing
from ..prox.published import PublishedProxTrainer
from ..registry import figure, save_png, write_csv

F64 = torch.float64


# --------------------------------------------------------------------------- q and q'

DUAL_EXAMPLES = (  # (label, y, nnz, scale, fraction of the exact bound, seed)
    ("y = +1, d = 11, η = 0.9·bound", 1, 11, 0.5, 0.9, 1),
    ("y = −1, d = 6, η = 0.5", -1, 6, 0.5, 0.5, 2),
    ("y = +1, d = 3, small V", 1, 3, 0.01, 0.5, 3),
)


def dual_rows(points: int = 199) -> list[dict]:
    """Rows ``{example, z, q, q_prime, z_newton, z_golden}`` on an interior grid of (0, 1)."""
    rows = []
    for label, y, nnz, scale, fraction, seed in DUAL_EXAMPLES:
        idx, w0, w, V = testing.random_prox_case(20, 5, nnz, scale, seed)
        eta = testing.eta_below(nnz, y, fraction)
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

    Each q panel has its own y-range around the peak; where a curve leaves it (the first example
    falls to about −42 at z = 1), an arrow states the value it reaches. q' → ±∞ at z = 0 and 1;
    its axis is cut at ±15, as the panel says.
    """
    examples = list(dict.fromkeys(r["example"] for r in rows))
    fig, axes = plt.subplots(2, len(examples), figsize=(4.0 * len(examples), 6.4), sharex=True)
    cut = 15.0
    for col, label in enumerate(examples):
        sel = [r for r in rows if r["example"] == label]
        z = np.array([r["z"] for r in sel])
        q = np.array([r["q"] for r in sel])
        z_star = sel[0]["z_newton"]
        q_star = float(np.interp(z_star, z, q))
        ax_q, ax_d = axes[0, col], axes[1, col]
        ax_q.plot(z, q, color=f"C{col}")
        ax_q.plot([z_star], [q_star], "o", color=f"C{col}", label=f"maximiser z* = {z_star:.3f}")
        ax_q.axvline(z_star, color="k", lw=0.6, ls=":")
        rise = max(q_star - q[0], q_star - q[-1] if q[-1] > q_star - 4 * (q_star - q[0]) else 0.0, 0.05)
        low = max(float(q.min()), q_star - 4 * rise) - 0.1 * rise
        ax_q.set_ylim(low, q_star + 0.6 * rise)
        if q.min() < low:  # the curve leaves the panel: say where it goes
            leave = float(z[np.argmax(q < low)])
            ax_q.annotate(
                f"↓ axis cut: q falls to {q[-1]:.0f} at z = 1",
                (leave, low),
                xytext=(8, 14),
                textcoords="offset points",
                fontsize=8,
            )
        ax_q.set_title(label, fontsize=10)
        ax_q.set_ylabel("q(z)  (nats)")
        ax_q.legend(fontsize=8, loc="upper right")
        ax_d.plot(z, [r["q_prime"] for r in sel], color=f"C{col}")
        ax_d.plot([z_star], [0.0], "o", color=f"C{col}")
        ax_d.axhline(0.0, color="k", lw=0.8)
        ax_d.set_ylim(-cut, cut)
        ax_d.text(
            0.98,
            0.96,
            f"axis cut at ±{cut:g}:\nq' → ±∞ at z = 0, 1",
            transform=ax_d.transAxes,
            ha="right",
            va="top",
            fontsize=7.5,
        )
        ax_d.set_xlabel("dual variable z")
        ax_d.set_ylabel("q'(z)  (nats)")
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


def optimiser_cases(count: int = 132, seed: int = 0) -> list[dict]:
    """Cases covering both labels, 1 to 11 non-zeros, k ∈ {3, 20}, V scale ∈ {0.01, 1, 3} and
    η ∈ {0.1, 0.5, 0.9, 0.999} × the exact bound (capped at 2 where the bound is infinite)."""
    rng = np.random.default_rng(seed)
    cases = []
    for c in range(count):
        y = 1 if c % 2 == 0 else -1
        nnz = 1 + (c // 2) % 11
        cases.append(
            {
                "case": c,
                "y": y,
                "nnz": nnz,
                "k": (3, 20)[(c // 22) % 2],
                "scale": (0.01, 1.0, 3.0)[(c // 44) % 3],
                "fraction": (0.1, 0.5, 0.9, 0.999)[c % 4],
                "seed": int(rng.integers(1 << 30)),
            }
        )
    return cases


def compare_with_optimiser(cases: list[dict], n: int = 30) -> list[dict]:
    """For each case: the closed-form step, L-BFGS-B's minimiser of F, their largest coordinate
    difference (absolute, and relative to 1 + the largest parameter), both KKT residuals, the
    KKT tolerance of :func:`fmedu.testing.kkt_tolerance`, and whether η exceeds the published bound."""
    rows = []
    for c in cases:
        idx, w0, w, V = testing.random_prox_case(n, c["k"], c["nnz"], c["scale"], c["seed"])
        eta = testing.eta_below(c["nnz"], c["y"], c["fraction"])
        ours = prox.prox_step(idx, c["y"], w0, w, V, eta)
        theirs = prox.minimise_numerically(idx, c["y"], w0, w, V, eta)
        diff = max(float((a - b).abs().max()) for a, b in zip(ours[:3], theirs[:3]))
        size = 1 + max(float(t.abs().max()) for t in ours[:3])
        rows.append(
            {
                **c,
                "eta": eta,
                "above_published": eta > prox.step_size_bound(c["nnz"], "published"),
                "z": ours.z,
                "max_abs_diff": diff,
                "max_rel_diff": diff / size,
                "kkt_closed_form": prox.kkt_residual(ours, idx, c["y"], w0, w, V, eta),
                "kkt_optimiser": prox.kkt_residual(theirs, idx, c["y"], w0, w, V, eta),
                "kkt_tolerance": testing.kkt_tolerance(V[idx], eta),
            }
        )
    return rows


# --------------------------------------------------------------------------- cost per step

COST_NNZ = (2, 4, 6, 8, 11)


def step_cost_rows(nnzs=COST_NNZ, n: int = 2728, k: int = 20, seed: int = 0, rounds: int = 7) -> list[dict]:
    """Rows ``{nnz, implementation, seconds}``: one step of each trainer on a fixed sample.

    ``published`` is :class:`fmedu.prox.published.PublishedProxTrainer` (corrected write, so it
    does the same work as the exact step); ``reduced`` is :class:`fmedu.prox.ProxTrainer`.
    Both at the published step size 1/(2·11 + 1) and MovieLens size (n = 2728, k = 20). The two
    are timed alternately, ``rounds`` times each, and the best of each is kept, so that a busy
    machine slows both alike.
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
        best = dict.fromkeys(trainers, float("inf"))
        for _ in range(rounds):
            for name, trainer in trainers.items():
                labels = itertools.cycle((1, -1))
                seconds = cost.best_time(lambda: trainer.step(idx, next(labels)), repeat=1)
                best[name] = min(best[name], seconds)
        rows += [{"nnz": nnz, "implementation": name, "seconds": best[name]} for name in trainers]
    return rows


def cost_ratios(rows: list[dict]) -> dict[int, float]:
    """published seconds / reduced seconds, per nnz."""
    by = {(r["nnz"], r["implementation"]): r["seconds"] for r in rows}
    return {nnz: by[(nnz, "published")] / by[(nnz, "reduced")] for nnz in sorted({r["nnz"] for r in rows})}


def plot_step_cost(rows: list[dict]) -> Figure:
    """Seconds per step against nnz for both implementations (log y: they differ by over 10×)."""
    ratios = cost_ratios(rows)
    fig, ax = plt.subplots(figsize=(5.8, 4))
    for name, marker, label in (
        ("published", "o", "published: golden section, torch ops per q"),
        ("reduced", "s", "reduced closed form + Newton"),
    ):
        sel = [r for r in rows if r["implementation"] == name]
        ax.semilogy([r["nnz"] for r in sel], [r["seconds"] for r in sel], marker=marker, label=label)
    ax.set_xlabel("d = nnz (non-zeros of the sample)")
    ax.set_ylabel("seconds per prox step (log scale)")
    low, high = min(ratios.values()), max(ratios.values())
    ax.set_title(f"One prox step (n = 2728, k = 20, one thread):\nthe reduced step is {low:.0f}–{high:.0f}× faster")
    ax.legend(fontsize=8, loc="center right")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


@figure("06_step_cost")
def step_cost_figure(out_dir: Path) -> list[Path]:
    rows = step_cost_rows()
    return [write_csv(out_dir / "06_step_cost.csv", rows), save_png(plot_step_cost(rows), out_dir / "06_step_cost.png")]
