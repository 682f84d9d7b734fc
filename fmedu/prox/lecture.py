"""Derivation helpers of the lectures on the prox step (chapters 05 and 06).

Each helper sets up one step of a chain derived on the page, so that the chapter can check it
against sympy or autograd; none of them is needed to take a step. Kept apart from the step
itself (``fmedu.prox.step``, ``fmedu.prox.dual``) so that the lectures can change without
touching the library.

* :func:`hessian_entries_match` — chapter 05, (5.5): ∂²φ/∂v_if∂v_jg = δ_fg(δ_ij/η − zy(1 − δ_ij)),
  i.e. the V-Hessian is (1/η) S(z) ⊗ I_k.
* :func:`strong_convexity` and :func:`optimiser_gap_bound` — chapter 06: the derived tolerance
  for the closed-form step against a generic optimiser, ‖θ − θ*‖ ≤ ‖∇F(θ)‖₂/μ.
* :func:`latent_split` — chapter 06, (6.4): V_t split along 1 and its complement.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import sympy as sp
import torch
from torch import Tensor

from ..model import predict_sparse
from .bounds import s_eigenvalues, step_size_bound
from .reference import kkt_residual, minimise_numerically
from .scalar import sigmoid
from .step import prox_step
from .symbolic import sym_latent_part, sym_s_matrix

F64 = torch.float64


def _testing():
    from .. import testing  # late: fmedu.testing imports the prox package lazily too

    return testing


__all__ = [
    "hessian_entries_match",
    "strong_convexity",
    "optimiser_gap_bound",
    "latent_split",
    "worked_example",
    "line_phi",
    "saddle_rows",
    "OPTIMISER_FRACTIONS",
    "optimiser_cases",
    "compare_with_optimiser",
    "COST_NNZ",
    "cost_ratios",
    "QUOTED_NNZ",
    "quoted_speedup",
    "read_step_cost",
]


def hessian_entries_match(d: int, k: int, y: int) -> tuple[bool, bool]:
    """Chapter 05, (5.5): sympy's V-Hessian of the latent part against the entry formula and the
    Kronecker form.

    Returns ``(entries, kronecker)``: every entry ∂²φ/∂v_if∂v_jg equals
    δ_fg(δ_ij/η − zy(1 − δ_ij)); and the whole matrix equals (1/η) S(z) ⊗ I_k with V flattened
    row-major (row (i, f) at position i·k + f).
    """
    part, V, _, z, eta = sym_latent_part(d, k, y)
    H = sp.hessian(part, list(V))

    def formula(i: int, f: int, j: int, g: int) -> sp.Expr:
        if f != g:
            return sp.Integer(0)
        return 1 / eta if i == j else -z * y

    entries = all(
        sp.simplify(H[i * k + f, j * k + g] - formula(i, f, j, g)) == 0
        for i in range(d)
        for f in range(k)
        for j in range(d)
        for g in range(k)
    )
    kron = sp.kronecker_product(sym_s_matrix(d, eta * y * z) / eta, sp.eye(k))
    return entries, bool(sp.simplify(H - kron).is_zero_matrix)


def strong_convexity(d: int, eta: float, y: int) -> float:
    """Chapter 06: μ with ∇²F ⪰ μ I for the prox objective F of a sample with d ones, below the bound.

    ∇²F = σ'·∇ŷ∇ŷᵀ + ∇²_θ φ(θ, z(θ)) with z(θ) ∈ (0, 1), and ∇²_θ φ has the eigenvalues 1/η
    (biases) and λ(S(z))/η (latent part, (5.5)); the smallest over z ∈ [0, 1] is at z = 1.
    """
    low = min(s_eigenvalues(d, eta, y, 1.0)) if d >= 2 else 1.0
    return min(1.0, low) / eta


def optimiser_gap_bound(d: int, k: int, eta: float, y: int, kkt_ours: float, kkt_theirs: float) -> float:
    """Chapter 06: the largest coordinate difference two points can have when both have the given
    KKT residuals max|∇F|, for a μ-strongly convex F (:func:`strong_convexity`).

    ‖θ − θ*‖₂ ≤ ‖∇F(θ)‖₂/μ for each point, ‖·‖₂ ≤ √N ‖·‖_∞ over the N = 1 + d + d·k coordinates
    whose gradient is not zero, and the triangle inequality:
    max|θ_a − θ_b| ≤ √N (kkt_a + kkt_b)/μ.
    """
    n_coords = 1 + d + d * k
    return math.sqrt(n_coords) * (kkt_ours + kkt_theirs) / strong_convexity(d, eta, y)


def latent_split(V_idx: Tensor) -> tuple[Tensor, Tensor, float, float]:
    """Chapter 06, (6.4): V_t = M + P with M = 1 sᵀ/d (every row the mean row) and P = V_t − M
    (columns summing to zero); returns ``(M, P, m, p)`` with m = ‖M‖² = C/d, p = ‖P‖² = A − C/d."""
    d = V_idx.shape[0]
    M = V_idx.mean(dim=0, keepdim=True).expand(d, -1).clone()
    P = V_idx - M
    return M, P, float(M.square().sum()), float(P.square().sum())


# --------------------------------------------------------------------------- chapter 05: the saddle


def worked_example() -> tuple[torch.Tensor, int, torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Chapter 05's and 06's worked sample: d = 2, k = 1, y = +1, η = 1/2, biases 0, v = (1/2, 1).

    Returns ``(idx, y, w0, w, V, eta)``.
    """
    V = torch.tensor([[0.5], [1.0]], dtype=F64)
    return torch.tensor([0, 1]), 1, torch.tensor(0.0, dtype=F64), torch.zeros(2, dtype=F64), V, 0.5


