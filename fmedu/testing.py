"""Builders and tolerances shared by the chapters and the tests.

One home for every "draw a random FM / batch / prox case", for the small worked example
of chapters 01 and 02 (:func:`toy_ratings_fm`), and for every error bound used to compare
two computations, so that a chapter and its tests check the same thing the same way.
Random builders take an explicit seed or ``torch.Generator``; everything is float64.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from .errors import FMInputError

__all__ = [
    "F64",
    "EPS64",
    "ToyFM",
    "toy_ratings_fm",
    "random_fm",
    "random_x",
    "random_problem",
    "random_prox_case",
    "prediction_roundoff_bound",
    "ProxCase",
    "eta_below",
    "random_prox_cases",
    "SCALED_EIG_ATOL",
    "OPTIMISER_RTOL",
    "Z_LINK_ATOL",
    "GOLDEN_PARAM_ATOL",
    "solve_tolerance",
    "inverse_tolerance",
    "dual_tolerance",
    "golden_tolerance",
    "kkt_tolerance",
]

F64 = torch.float64
EPS64 = torch.finfo(F64).eps


def random_fm(
    n: int, k: int, generator: torch.Generator, *, v_scale: float | None = None, zero_bias: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """``(w0, w, V)``: w0, w ~ N(0, 1) (w0 = 0 with ``zero_bias``), V ~ N(0, v_scale²), v_scale = 1/√k by default."""
    w0 = torch.zeros((), dtype=F64) if zero_bias else torch.randn((), dtype=F64, generator=generator)
    w = torch.randn(n, dtype=F64, generator=generator)
    scale = 1.0 / math.sqrt(k) if v_scale is None else v_scale
    V = scale * torch.randn(n, k, dtype=F64, generator=generator)
    return w0, w, V


RANDOM_X_KINDS = ("dense", "one-hot", "multi-hot", "sparse")


def random_x(n: int, batch: int, kind: str, generator: torch.Generator, *, nnz: int = 4) -> Tensor:
    """A ``(batch, n)`` input of one of four kinds.

    ``"dense"``: N(0, 1) entries; ``"one-hot"``: a single 1 per row; ``"multi-hot"``:
    min(n, nnz) ones per row; ``"sparse"``: min(n, nnz) N(0, 1) values per row, zeros elsewhere.
    """
    if kind == "dense":
        return torch.randn(batch, n, dtype=F64, generator=generator)
    if kind not in RANDOM_X_KINDS:
        raise FMInputError(f"kind must be one of {RANDOM_X_KINDS}, got {kind!r}")
    per_row = 1 if kind == "one-hot" else min(n, nnz)
    x = torch.zeros(batch, n, dtype=F64)
    for row in range(batch):
        cols = torch.randperm(n, generator=generator)[:per_row]
        x[row, cols] = 1.0 if kind != "sparse" else torch.randn(per_row, dtype=F64, generator=generator)
    return x


def random_problem(
    n: int, k: int, batch: int, loss: str, generator: torch.Generator, *, density: float = 1.0, one_hot: bool = False
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``(x, y, w0, w, V)``: random parameters, a batch and targets for ``loss``; sparse x when density < 1.

    Targets are N(0, 1) for the squared loss and ±1 otherwise; every sample keeps at least one
    non-zero. Chapter 02's three-way checks and ``tests/test_grad.py`` draw from it.
    """
    w0, w, V = random_fm(n, k, generator)
    x = torch.ones(batch, n, dtype=F64) if one_hot else torch.randn(batch, n, dtype=F64, generator=generator)
    keep = torch.rand(batch, n, generator=generator) < density
    keep[torch.arange(batch), torch.randint(0, n, (batch,), generator=generator)] = True
    x = x * keep
    if loss == "squared":
        y = torch.randn(batch, dtype=F64, generator=generator)
    else:
        y = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0).to(F64)
    return x, y, w0, w, V


