"""Figures and demos of chapter 05 (the step-size bound of stochastic proximal point).

``05_saddle``: φ(θ, z) of the worked example (d = 2, k = 1) on the line through its step: a
saddle, the two players' best answers crossing at (θ_{t+1}, z*).

``05_one_parameter``: SGD against the proximal step on the bias-only logistic model ŷ = w0 with
alternating labels: both settle into a two-step swing ±a; SGD's a solves 2a = ησ(a) (about η/2),
the prox step's 2a = ησ(−a) (below log η for η ≥ 2).
``05_min_eigenvalue``: η·λ_min of the Hessian of the prox subproblem φ(·, z) at y = +1, z = 1,
computed by autograd, against η, for several d; it reaches 0 at η = 1/(d−1).
``05_beyond_bound``: the closed-form q(z) (formula (C)) of one sample at η three times the
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
from ..losses import logistic_loss_derivative
from ..prox.lecture import line_phi, saddle_rows, worked_example
from ..prox.scalar import sigmoid
from ..registry import figure, save_png, write_csv

DS = (2, 3, 6, 11)
F64 = torch.float64

# --------------------------------------------------------------------------- one parameter

NO_FEATURES = torch.zeros(0, dtype=torch.int64)  # a sample with no active feature: ŷ = w0
SWING_ETAS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)


def bias_only_step(method: str, w0: float, y: int, eta: float) -> float:
    """One step on the model ŷ = w0 with label y: ``"sgd"`` (w0 − η ℓ'(w0)) or ``"prox"``.

    The prox step is :func:`fmedu.prox.prox_step` on a sample with no active feature, where
    the FM reduces to its global bias (one unused feature keeps the shapes valid).
    """
    if method == "sgd":
        slope = logistic_loss_derivative(torch.tensor(w0, dtype=F64), torch.tensor(float(y), dtype=F64))
        return w0 - eta * float(slope)
    w, V = torch.zeros(1, dtype=F64), torch.zeros(1, 1, dtype=F64)
    return float(prox.prox_step(NO_FEATURES, y, torch.tensor(w0, dtype=F64), w, V, eta).w0)


def one_parameter_path(method: str, eta: float, steps: int = 400) -> list[float]:
    """w0 after each step, from w0 = 0, on the labels +1, −1, +1, … (a balanced data set)."""
    w0, path = 0.0, []
    for t in range(steps):
        w0 = bias_only_step(method, w0, 1 if t % 2 == 0 else -1, eta)
        path.append(w0)
    return path


def swing_amplitude(method: str, eta: float) -> float:
    """The swing a of the two-step cycle −a → +a → −a: root of 2a = ησ(a) (SGD) or 2a = ησ(−a) (prox).

    From −a, a +1 sample moves SGD by η·σ(a) (the slope at the start) and the prox step by
    η·σ(−a') (the slope at the arrival point a' = +a). Bisection to rounding level.
    """
    sign = 1.0 if method == "sgd" else -1.0
    lo, hi = 0.0, eta  # g(0) < 0 < g(η) for g(a) = 2a − ησ(±a)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 2 * mid - eta * sigmoid(sign * mid) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def swing_rows(etas=SWING_ETAS, steps: int = 400) -> list[dict]:
    """Rows ``{eta, method, simulated, fixed_point}``: the last swing max(|w0|) of the last two
    steps of :func:`one_parameter_path` and the root of :func:`swing_amplitude`."""
    rows = []
    for eta in etas:
        for method in ("sgd", "prox"):
            path = one_parameter_path(method, eta, steps)
            rows.append(
                {
                    "eta": eta,
                    "method": method,
                    "simulated": max(abs(path[-1]), abs(path[-2])),
                    "fixed_point": swing_amplitude(method, eta),
                }
            )
    return rows


def plot_one_parameter(eta: float, paths: dict[str, list[float]], rows: list[dict]) -> Figure:
    """Left: w0 over the first steps at one η. Right: the swing against η, both methods (log-log)."""
    fig, (ax_path, ax_swing) = plt.subplots(1, 2, figsize=(10, 3.9))
    styles = {"sgd": ("tab:red", "SGD (slope at the start)"), "prox": ("tab:blue", "proximal step (slope at the end)")}
    for method, path in paths.items():
        color, label = styles[method]
        ax_path.plot(range(1, len(path) + 1), path, "o-", ms=3, color=color, label=label)
    ax_path.axhline(0.0, color="k", lw=0.8, ls=":", label="best w0 = 0")
    ax_path.set_xlabel("step t (labels +1, −1, +1, …)")
    ax_path.set_ylabel("w0 after step t")
    ax_path.set_title(f"η = {eta:g}: SGD swings by ±{max(abs(v) for v in paths['sgd']):.0f}")
    top = max(abs(v) for path in paths.values() for v in path)
    ax_path.set_ylim(-1.25 * top, 1.9 * top)  # room above the data for the legend
    ax_path.legend(fontsize=8, loc="upper center", ncol=2)
    fine = np.geomspace(min(r["eta"] for r in rows), max(r["eta"] for r in rows), 200)
    for method in ("sgd", "prox"):
        color, label = styles[method]
        ax_swing.plot(fine, [swing_amplitude(method, e) for e in fine], color=color, label=f"{label}: fixed point")
        sel = [r for r in rows if r["method"] == method]
        ax_swing.plot([r["eta"] for r in sel], [r["simulated"] for r in sel], "o", color=color, mfc="none")
    ax_swing.plot(fine, fine / 2, "k--", lw=0.8, label="η/2")
    big = fine[fine >= 2]
    ax_swing.plot(big, np.log(big), "k:", lw=1.2, label="log η (η ≥ 2)")
    ax_swing.set_xscale("log")
    ax_swing.set_yscale("log")
    ax_swing.set_xlabel("step size η (log scale: η spans three decades)")
    ax_swing.set_ylabel("swing a of w0 (log scale)")
    ax_swing.set_title("The swing grows like η/2 for SGD, below log η for prox\n(○ measured after 400 steps)")
    ax_swing.legend(fontsize=8, loc="upper left")
    for ax in (ax_path, ax_swing):
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


@figure("05_one_parameter")
def one_parameter_figure(out_dir: Path) -> list[Path]:
    rows = swing_rows()
    paths = {m: one_parameter_path(m, 50.0, 12) for m in ("sgd", "prox")}
    return [
        write_csv(out_dir / "05_one_parameter.csv", rows),
        save_png(plot_one_parameter(50.0, paths, rows), out_dir / "05_one_parameter.png"),
    ]


# --------------------------------------------------------------------------- the saddle


def plot_saddle(rows: list[dict]) -> Figure:
    """Left: contours of φ(θ_s, z) with both players' best answers crossing at the saddle (1, z*).
    Right: the two slices through the saddle, convex in s and concave in z, meeting at one value."""
    s_values = np.array(sorted({r["s"] for r in rows}))
    z_values = np.array(sorted({r["z"] for r in rows}))
    grid = np.array([[r["phi"] for r in rows if r["z"] == z] for z in z_values])
    z_star = rows[0]["z_star"]
    fig, (ax, ax_s, ax_z) = plt.subplots(1, 3, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1.5, 1, 1]})
    cs = ax.contourf(s_values, z_values, grid, levels=20, cmap="viridis")
    fig.colorbar(cs, ax=ax, label="φ(θ_s, z)  (nats)")
    s_best = [next(r["s_best"] for r in rows if r["z"] == z) for z in z_values]
    z_best = [next(r["z_best"] for r in rows if r["s"] == s) for s in s_values]
    ax.plot(s_best, z_values, color="k", lw=2, label="best s for each z (min over θ)")
    ax.plot(s_values, z_best, color="tab:orange", lw=2, ls="--", label="best z for each s (max over z)")
    ax.plot([1.0], [z_star], "o", color="r", ms=8, label=f"saddle: s = 1, z* = {z_star:.3f}")
    ax.set_xlabel("s  (θ_s = θ_t + s·(θ_{t+1} − θ_t); s = 1 is the step)", fontsize=9)
    ax.set_ylabel("dual variable z")
    ax.set_xlim(s_values[0], s_values[-1])
    ax.set_ylim(z_values[0], z_values[-1])
    ax.set_title("φ on a line through the step: a saddle")
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    phi_line, *_ = line_phi(s_values, [z_star])
    phi_col, *_ = line_phi([1.0], z_values)
    value = float(line_phi([1.0], [z_star])[0][0, 0])
    ax_s.plot(s_values, phi_line[0], color="tab:blue")
    ax_s.plot([1.0], [value], "o", color="r")
    ax_s.set_xlabel("s  (z fixed at z*)")
    ax_s.set_ylabel("φ  (nats)")
    ax_s.set_title("convex in θ: minimum at s = 1")
    ax_z.plot(z_values, phi_col[:, 0], color="tab:orange")
    ax_z.plot([z_star], [value], "o", color="r")
    ax_z.set_xlabel("z  (θ fixed at θ_{t+1})")
    ax_z.set_title("concave in z: maximum at z*")
    for a_ in (ax_s, ax_z):
        a_.axhline(value, color="k", lw=0.6, ls=":")
        a_.grid(True, alpha=0.3)
    fig.suptitle(
        "d = 2, k = 1: the step is the saddle point of φ, min over θ and max over z meet at one value",
        fontsize=11,
    )
    fig.tight_layout()
    return fig


@figure("05_saddle")
def saddle_figure(out_dir: Path) -> list[Path]:
    rows = saddle_rows()
    return [write_csv(out_dir / "05_saddle.csv", rows), save_png(plot_saddle(rows), out_dir / "05_saddle.png")]


# --------------------------------------------------------------------------- the Hessian of φ


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


def min_eigenvalue_rows(ds=DS, k: int = 3, points: int = 25) -> list[dict]:
    """Rows ``{d, eta, scaled_min_eig, formula, published_bound, exact_bound}`` at y = +1, z = 1.

    ``scaled_min_eig`` is η·λ_min(∇²φ) from autograd + eigvalsh; ``formula`` is 1 − η(d−1).
    For each d the η grid runs to 1.25 × its exact bound 1/(d−1) and contains that bound and
    the published 1/(2d+1).
    """
    rows = []
    for d in ds:
        exact = prox.step_size_bound(d, "exact", 1)
        published = prox.step_size_bound(d, "published")
        grid = np.linspace(0.0, 1.25 * exact, points + 1)[1:]
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
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for d in sorted({r["d"] for r in rows}):
        sel = [r for r in rows if r["d"] == d]
        (line,) = ax.plot([r["eta"] for r in sel], [r["scaled_min_eig"] for r in sel], label=f"d = {d}")
        exact, published = sel[0]["exact_bound"], sel[0]["published_bound"]
        ax.plot([exact], [0.0], "o", color=line.get_color(), mfc="none", ms=8)
        ax.plot([published], [1 - published * (d - 1)], "x", color=line.get_color(), ms=8)
    ax.plot([], [], "ko", mfc="none", label="exact bound 1/(d−1)")
    ax.plot([], [], "kx", label="published 1/(2d+1)")
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel("step size η")
    ax.set_ylabel("η × smallest eigenvalue of ∇²φ(·, z = 1)")
    ax.set_title("Convexity is lost exactly at η = 1/(d − 1)  (y = +1, z = 1, autograd Hessian)")
    ax.legend(fontsize=8, loc="upper right", ncol=2)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


@figure("05_min_eigenvalue")
def min_eigenvalue_figure(out_dir: Path) -> list[Path]:
    rows = min_eigenvalue_rows()
    return [
        write_csv(out_dir / "05_min_eigenvalue.csv", rows),
        save_png(plot_min_eigenvalue(rows), out_dir / "05_min_eigenvalue.png"),
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
    assert best is not None  # at least one start ran
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


def prox_objective_min_eig(idx, y, w0, w, V, eta, w0_at: float) -> float:
    """Smallest eigenvalue of the Hessian of the prox objective F (autograd) over the sample's
    coordinates (w0, w[idx], V[idx]), at θ_t with the global bias moved to ``w0_at``."""
    k, d = V.shape[1], idx.numel()

    def F_flat(theta):
        w_at, V_at = w.clone(), V.clone()
        w_at[idx] = theta[1 : 1 + d]
        V_at[idx] = theta[1 + d :].reshape(d, k)
        return prox.prox_objective(idx, y, theta[0], w_at, V_at, eta, w0, w, V)

    theta = torch.cat([torch.tensor([w0_at], dtype=F64), w[idx], V[idx].reshape(-1)])
    return float(torch.linalg.eigvalsh(torch.autograd.functional.hessian(F_flat, theta))[0])


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
    """Closed-form q against z with the pole, the golden-section answer and the true maximiser.

    The closed form tends to −∞ left of the pole and +∞ right of it; the y-axis is cut and the
    cut is marked with arrows.
    """
    fig, ax = plt.subplots(figsize=(6.8, 5.6))
    z = [r["z"] for r in rows]
    ax.plot(z, [r["q_closed_form"] for r in rows], lw=1, label="closed-form q, applied blindly")
    ax.plot(z, [r["q_true"] for r in rows], lw=2.5, alpha=0.6, label="true q = min φ(·, z) (−∞ past the pole)")
    z_pole = rows[0]["z_pole"]
    ax.axvline(z_pole, color="r", ls=":", label=f"pole z = 1/(η(d−1)) = {z_pole:.3f}")
    ax.axvspan(z_pole, 1.0, color="r", alpha=0.07)
    ax.plot(
        [z_dual],
        [next(r["q_closed_form"] for r in rows if r["z"] >= z_dual)],
        "o",
        color="g",
        label=f"maximiser of the true q, z* = {z_dual:.4f}",
    )
    finite = [r["q_true"] for r in rows if not math.isnan(r["q_true"])]
    top = max(finite)
    low, high = top - 4 * (top - min(finite[: len(finite) // 2 + 1])) - 1, top + 3
    ax.set_ylim(low, high)
    ax.plot(
        [z_golden],
        [low],
        marker="^",
        ls="none",
        ms=11,
        color="k",
        clip_on=False,
        zorder=5,
        label=f"golden section over [0, 1] ends at z = {z_golden:.4f}, on the pole",
    )
    ax.annotate(
        "↓ −∞ at the pole (cut)",
        (z_pole - 0.01, low),
        xytext=(-4, 8),
        textcoords="offset points",
        ha="right",
        va="bottom",
        fontsize=8,
    )
    ax.annotate(
        "↑ +∞ at the pole (cut)",
        (z_pole + 0.01, high),
        xytext=(4, -8),
        textcoords="offset points",
        ha="left",
        va="top",
        fontsize=8,
    )
    ax.set_xlabel("dual variable z")
    ax.set_ylabel("q(z)  (nats)")
    ax.set_title(
        "η = 0.3, three times the bound (d = 11, y = +1):\ngolden section stops at the pole, not at the maximiser"
    )
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


@figure("05_beyond_bound")
def beyond_bound_figure(out_dir: Path) -> list[Path]:
    eta = 0.3
    rows = beyond_bound_rows(eta)
    idx, w0, w, V = beyond_bound_case()
    z_golden = prox.prox_step(idx, 1, w0, w, V, eta, solver="golden", allow_beyond_bound=True).z
    z_dual = prox.prox_step(idx, 1, w0, w, V, eta, allow_beyond_bound=True).z
    return [
        write_csv(out_dir / "05_beyond_bound.csv", rows),
        save_png(plot_beyond_bound(rows, z_golden, z_dual), out_dir / "05_beyond_bound.png"),
    ]


__all__ = [
    "worked_example",
    "saddle_rows",
    "plot_saddle",
    "NO_FEATURES",
    "bias_only_step",
    "one_parameter_path",
    "swing_amplitude",
    "swing_rows",
    "plot_one_parameter",
    "phi_hessian",
    "min_eigenvalue_rows",
    "plot_min_eigenvalue",
    "beyond_bound_case",
    "multistart_minimum",
    "unbounded_direction_values",
    "prox_objective_min_eig",
    "beyond_bound_rows",
    "plot_beyond_bound",
]