def line_phi(s_values, z_values):
    """φ(θ_t + s(θ_{t+1} − θ_t), z) on the worked example, as an array (len(z), len(s)), plus
    the step, the prediction's coefficients along the line and the squared step length."""
    idx, y, w0, w, V, eta = worked_example()
    step = prox_step(idx, y, w0, w, V, eta)
    start = torch.cat([w0.reshape(1), w, V.reshape(-1)])
    move = torch.cat([step.w0.reshape(1), step.w, step.V.reshape(-1)]) - start

    def y_hat(s: float) -> float:
        t = start + s * move
        return float(predict_sparse(idx, t[0], t[1:3], t[3:].reshape(2, 1)))

    # ŷ along the line is a quadratic a + b s + c s² (biases linear, v1·v2 quadratic)
    a, at1, atm1 = y_hat(0.0), y_hat(1.0), y_hat(-1.0)
    b, c = (at1 - atm1) / 2, (at1 + atm1) / 2 - a
    length2 = float(move.square().sum())
    s_arr, z_arr = np.asarray(s_values), np.asarray(z_values)[:, None]
    h_star = z_arr * np.log(z_arr) + (1 - z_arr) * np.log(1 - z_arr)
    phi = -z_arr * y * (a + b * s_arr + c * s_arr**2) + s_arr**2 * length2 / (2 * eta) - h_star
    return phi, step, (a, b, c), length2


def saddle_rows(points: int = 61) -> list[dict]:
    """Rows ``{s, z, phi, s_best, z_best, z_star}`` for the saddle figure of chapter 05.

    φ(θ_s, z) on the line θ_s = θ_t + s(θ_{t+1} − θ_t) through the worked example's step; ``s_best``
    is the s minimising φ(θ_s, z) at this row's z (the min player's answer), ``z_best`` the z
    maximising φ(θ_s, z) at this row's s, σ(−y ŷ(θ_s)) (the max player's answer).
    """
    s_values = np.linspace(-0.5, 2.5, points)
    z_values = np.linspace(0.01, 0.99, points)
    phi, step, (a, b, c), length2 = line_phi(s_values, z_values)
    eta, y = worked_example()[5], 1
    rows = []
    for iz, z in enumerate(z_values):
        s_best = z * y * b / (length2 / eta - 2 * z * y * c)
        for i_s, s in enumerate(s_values):
            rows.append(
                {
                    "s": float(s),
                    "z": float(z),
                    "phi": float(phi[iz, i_s]),
                    "s_best": float(s_best),
                    "z_best": sigmoid(-y * (a + b * s + c * s**2)),
                    "z_star": step.z,
                }
            )
    return rows