def random_prox_case(n: int, k: int, nnz: int, scale: float, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(idx, w0, w, V)``: ``nnz`` distinct indices of ``n``, w0, w ~ N(0, 1), V ~ N(0, scale²).

    One sample of a prox step (chapters 05 and 06, ``tests/test_prox.py``).
    """
    gen = torch.Generator().manual_seed(seed)
    w0, w, V = random_fm(n, k, gen, v_scale=scale)
    idx = torch.randperm(n, generator=gen)[:nnz]
    return idx, w0, w, V


def prediction_roundoff_bound(x: Tensor, w0: Tensor, w: Tensor, V: Tensor) -> Tensor:
    """8·n·ε × (1 + the sum of |terms| of ŷ), per sample: a generous float64 bound on the
    difference between two ways of computing ŷ(x) (chapter 01's naive and Rendle forms)."""
    n = V.shape[0]
    absolute = w0.abs() + x.abs() @ w.abs() + 0.5 * ((x.abs() @ V.abs()) ** 2).sum(-1)
    return 8 * n * EPS64 * (absolute + 1)


# --------------------------------------------------------------------------- prox step (chapters 05–06)


class ProxCase(NamedTuple):
    """One random setting of a prox step: the sample, its label, the parameters, η and a z."""

    idx: Tensor
    y: int
    w0: Tensor
    w: Tensor
    V: Tensor
    eta: float
    z: float


def eta_below(nnz: int, y: int, fraction: float) -> float:
    """A step size at ``fraction`` of the exact bound for ``nnz`` and ``y`` (capped at 2 where it is ∞)."""
    from .prox import step_size_bound

    return fraction * min(step_size_bound(nnz, "exact", y), 2.0)


def random_prox_cases(
    count: int, seed: int, *, n: int = 30, k: int = 20, max_nnz: int = 11, scales=(0.01, 1.0, 3.0)
) -> list[ProxCase]:
    """``count`` prox settings covering d = 1..max_nnz (cycling), both labels (alternating), the
    latent scales ``scales`` (cycling), η uniform in (0, 0.999) × the exact bound and z uniform
    in [0, 1]; chapter 06 and ``tests/test_prox.py`` draw from it."""
    gen = torch.Generator().manual_seed(seed)
    cases = []
    for c in range(count):
        d = 1 + c % max_nnz
        y = 1 if c % 2 == 0 else -1
        idx, w0, w, V = random_prox_case(n, k, d, scales[c % len(scales)], seed * 100_003 + c)
        fraction = 0.999 * float(torch.rand((), generator=gen, dtype=F64))
        z = float(torch.rand((), generator=gen, dtype=F64))
        cases.append(ProxCase(idx, y, w0, w, V, eta_below(d, y, fraction), z))
    return cases


SCALED_EIG_ATOL = 1e-12
"""η·λ of a prox Hessian (entries of size ≤ d + 1, at most 45 × 45) by ``eigvalsh`` against
its formula: rounding is about size × dimension × ε ≈ 1e-13."""

OPTIMISER_RTOL = 1e-6
"""The closed-form prox step against L-BFGS-B's minimiser (gradient tolerance 1e-13), relative
to 1 + the largest parameter: the optimiser's own error dominates."""

Z_LINK_ATOL = 1e-12
"""z* against σ(−y ŷ(θ_{t+1})): both in [0, 1], ŷ recomputed from the new parameters."""

GOLDEN_PARAM_ATOL = 1e-6
"""Parameters after many golden-section steps (z to 1e-8 per step) against the same steps taken
with another implementation of q: the per-step differences η·Δz accumulate."""


def _s_extremes(d: int, eta: float, y: int, z: float) -> tuple[float, float]:
    from .prox import s_eigenvalues

    lam = s_eigenvalues(d, eta, y, z) if d >= 2 else (1.0, 1.0)
    return min(abs(v) for v in lam), max(abs(v) for v in lam)


def solve_tolerance(d: int, eta: float, y: int, z: float, size: float) -> float:
    """Two solutions of S(z) X = B (``size`` = max|X|) differ by at most 64·d·κ(S)·ε·(1 + size)."""
    low, high = _s_extremes(d, eta, y, z)
    return 64 * max(d, 1) * (high / low) * EPS64 * (1 + size)


def inverse_tolerance(d: int, eta: float, y: int, z: float) -> float:
    """Two computations of S(z)⁻¹ differ by at most 64·d·κ(S)·ε·(1 + ‖S⁻¹‖)."""
    low, high = _s_extremes(d, eta, y, z)
    return 64 * max(d, 1) * (high / low) * EPS64 * (1 + 1 / low)


def dual_tolerance(s, eta: float, y: int, z: float) -> float:
    """Two computations of q2(z) or ŷ(θ(z)) from the same sample (``s`` its SampleScalars):
    512·ε × (1 + |B| + A/(η λ_min²)), the size of their largest terms, λ_min the smaller
    eigenvalue of S(z) (S⁻¹ amplifies by 1/λ_min, and ŷ squares it). The reduced formulas divide
    by E = 1 + β and D = 1 − (d − 1)β even where S has no such eigenvalue (d = 1: S = 1, yet the
    two latent terms of size A/E² cancel), so λ_min is also capped by |E| and |D|."""
    low, _ = _s_extremes(s.d, eta, y, z)
    beta = eta * y * z
    low = min(low, abs(1 + beta), abs(1 - (s.d - 1) * beta))
    return 512 * EPS64 * (1 + abs(s.B) + s.A / (eta * low**2))


def golden_tolerance(s, y: int, eta: float, z_golden: float) -> float:
    """Golden section (tolerance 1e-8 on z) against the exact maximiser of q: it compares values
    of q, which near the top is flat to within rounding, so add √(32 ε |q| / |q''|)."""
    from .prox import q_second

    q_terms = 1 + s.A / eta + abs(s.B) + eta * (s.d + 1)  # size of q's largest terms
    z_inner = min(max(z_golden, 1e-6), 1 - 1e-6)
    return 1e-8 + math.sqrt(32 * EPS64 * q_terms / abs(q_second(z_inner, s, y, eta)))


def kkt_tolerance(V_idx: Tensor, eta: float) -> float:
    """max|∇F| at the closed-form step: the gradient's terms are of size (1 + d·max|v|²)/η,
    each rounded, so 1e-12 × that."""
    d = V_idx.shape[0]
    largest = float(V_idx.abs().max()) if V_idx.numel() else 0.0
    return 1e-12 * (1 + d * largest**2) / eta


# --------------------------------------------------------------------------- the worked example


class ToyFM(NamedTuple):
    """Three users, four movies, one-hot features, k = 2 (chapter 01's worked example).

    ``features`` names the n = 7 features (users first, then movies); ``w0``, ``w``, ``V``
    are the parameters. All values are multiples of 1/4, so every prediction is exact in
    float64 and can be compared with ``==``.
    """

    users: tuple[str, ...]
    movies: tuple[str, ...]
    features: tuple[str, ...]
    w0: Tensor
    w: Tensor
    V: Tensor

    def x(self, user: str, movie: str) -> Tensor:
        """The one-hot feature vector of the rating (user, movie): two ones, n − 2 zeros."""
        x = torch.zeros(len(self.features), dtype=F64)
        x[self.features.index(user)] = 1.0
        x[self.features.index(movie)] = 1.0
        return x


def toy_ratings_fm() -> ToyFM:
    """The worked example: factor 1 reads as "likes science fiction", factor 2 as "likes classics"."""
    users, movies = ("Ann", "Bob", "Cat"), ("Alien", "Brazil", "Casablanca", "Dune")
    w = torch.tensor([0.5, -0.5, 0.0, 0.25, -0.25, 0.5, 0.0], dtype=F64)
    V = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [1.0, -0.5], [0.5, 0.5], [-0.5, 1.0], [1.0, 0.0]], dtype=F64)
    return ToyFM(users, movies, users + movies, torch.tensor(3.0, dtype=F64), w, V)


