"""Figures and demos of notebook 04 (the step-size convexity bound).

``04_min_eigenvalue``: η·λ_min of the Hessian of the prox subproblem φ(·, z) at y = +1, z = 1,
computed by autograd, against η, for several d; it reaches 0 at η = 1/(d−1).
``04_beyond_bound``: the closed-form q(z) (formula (C)) of one sample at η three times the
bound: a pole where S(z) is singular, and what the published golden-section search does there.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

import fmedu

from .. import prox, testing
from ..registry import figure, save_png, write_csv

DS = (2, 3, 6, 11)
F64 = torch.float64


def phi_hessian(d: int, k: int, y: int, eta: float, z: float) -> torch.Tensor:
    """Hessian of θ ↦ φ(θ, z) over the sample's coordinates (w0, w[idx], V[idx]), by autograd.

    φ is quadratic in θ, so the Hessian does not depend on θ or θ_t; we take θ_t random.
    Shape ``(1 + d + d·k, 1 + d + d·k)``.
    """
    gen = torch.Generator().manual_seed(d * 100 + k)
    anchor = torch.randn(1 + d + d * k, dtype=F64, generator=gen)

    local = torch.arange(d)  # the sample's rows, renumbered 0..d-1

    def phi(theta: torch.Tensor) -> torch.Tensor:
        y_hat = fmedu.predict_sparse(local, theta[0], theta[1 : 1 + d], theta[1 + d :].reshape(d, k), check=False)
        return -z * y * y_hat + (theta - anchor).square().sum() / (2 * eta)

    return torch.autograd.functional.hessian(phi, anchor.clone())


def min_eigenvalue_rows(ds=DS, k: int = 3, etas=None) -> list[dict]:
    """Rows ``{d, eta, scaled_min_eig, formula, published_bound, exact_bound}`` at y = +1, z = 1.

    ``scaled_min_eig`` is η·λ_min(∇²φ) from autograd + eigvalsh; ``formula`` is 1 − η(d−1).
    The η grid includes each d's exact bound 1/(d−1) and published bound 1/(2d+1).
    """
    grid = np.linspace(0.0, 1.2, 49)[1:] if etas is None else np.asarray(etas)
    rows = []
    for d in ds:
        exact = prox.step_size_bound(d, "exact", 1)
        published = prox.step_size_bound(d, "published")
        for eta in sorted(set(grid.tolist()) | {exact, published}):
            lam = float(torch.linalg.eigvalsh(phi_hessian(d, k, 1, eta, 1.0))[0])
            rows.append(
                {
                    "d": d,
                    "eta": eta,
                    "scaled_min_eig": eta * lam,
                    "formula": 1 - eta * (d - 1),
                    "published_bound": published,
                    "exact_bound": exact,
                }
            )
    return rows


def plot_min_eigenvalue(rows: list[dict]) -> Figure:
    """η·λ_min against η, one line per d; circles at the exact bound, crosses at the published one."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for d in sorted({r["d"] for r in rows}):
        sel = [r for r in rows if r["d"] == d]
        (line,) = ax.plot([r["eta"] for r in sel], [r["scaled_min_eig"] for r in sel], label=f"d = {d}")
        exact, published = sel[0]["exact_bound"], sel[0]["published_bound"]
        ax.plot([exact], [0.0], "o", color=line.get_color(), mfc="none")
        ax.plot([published], [1 - published * (d - 1)], "x", color=line.get_color())
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel("η (step size)")
    ax.set_ylabel("η · smallest eigenvalue of ∇²φ(·, z=1)")
    ax.set_title("Prox subproblem convexity, y = +1, z = 1\n○ exact bound 1/(d−1)   × published 1/(2d+1)")
    ax.set_ylim(-1.5, 1.1)
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


@figure("04_min_eigenvalue")
def min_eigenvalue_figure(out_dir: Path) -> list[Path]:
    rows = min_eigenvalue_rows()
    return [
        write_csv(out_dir / "04_min_eigenvalue.csv", rows),
        save_png(plot_min_eigenvalue(rows), out_dir / "04_min_eigenvalue.png"),
    ]


# --------------------------------------------------------------------------- beyond the bound