# --------------------------------------------------------------------------- chapter 06: against a generic optimiser


OPTIMISER_FRACTIONS = (0.1, 0.5, 0.9, 0.999)


def optimiser_cases(seed: int = 0) -> list[dict]:
    """The full grid label × fraction of the exact bound × d: y ∈ {+1, −1}, η ∈ {0.1, 0.5, 0.9,
    0.999} × the exact bound (capped at 2 where it is infinite), d = 1 … 11 (88 cases).

    Label and fraction vary independently (every label meets every fraction at every d); k and
    the scale of V follow d alone (k = 3 for odd d, 20 for even d; scale 0.01, 1, 3 in turn), so
    every (label, fraction) pair meets both k and all three scales.
    """
    rng = np.random.default_rng(seed)
    cases: list[dict] = []
    for y in (1, -1):
        for fraction in OPTIMISER_FRACTIONS:
            for nnz in range(1, 12):
                cases.append(
                    {
                        "case": len(cases),
                        "y": y,
                        "nnz": nnz,
                        "k": 3 if nnz % 2 else 20,
                        "scale": (0.01, 1.0, 3.0)[nnz % 3],
                        "fraction": fraction,
                        "seed": int(rng.integers(1 << 30)),
                    }
                )
    return cases


def compare_with_optimiser(cases: list[dict], n: int = 30) -> list[dict]:
    """For each case: the closed-form step, L-BFGS-B's minimiser of F, their largest coordinate
    difference (absolute, and relative to 1 + the largest parameter), both KKT residuals, the
    KKT tolerance of :func:`fmedu._testing().kkt_tolerance`, and whether η exceeds the published bound."""
    rows = []
    for c in cases:
        idx, w0, w, V = _testing().random_prox_case(n, c["k"], c["nnz"], c["scale"], c["seed"])
        eta = _testing().eta_below(c["nnz"], c["y"], c["fraction"])
        ours = prox_step(idx, c["y"], w0, w, V, eta)
        theirs = minimise_numerically(idx, c["y"], w0, w, V, eta)
        diff = max(float((a - b).abs().max()) for a, b in zip(ours[:3], theirs[:3]))
        size = 1 + max(float(t.abs().max()) for t in ours[:3])
        rows.append(
            {
                **c,
                "eta": eta,
                "above_published": eta > step_size_bound(c["nnz"], "published"),
                "z": ours.z,
                "max_abs_diff": diff,
                "max_rel_diff": diff / size,
                "kkt_closed_form": kkt_residual(ours, idx, c["y"], w0, w, V, eta),
                "kkt_optimiser": kkt_residual(theirs, idx, c["y"], w0, w, V, eta),
                "kkt_tolerance": _testing().kkt_tolerance(V[idx], eta),
                "kkt_scale": (1 + c["nnz"] * float(V[idx].abs().max()) ** 2) / eta,
            }
        )
    return rows


# --------------------------------------------------------------------------- chapter 06: the quoted speed-up

COST_NNZ = (2, 4, 6, 8, 11)


def cost_ratios(rows: list[dict]) -> dict[int, float]:
    """published seconds / reduced seconds, per nnz."""
    by = {(int(r["nnz"]), r["implementation"]): float(r["seconds"]) for r in rows}
    return {nnz: by[(nnz, "published")] / by[(nnz, "reduced")] for nnz in sorted({int(r["nnz"]) for r in rows})}


QUOTED_NNZ = 11
"""The speed-up the course quotes is the one at d = 11, the most non-zeros of a MovieLens sample."""


def quoted_speedup(rows: list[dict]) -> int:
    """The one speed-up the course quotes: published / reduced seconds at d = 11, rounded."""
    return round(cost_ratios(rows)[QUOTED_NNZ])


def read_step_cost(path: Path | str = Path("figures/06_step_cost.csv")) -> list[dict]:
    """The committed rows of ``figures/06_step_cost.csv`` (the one run the course quotes)."""
    with open(path, newline="") as fh:
        return [
            {"nnz": int(r["nnz"]), "implementation": r["implementation"], "seconds": float(r["seconds"])}
            for r in csv.DictReader(fh)
        ]