# --------------------------------------------------------------------------- chapter 01: exercise check


def check_rendle_form(fn) -> bool:
    """Check a reader's Rendle form ``fn(x, V)`` (chapter 01, Exercise 1.2) and say what is wrong.

    ``fn`` takes a batch ``x`` of shape ``(batch, n)`` and ``V`` of shape ``(n, k)`` and must
    return the pairwise term Σ_{i<j} ⟨v_i, v_j⟩ x_i x_j of every sample, shape ``(batch,)``. It
    is compared with the pair sum on dense and on 0/1 inputs (n = 7, k = 3, float64) within
    twice the rounding bound (1.6) of chapter 01; a wrong answer is matched against the usual slips (the
    ½ forgotten, the diagonal not subtracted, x_i instead of x_i² in the diagonal, squares
    summed over i instead of f) and the message names the one it finds. Prints the verdict
    and returns True only when ``fn`` is right on every input.
    """
    from .model import pairwise_naive

    gen = torch.Generator().manual_seed(1)
    n, k = 7, 3
    V = torch.randn(n, k, dtype=F64, generator=gen)
    dense = torch.randn(5, n, dtype=F64, generator=gen)
    binary = (torch.rand(5, n, generator=gen) < 0.5).to(F64)
    full = lambda x: ((x @ V) ** 2).sum(-1)  # Σ_f (Σ_i v_if x_i)²
    diag = lambda x: ((x * x) @ (V * V)).sum(-1)  # Σ_f Σ_i v_if² x_i²
    slips = {
        "the ½ is missing (each pair is counted twice)": lambda x: full(x) - diag(x),
        "the diagonal Σ_i v_if² x_i² is not subtracted": lambda x: 0.5 * full(x),
        "the diagonal uses x_i instead of x_i² (the two agree only on 0/1 inputs)": lambda x: (
            0.5 * (full(x) - (x @ (V * V)).sum(-1))
        ),
        "the diagonal is added instead of subtracted": lambda x: 0.5 * (full(x) + diag(x)),
    }
    for name, x in (("dense", dense), ("0/1", binary)):
        try:
            got = fn(x.clone(), V.clone())
        except Exception as err:  # the reader's code: report, do not raise
            print(f"Not yet: calling your function on a {name} batch raised {type(err).__name__}: {err}")
            return False
        if got is None:
            print("Not yet: your function returns None. Write its body and return the pairwise terms.")
            return False
        got = torch.as_tensor(got, dtype=F64)
        if got.shape != (x.shape[0],):
            print(f"Not yet: expected one number per sample, shape ({x.shape[0]},); got shape {tuple(got.shape)}.")
            return False
        want = pairwise_naive(x, V)
        # twice chapter 01's bound (1.6) for the pairwise term, for the reader's own order of operations
        unit, m = EPS64 / 2, 2 * n + k + 2
        bound = 2 * (m * unit / (1 - m * unit)) * (((x.abs() @ V.abs()) ** 2).sum(-1) + diag(x))
        if bool(((got - want).abs() <= bound).all()):
            continue
        for slip, wrong in slips.items():
            if bool(((got - wrong(x)).abs() <= bound).all()):
                print(f"Not yet: on a {name} batch your result matches a known slip: {slip}.")
                return False
        print(
            f"Not yet: on a {name} batch your result differs from the pair sum by up to "
            f"{float((got - want).abs().max()):.3g}."
        )
        return False
    print("Correct: your function equals the pair sum on dense and 0/1 inputs, within the rounding bound.")
    return True