def beyond_bound_case(
    d: int = 11, k: int = 4, scale: float = 0.3, seed: int = 6
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A sample with ``d`` ones and random parameters (n = 15): ``(idx, w0, w, V)``."""
    return testing.random_prox_case(15, k, d, scale, seed)


def multistart_minimum(idx, y, w0, w, V, eta, starts: int = 12, seed: int = 0) -> prox.ProxResult:
    """Lowest F found by L-BFGS-B from θ_t and from random perturbations of it (F may be non-convex)."""
    rng = np.random.default_rng(seed)
    best: prox.ProxResult | None = None
    best_F = math.inf
    for s in range(starts):
        spread = (0.0, 0.3, 1.0, 3.0)[s % 4]
        start = (
            w0 + spread * float(rng.normal()),
            w + spread * torch.as_tensor(rng.normal(size=w.shape)),
            V + spread * torch.as_tensor(rng.normal(size=V.shape)),
        )
        r = prox.minimise_numerically(idx, y, w0, w, V, eta, start=start, gtol=1e-12)
        F = float(prox.prox_objective(idx, y, r.w0, r.w, r.V, eta, w0, w, V))
        if F < best_F:
            best, best_F = r, F
    assert best is not None  # starts >= 1
    return best


def unbounded_direction_values(idx, y, w0, w, V, eta, z, steps=(0, 1, 10, 100, 1000)) -> list[float]:
    """φ(θ_t + s·(1 ⊗ e_1 on V[idx]), z) for growing s: → −∞ when z is past the pole."""
    direction = torch.zeros_like(V)
    direction[idx, 0] = 1.0  # every v_i moves along the first axis: the eigenvector 1 of S
    out = []
    for s in steps:
        Vs = V + s * direction
        y_hat = fmedu.predict_sparse(idx, w0, w, Vs)
        out.append(float(-z * y * y_hat + (Vs - V).square().sum() / (2 * eta) - prox.conjugate(z)))
    return out


def beyond_bound_rows(eta: float = 0.3, y: int = 1, points: int = 400) -> list[dict]:
    """Rows ``{z, q_closed_form, q_true}`` for :func:`beyond_bound_case` at η past the bound.

    ``q_closed_form`` is formula (C) evaluated blindly; ``q_true`` = min_θ φ(θ, z) equals it
    below the pole and is −∞ above it (written as NaN in the CSV).
    """
    idx, w0, w, V = beyond_bound_case()
    s = prox.sample_scalars(idx, w0, w, V)
    z_pole = 1.0 / (eta * (s.d - 1)) if y > 0 else 1.0 / eta
    rows = []
    for z in np.linspace(0.0, 1.0, points + 1)[1:-1]:
        closed = prox.q_reduced(float(z), s, y, eta)
        rows.append(
            {"z": float(z), "q_closed_form": closed, "q_true": closed if z < z_pole else float("nan"), "z_pole": z_pole}
        )
    return rows


def plot_beyond_bound(rows: list[dict], z_golden: float, z_dual: float) -> Figure:
    """Closed-form q against z with the pole, the golden-section answer and the true maximiser."""
    fig, ax = plt.subplots(figsize=(6, 4))
    z = [r["z"] for r in rows]
    ax.plot(z, [r["q_closed_form"] for r in rows], lw=1, label="closed-form q (formula C, blind)")
    ax.plot(z, [r["q_true"] for r in rows], lw=2.5, alpha=0.6, label="true q (−∞ past the pole)")
    z_pole = rows[0]["z_pole"]
    ax.axvline(z_pole, color="r", ls=":", label=f"pole z = 1/(η(d−1)) = {z_pole:.3f}")
    ax.axvspan(z_pole, 1.0, color="r", alpha=0.07)
    ax.axvline(z_golden, color="k", ls="--", lw=0.8, label=f"golden section → z = {z_golden:.4f}")
    ax.plot(
        [z_dual],
        [next(r["q_closed_form"] for r in rows if r["z"] >= z_dual)],
        "o",
        color="g",
        label=f"max of the true q, z* = {z_dual:.4f}",
    )
    finite = [r["q_true"] for r in rows if not math.isnan(r["q_true"])]
    top = max(finite)
    ax.set_ylim(top - 4 * (top - min(finite[: len(finite) // 2 + 1])) - 1, top + 3)
    ax.set_xlabel("z")
    ax.set_ylabel("q(z)")
    ax.set_title("Beyond the bound: d = 11, η = 0.3 (3× the bound), y = +1")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


@figure("04_beyond_bound")
def beyond_bound_figure(out_dir: Path) -> list[Path]:
    eta = 0.3
    rows = beyond_bound_rows(eta)
    idx, w0, w, V = beyond_bound_case()
    z_golden = prox.prox_step(idx, 1, w0, w, V, eta, solver="golden", allow_beyond_bound=True).z
    z_dual = prox.prox_step(idx, 1, w0, w, V, eta, allow_beyond_bound=True).z
    return [
        write_csv(out_dir / "04_beyond_bound.csv", rows),
        save_png(plot_beyond_bound(rows, z_golden, z_dual), out_dir / "04_beyond_bound.png"),
    ]


__all__ = [
    "phi_hessian",
    "min_eigenvalue_rows",
    "plot_min_eigenvalue",
    "beyond_bound_case",
    "multistart_minimum",
    "unbounded_direction_values",
    "beyond_bound_rows",
    "plot_beyond_bound",
]
