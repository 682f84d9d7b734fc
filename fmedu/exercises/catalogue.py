"""The course's "your turn" exercises: for each, the evidence, the reference and the wrong variants.

Each exercise's *evidence* is computed without the formula the reader is asked to write: the
pair-by-pair double sum (chapter 01), float64 autograd of it (chapter 02), the definition of
dominance (chapter 03), a table built with a known number of columns (chapter 04), sympy's
eigenvalues of S(z) (chapter 05), a dense float64 inverse (chapter 06), the logistic loss of
probabilities and the eigenvalues of a numerically inverted S(z) on a grid of z (chapter 07), a
per-row standard error and a step-by-step scan of a sweep (chapter 08), a dense solve of S_λ(z) and
autograd's Newton step on the step's quadratic objective (chapter 09). Tolerances: float64 outputs are
compared within ``ROUNDING_SAFETY`` × a first-order rounding bound (N. J. Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002, §3.1: a sum of m terms has error at
most about m·ε·Σ|terms|); the safety factor 16 covers the few extra roundings of each formula
and still leaves every catalogued slip many orders of magnitude outside.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import sympy as sp
import torch
from torch import Tensor

from .core import Case, Exercise, Variant, _as_array, close, exactly, inf_or_close, register

F64 = torch.float64
EPS = float(torch.finfo(F64).eps)
ROUNDING_SAFETY = 16.0


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rounding_agree(scale_of):
    """Agreement within ROUNDING_SAFETY · m · ε · (the case's sum of absolute terms), entrywise."""

    def agree(expected, actual, case: Case) -> bool:
        e, a = _as_array(expected), _as_array(actual)
        if e.shape != a.shape or not np.all(np.isfinite(a)):
            return False
        return bool(np.all(np.abs(e - a) <= ROUNDING_SAFETY * EPS * scale_of(case) + 0.0))

    return agree


# ============================================================================ chapter 01


def _pair_sum(x: Tensor, V: Tensor) -> Tensor:
    """Σ_{i<j} ⟨v_i, v_j⟩ x_i x_j, one pair at a time (the definition). ``x`` (batch, n)."""
    n = V.shape[0]
    out = torch.zeros(x.shape[0], dtype=F64)
    for i in range(n):
        for j in range(i + 1, n):
            out += (V[i] @ V[j]) * x[:, i] * x[:, j]
    return out


def _pair_scale(case: Case) -> float:
    x, V = case.args
    n = V.shape[0]
    return float(n * n * ((x.abs() @ V.abs()) ** 2).sum(-1).max() + 1)


def _rendle_cases() -> list[Case]:
    cases = []
    x = torch.tensor([[1.0, 0, 1, 0], [0.0, 1, 1, 1]], dtype=F64)
    V = torch.randn(4, 3, dtype=F64, generator=_gen(1))
    cases.append(Case((x, V), _pair_sum(x, V), "n = 4, k = 3, two 0/1 samples"))
    x = torch.tensor([[2.0, 0, 3, 0, -1]], dtype=F64)
    V = torch.randn(5, 3, dtype=F64, generator=_gen(2))
    cases.append(Case((x, V), _pair_sum(x, V), "n = 5, k = 3, one sample x = (2, 0, 3, 0, −1)"))
    x = torch.randn(3, 7, dtype=F64, generator=_gen(3))
    V = torch.randn(7, 4, dtype=F64, generator=_gen(4))
    cases.append(Case((x, V), _pair_sum(x, V), "n = 7, k = 4, three Gaussian samples"))
    return cases


def rendle_pairwise(x: Tensor, V: Tensor) -> Tensor:
    """½ Σ_f [(Σ_i v_if x_i)² − Σ_i v_if² x_i²] for every row of ``x`` (batch, n); V (n, k) → (batch,)."""
    s = x @ V  # (batch, k): Σ_i v_if x_i
    return 0.5 * (s * s - (x * x) @ (V * V)).sum(-1)


register(
    Exercise(
        name="rendle_pairwise",
        chapter="01",
        signature="rendle_pairwise(x, V)",
        task=(
            "return ½ Σ_f [(Σ_i v_if x_i)² − Σ_i v_if² x_i²] for every row of x (batch, n), a "
            "tensor of shape (batch,), in O(nk) per row."
        ),
        evidence="the pair-by-pair sum Σ_{i<j} ⟨v_i, v_j⟩ x_i x_j within a float64 rounding bound",
        hint_text=(
            "Write s_f = Σ_i v_if x_i for every column f at once (one matrix product x @ V). Its square "
            "(Σ_i v_if x_i)² contains every ordered pair (i, j), the pairs i = j included: remove the "
            "diagonal Σ_i v_if² x_i² and halve what is left, then sum over f."
        ),
        reference=rendle_pairwise,
        cases=_rendle_cases,
        agree=_rounding_agree(_pair_scale),
        output="a tensor of predictions",
        shape=lambda case: (case.args[0].shape[0],),
        variants={
            "no-half": Variant(
                lambda x, V: ((x @ V) ** 2 - (x * x) @ (V * V)).sum(-1),
                "Your values are exactly twice the pair sum on every case: (Σ_i v_if x_i)² − Σ_i v_if² x_i² "
                "counts each pair twice (as (i, j) and as (j, i)), so halve it.",
            ),
            "diagonal-kept": Variant(
                lambda x, V: 0.5 * ((x @ V) ** 2).sum(-1),
                "You kept the diagonal: (Σ_i v_if x_i)² also holds the terms i = j, v_if² x_i², which are "
                "not pairs; subtract Σ_i v_if² x_i² before halving.",
            ),
            "x-not-squared": Variant(
                lambda x, V: 0.5 * ((x @ V) ** 2 - x @ (V * V)).sum(-1),
                "Right on the 0/1 samples, wrong on the others: the diagonal term is v_if² x_i², with x_i "
                "squared; on one-hot data x_i² = x_i hides the slip.",
            ),
            "v-not-squared": Variant(
                lambda x, V: 0.5 * ((x @ V) ** 2 - (x * x) @ V).sum(-1),
                "The diagonal term is v_if² x_i²: you subtracted v_if x_i², with v_if not squared.",
            ),
        },
    )
)


def _one_hot_cases() -> list[Case]:
    cases = []
    for seed, (n, k, idx) in enumerate([(4, 3, [0, 2]), (6, 3, [1, 3, 4]), (9, 4, [0, 2, 5, 7, 8])]):
        V = torch.randn(n, k, dtype=F64, generator=_gen(10 + seed))
        x = torch.zeros(1, n, dtype=F64)
        x[0, idx] = 1.0
        cases.append(Case((list(idx), V), _pair_sum(x, V)[0], f"n = {n}, k = {k}, non-zeros {idx}"))
    return cases


def pairwise_one_hot(idx: list[int], V: Tensor) -> Tensor:
    """½ (‖Σ_{i∈S} v_i‖² − Σ_{i∈S} ‖v_i‖²) for the 0/1 sample with non-zero set S = ``idx``."""
    rows = V[torch.as_tensor(idx)]  # (d, k)
    total = rows.sum(0)  # (k,)
    return 0.5 * (total @ total - (rows * rows).sum())


def _one_hot_scale(case: Case) -> float:
    idx, V = case.args
    rows = V[torch.as_tensor(idx)]
    return float(len(idx) ** 2 * (rows.abs().sum(0) ** 2).sum() + 1)


register(
    Exercise(
        name="pairwise_one_hot",
        chapter="01",
        signature="pairwise_one_hot(idx, V)",
        task=(
            "return ½(‖Σ_{i∈S} v_i‖² − Σ_{i∈S} ‖v_i‖²) for the 0/1 sample whose non-zero "
            "features are idx (a list), as a scalar tensor."
        ),
        evidence="the pair-by-pair sum over the sample's non-zero features within a float64 rounding bound",
        hint_text=(
            "With x_i ∈ {0, 1}, Rendle's form only needs the rows of V in idx: add them up, take the squared "
            "norm of the total, subtract the sum of the rows' squared norms, halve."
        ),
        reference=pairwise_one_hot,
        cases=_one_hot_cases,
        agree=_rounding_agree(_one_hot_scale),
        output="a scalar",
        shape=lambda case: (),
        variants={
            "no-half": Variant(
                lambda idx, V: 2 * pairwise_one_hot(idx, V),
                "Your values are exactly twice the pair sum: ‖Σ v_i‖² − Σ ‖v_i‖² counts each pair twice; halve it.",
            ),
            "diagonal-kept": Variant(
                lambda idx, V: 0.5 * (V[torch.as_tensor(idx)].sum(0) ** 2).sum(),
                "You kept the diagonal: ‖Σ_{i∈S} v_i‖² includes ‖v_i‖² for every i; subtract Σ ‖v_i‖².",
            ),
        },
    )
)


# ============================================================================ chapter 02


def _grad_cases() -> list[Case]:
    cases = []
    for seed, (n, k, kind) in enumerate([(4, 3, "binary"), (5, 3, "integer"), (6, 4, "gaussian")]):
        g = _gen(20 + seed)
        V = torch.randn(n, k, dtype=F64, generator=g)
        if kind == "binary":
            x = torch.tensor([1.0, 0, 1, 1], dtype=F64)
        elif kind == "integer":
            x = torch.tensor([2.0, 0, -1, 3, 1], dtype=F64)
        else:
            x = torch.randn(n, dtype=F64, generator=g)
        Vr = V.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(_pair_sum(x.unsqueeze(0), Vr).sum(), Vr)
        cases.append(Case((x, V), grad, f"n = {n}, k = {k}, {kind} x"))
    return cases


def grad_v(x: Tensor, V: Tensor) -> Tensor:
    """∂/∂v_if of the pairwise term at one sample: x_i Σ_j v_jf x_j − v_if x_i². ``x`` (n,), V (n, k) → (n, k)."""
    s = x @ V  # (k,)
    return x[:, None] * s[None, :] - V * (x * x)[:, None]


def _grad_scale(case: Case) -> float:
    x, V = case.args
    return float(V.shape[0] * (x.abs().max() ** 2) * (V.abs().sum(0).max() + 1) + 1)


register(
    Exercise(
        name="grad_v",
        chapter="02",
        signature="grad_v(x, V)",
        task="return the (n, k) tensor of ∂/∂v_if of Σ_{i<j} ⟨v_i, v_j⟩ x_i x_j at one sample x (n,).",
        evidence="float64 autograd of the pair-by-pair sum, within a rounding bound (n ≠ k, k ≥ 3)",
        hint_text=(
            "Start from Rendle's form ½ Σ_f [s_f² − Σ_i v_if² x_i²] with s_f = Σ_j v_jf x_j. The chain rule "
            "through s_f gives s_f · ∂s_f/∂v_if = s_f x_i; the diagonal term gives −v_if x_i²."
        ),
        reference=grad_v,
        cases=_grad_cases,
        agree=_rounding_agree(_grad_scale),
        output="a gradient",
        shape=lambda case: tuple(case.args[1].shape),
        variants={
            "E1": Variant(
                lambda x, V: x[:, None] * (x @ V)[None, :] - 2 * V * (x * x)[:, None],
                "Off by exactly −v_if x_i² on every entry: you held Σ_j v_jf x_j fixed, but it contains v_if, "
                "so differentiating its square contributes +v_if x_i² that cancels half of −2 v_if x_i² "
                "(erratum E1, the gradient note).",
                "erratum E1",
            ),
            "E6": Variant(
                lambda x, V: x[:, None] * (x @ V)[-1] - V * (x * x)[:, None],
                "Right in the last column only: you used the last factor's sum Σ_j v_jk x_j for every factor f "
                "(erratum E6, the SystemDS reference implementation's slip).",
                "erratum E6",
            ),
            "no-diagonal": Variant(
                lambda x, V: x[:, None] * (x @ V)[None, :],
                "Missing −v_if x_i²: the pair sum has no term i = j, so the diagonal of the square must be "
                "subtracted before differentiating.",
            ),
            "no-x": Variant(
                lambda x, V: (x @ V)[None, :].expand(V.shape[0], -1) - V * (x * x)[:, None],
                "Missing the factor x_i in x_i Σ_j v_jf x_j: ∂s_f/∂v_if = x_i, so a feature that is zero in the "
                "sample gets no gradient.",
            ),
        },
    )
)


def _dloss_cases() -> list[Case]:
    cases = []
    for label, y_hat, y in [
        ("two samples", [0.5, -1.0], [1.0, -1.0]),
        ("five samples", [2.0, -0.3, 0.0, 4.0, -2.5], [-1.0, 1.0, 1.0, 1.0, -1.0]),
    ]:
        yh = torch.tensor(y_hat, dtype=F64, requires_grad=True)
        yy = torch.tensor(y, dtype=F64)
        (grad,) = torch.autograd.grad(torch.nn.functional.softplus(-yy * yh).sum(), yh)
        cases.append(Case((yh.detach(), yy), grad, label))
    return cases


def logistic_dloss(y_hat: Tensor, y: Tensor) -> Tensor:
    """d/dŷ log(1 + e^(−yŷ)) = −y σ(−yŷ), entrywise (y ∈ {−1, +1})."""
    return -y * torch.sigmoid(-y * y_hat)


register(
    Exercise(
        name="logistic_dloss",
        chapter="02",
        signature="logistic_dloss(y_hat, y)",
        task="return d/dŷ log(1 + e^(−yŷ)) entrywise for tensors y_hat and y (labels ±1).",
        evidence="float64 autograd of log(1 + e^(−yŷ)) within a rounding bound",
        hint_text="Write m = yŷ. d/dm log(1 + e^(−m)) = −e^(−m)/(1 + e^(−m)) = −σ(−m); then dm/dŷ = y.",
        reference=logistic_dloss,
        cases=_dloss_cases,
        agree=close(rtol=ROUNDING_SAFETY * 4 * EPS, atol=ROUNDING_SAFETY * EPS),
        output="a tensor",
        shape=lambda case: tuple(case.args[0].shape),
        variants={
            "sign": Variant(
                lambda yh, y: y * torch.sigmoid(-y * yh),
                "Opposite sign: the loss falls as the margin yŷ grows, so its derivative has the sign of −y.",
            ),
            "sigmoid-of-margin": Variant(
                lambda yh, y: -y * torch.sigmoid(y * yh),
                "You used σ(yŷ): the derivative of log(1 + e^(−m)) is −σ(−m) = −1/(1 + e^m), not −σ(m).",
            ),
            "missing-y": Variant(
                lambda yh, y: -torch.sigmoid(-y * yh),
                "Missing the factor y of the chain rule: d(yŷ)/dŷ = y, so negative samples get the wrong sign.",
            ),
        },
    )
)


# ============================================================================ chapter 03


def _dominance_definition(M: Tensor) -> bool:
    n = M.shape[0]
    return all(M[i, i] > sum(abs(M[i, j]) for j in range(n) if j != i) for i in range(n))


def _dominance_cases() -> list[Case]:
    mats = [
        ("[[1, −2], [−2, 1]] (the research notes' example)", [[1, -2], [-2, 1]]),
        ("[[1, 1], [1, 1]]", [[1, 1], [1, 1]]),
        ("[[3, 1, −1], [1, 3, 1], [−1, 1, 3]]", [[3, 1, -1], [1, 3, 1], [-1, 1, 3]]),
        ("unit diagonal, 0.6 off the diagonal (3 × 3)", [[1, 0.6, 0.6], [0.6, 1, 0.6], [0.6, 0.6, 1]]),
        ("[[2, −1, 0], [−1, 2, −1], [0, −1, 2]]", [[2, -1, 0], [-1, 2, -1], [0, -1, 2]]),
        (
            "[[5, −2, 2, 0], [−2, 5, 1, −1], [2, 1, 4.5, 1], [0, −1, 1, 2.5]]",
            [[5, -2, 2, 0], [-2, 5, 1, -1], [2, 1, 4.5, 1], [0, -1, 1, 2.5]],
        ),
    ]
    cases = []
    for label, m in mats:
        M = torch.tensor(m, dtype=F64)
        cases.append(Case((M,), _dominance_definition(M), label))
    return cases


def is_dominant(M: Tensor) -> bool:
    """Strict diagonal dominance: M_ii > Σ_{j≠i} |M_ij| for every row i."""
    off = M.abs().sum(1) - M.diagonal().abs()
    return bool((M.diagonal() > off).all())


def _bool_agree(expected, actual, case: Case) -> bool:
    if isinstance(actual, torch.Tensor) and actual.numel() == 1 and actual.dtype == torch.bool:
        actual = bool(actual.item())
    return exactly(expected, actual, case)


register(
    Exercise(
        name="is_dominant",
        chapter="03",
        signature="is_dominant(M)",
        task="return True when every row i of the symmetric tensor M has M_ii > Σ_{j≠i} |M_ij|, else False.",
        evidence="the definition of strict diagonal dominance, row by row, on six matrices",
        hint_text="Compare each diagonal entry with the sum of the absolute values of the other entries of its row.",
        reference=is_dominant,
        cases=_dominance_cases,
        agree=_bool_agree,
        output="True or False",
        variants={
            "no-abs": Variant(
                lambda M: bool((M.diagonal() > M.sum(1) - M.diagonal()).all()),
                "You compared with Σ_{j≠i} M_ij without absolute values: [[1, −2], [−2, 1]] passes, yet it has "
                "the eigenvalue −1 (erratum E7, the research notes' rule).",
                "erratum E7",
            ),
            "non-strict": Variant(
                lambda M: bool((M.diagonal() >= M.abs().sum(1) - M.diagonal().abs()).all()),
                "You allowed equality: [[1, 1], [1, 1]] passes with M_ii = Σ_{j≠i} |M_ij|, and it is singular; "
                "the comparison must be strict.",
            ),
            "diagonal-in-sum": Variant(
                lambda M: bool((M.diagonal() > M.abs().sum(1)).all()),
                "You included the diagonal entry in its own row sum, so no matrix can pass.",
            ),
        },
    )
)


def _trace_bound_definition(W: sp.Matrix) -> sp.Expr:
    n = W.rows
    return sp.nsimplify(2 * sum(abs(W[i, j]) for i in range(n) for j in range(i + 1, n))) / (n - 1)


def _trace_bound_cases() -> list[Case]:
    third, half = sp.Rational(1, 3), sp.Rational(1, 2)
    mats = [
        ("all pairs +1, n = 4", sp.ones(4, 4) - sp.eye(4)),
        ("all pairs −1, n = 3 (the three clashing features)", sp.eye(3) - sp.ones(3, 3)),
        ("[[0, 2, −1], [2, 0, 3], [−1, 3, 0]]", sp.Matrix([[0, 2, -1], [2, 0, 3], [-1, 3, 0]])),
        (
            "a 4 × 4 pattern with a non-zero diagonal and fractions",
            sp.Matrix([[5, -third, half, 0], [-third, -2, 1, -4], [half, 1, 7, 2], [0, -4, 2, 1]]),
        ),
    ]
    return [Case((W,), _trace_bound_definition(W), label) for label, W in mats]


def trace_lower_bound(W: sp.Matrix) -> sp.Expr:
    """The smallest trace any PSD completion of W can have is at least 2 Σ_{i<j} |W_ij| / (n − 1)."""
    n = W.rows
    return 2 * sum(abs(W[i, j]) for i in range(n) for j in range(i + 1, n)) / (n - 1)


def _sympy_equal(expected, actual, case: Case) -> bool:
    try:
        return bool(sp.simplify(sp.sympify(actual) - expected) == 0)
    except (sp.SympifyError, TypeError):
        return False


register(
    Exercise(
        name="trace_lower_bound",
        chapter="03",
        signature="trace_lower_bound(W)",
        task=(
            "return the lower bound 2 Σ_{i<j} |W_ij| / (n − 1) on the trace of every PSD completion of the "
            "symmetric sympy matrix W (an exact sympy number; the diagonal of W is ignored)."
        ),
        evidence="the bound from summing the pair tests over all pairs, on four exact matrices",
        hint_text=(
            "Each pair i < j contributes δ_i + δ_j ≥ 2|W_ij|; summing over all pairs counts every δ_i n − 1 "
            "times. Use each pair once, take absolute values, and ignore the diagonal."
        ),
        reference=trace_lower_bound,
        cases=_trace_bound_cases,
        agree=_sympy_equal,
        output="an exact sympy number",
        variants={
            "no-abs": Variant(
                lambda W: 2 * sum(W[i, j] for i in range(W.rows) for j in range(i + 1, W.rows)) / (W.rows - 1),
                "You summed W_ij without absolute values: for the all −1 pattern the bound turns negative, yet "
                "each pair test gives δ_i + δ_j ≥ 2|W_ij|, whatever the sign of W_ij.",
            ),
            "divide-by-n": Variant(
                lambda W: 2 * sum(abs(W[i, j]) for i in range(W.rows) for j in range(i + 1, W.rows)) / W.rows,
                "You divided by n: in the sum over pairs each δ_i appears once for every other index, n − 1 times.",
            ),
            "both-halves": Variant(
                lambda W: 2 * sum(abs(W[i, j]) for i in range(W.rows) for j in range(W.rows) if i != j) / (W.rows - 1),
                "You counted every pair twice (i < j and j < i): the sum runs over pairs i < j only.",
            ),
            "with-diagonal": Variant(
                lambda W: 2 * sum(abs(W[i, j]) for i in range(W.rows) for j in range(i, W.rows)) / (W.rows - 1),
                "You included the diagonal entries W_ii: the FM never reads them, and the bound is about the "
                "off-diagonal only.",
            ),
        },
    )
)


# ============================================================================ chapter 04


def _planted_table(seed: int, n_u: int, n_i: int, r: int) -> sp.Matrix:
    """An integer table B = U Wᵀ + a1ᵀ + 1bᵀ with U, W of r columns (generic: min-rank r)."""
    rng = np.random.default_rng(seed)
    U = sp.Matrix(rng.integers(-3, 4, size=(n_u, r)).tolist()) if r else sp.zeros(n_u, 1)
    W = sp.Matrix(rng.integers(-3, 4, size=(n_i, r)).tolist()) if r else sp.zeros(n_i, 1)
    a = sp.Matrix(rng.integers(-5, 6, size=(n_u, 1)).tolist())
    b = sp.Matrix(rng.integers(-5, 6, size=(n_i, 1)).tolist())
    return U * W.T + a * sp.ones(1, n_i) + sp.ones(n_u, 1) * b.T


@cache
def _user_item_cases_cached() -> tuple[Case, ...]:
    cases = [
        Case(
            (sp.Matrix([[3, -2, 1, 1], [6, -1, 3, 1], [2, 1, 2, 6]]),),
            1,
            "the 3 × 4 table of chapter 03's tiny example",
        ),
        Case((sp.Matrix([[4, 1, 2], [5, 2, 3]]),), 0, "a 2 × 3 table of row plus column effects"),
    ]
    for seed, (n_u, n_i, r) in enumerate([(4, 5, 2), (5, 6, 3), (6, 4, 1)]):
        for attempt in range(50):  # a generic draw has rank exactly r after centring; skip the rare others
            B = _planted_table(100 * seed + attempt, n_u, n_i, r)
            J_u = sp.eye(n_u) - sp.ones(n_u, n_u) / n_u
            J_i = sp.eye(n_i) - sp.ones(n_i, n_i) / n_i
            if (J_u * B * J_i).rank() == r and B.rank() > r:
                break
        cases.append(Case((B,), r, f"{n_u} × {n_i} table built with {r} latent column(s) plus row and column effects"))
    return tuple(cases)


def _user_item_cases() -> list[Case]:
    return list(_user_item_cases_cached())


def user_item_min_k(B: sp.Matrix) -> int:
    """The fewest columns a user–item FM needs for the table B: rank of the double-centred JBJ."""
    n_u, n_i = B.shape
    J_u = sp.eye(n_u) - sp.ones(n_u, n_u) / n_u
    J_i = sp.eye(n_i) - sp.ones(n_i, n_i) / n_i
    return int((J_u * B * J_i).rank())


def _centre_rows(B: sp.Matrix) -> sp.Matrix:
    return (sp.eye(B.rows) - sp.ones(B.rows, B.rows) / B.rows) * B


register(
    Exercise(
        name="user_item_min_k",
        chapter="04",
        signature="user_item_min_k(B)",
        task=(
            "return the fewest columns k with which a user–item FM (with its own w0 and w) "
            "reproduces the table B exactly (an int)."
        ),
        evidence="tables built with a known number of latent columns plus row and column effects (exact rationals)",
        hint_text=(
            "The linear weights absorb any row effect a1ᵀ and column effect 1bᵀ. Remove both by centring the "
            "rows and the columns (J B J with J = I − 11ᵀ/m) and count what is left: its rank."
        ),
        reference=user_item_min_k,
        cases=_user_item_cases,
        agree=exactly,
        output="an integer",
        variants={
            "rank-B": Variant(
                lambda B: int(B.rank()),
                "You returned rank B: the linear weights absorb row and column effects, which add rank without "
                "needing a column of V; the answer is min over a, b of rank(B − a1ᵀ − 1bᵀ) = rank(JBJ).",
            ),
            "rows-only": Variant(
                lambda B: int(_centre_rows(B).rank()),
                "You removed the row effects only: the item weights absorb column effects too, so centre the "
                "columns as well (JBJ).",
            ),
        },
    )
)


def double_centre(B: sp.Matrix) -> sp.Matrix:
    """J B J: every row and every column mean removed (the grand mean added back once)."""
    n_u, n_i = B.shape
    return (sp.eye(n_u) - sp.ones(n_u, n_u) / n_u) * B * (sp.eye(n_i) - sp.ones(n_i, n_i) / n_i)


def _centre_cases() -> list[Case]:
    tables = [
        (
            "the 3 × 4 table B_want of this chapter's tiny example",
            sp.Matrix([[3, -2, 1, 1], [6, -1, 3, 1], [2, 1, 2, 6]]),
        ),
        ("a 2 × 3 table of row plus column effects", sp.Matrix([[4, 1, 2], [5, 2, 3]])),
        ("a 3 × 2 table with fractions", sp.Matrix([[sp.Rational(1, 2), 2], [-1, 0], [3, sp.Rational(-5, 3)]])),
    ]
    return [Case((B,), double_centre(B), label) for label, B in tables]


def _matrix_equal(expected, actual, case: Case) -> bool:
    try:
        actual = sp.Matrix(actual)
    except (TypeError, ValueError, sp.SympifyError):
        return False
    return actual.shape == expected.shape and (actual - expected).applyfunc(sp.simplify).is_zero_matrix


register(
    Exercise(
        name="double_centre",
        chapter="04",
        signature="double_centre(B)",
        task="return J B J for the sympy table B: the table with its row effects and its column effects removed.",
        evidence="J_u B J_i with J = I − 11ᵀ/m of the right size on each side, on three exact tables",
        hint_text=(
            "Subtract each row's mean and each column's mean, then add back the grand mean once (it was "
            "subtracted twice). Equivalently, multiply by J = I − 11ᵀ/m on the left (m = rows) and on the right "
            "(m = columns)."
        ),
        reference=double_centre,
        cases=_centre_cases,
        agree=_matrix_equal,
        output="a sympy matrix of the shape of B",
        variants={
            "grand-mean-twice": Variant(
                lambda B: (
                    B
                    - (B * sp.ones(B.cols, 1) / B.cols) * sp.ones(1, B.cols)
                    - sp.ones(B.rows, 1) * (sp.ones(1, B.rows) * B / B.rows)
                ),
                "You subtracted the row means and the column means but did not add back the grand mean: it was "
                "subtracted twice, so the rows of your result do not sum to 0.",
            ),
            "rows-only": Variant(
                lambda B: B - (B * sp.ones(B.cols, 1) / B.cols) * sp.ones(1, B.cols),
                "You removed the row means only: the item weights absorb column effects too, so centre the "
                "columns as well.",
            ),
            "same-size-J": Variant(
                lambda B: (
                    (sp.eye(B.rows) - sp.ones(B.rows, B.rows) / B.rows)
                    * B
                    * (sp.eye(B.cols) - sp.ones(B.cols, B.cols) / B.rows)
                ),
                "Your right-hand J divides by the number of rows: J = I − 11ᵀ/m needs m = the number of columns "
                "on the right.",
            ),
        },
    )
)


# ============================================================================ chapter 05


@cache
def _bound_by_eigenvalues(d: int, y: int) -> float:
    """sup η with every eigenvalue of S(z) = (1 + ηyz)I − ηyz 11ᵀ positive for all z ∈ [0, 1] (sympy)."""
    if d <= 1:
        return math.inf
    eta = sp.Symbol("eta", positive=True)
    S = (1 + eta * y) * sp.eye(d) - eta * y * sp.ones(d, d)  # z = 1 is the worst z: eigenvalues affine in ηz
    roots = [r for ev in S.eigenvals() for r in sp.solve(sp.Eq(ev, 0), eta) if r.is_positive]
    return float(min(roots)) if roots else math.inf


def _bound_cases() -> list[Case]:
    pairs = [(1, 1), (2, 1), (2, -1), (3, 1), (3, -1), (5, 1), (6, -1)]
    return [Case((d, y), _bound_by_eigenvalues(d, y), f"d = {d}, y = {y:+d}") for d, y in pairs]


def exact_bound(d: int, y: int) -> float:
    """The exact step-size bound: 1/(d − 1) for y = +1 and 1 for y = −1 when d ≥ 2; no bound (inf) for d ≤ 1."""
    if d <= 1:
        return math.inf
    return 1.0 / (d - 1) if y > 0 else 1.0


register(
    Exercise(
        name="exact_bound",
        chapter="05",
        signature="exact_bound(d, y)",
        task=(
            "return the supremum of the step sizes η for which S(z) is positive definite for "
            "every z in [0, 1] (math.inf when there is none)."
        ),
        evidence="sympy's eigenvalues of S(z) at the worst z, solved for η, for seven (d, y)",
        hint_text=(
            "S(z) = (1 + ηyz)I − ηyz 11ᵀ has the eigenvalue 1 − (d − 1)ηyz along 1 and 1 + ηyz on the "
            "complement of 1. Which one can reach 0 for y = +1, and which for y = −1?"
        ),
        reference=exact_bound,
        cases=_bound_cases,
        agree=inf_or_close(rtol=4 * EPS),
        output="a number",
        variants={
            "published-2d": Variant(
                lambda d, y: 1.0 / (2 * d),
                "You returned 1/(2d), the proximal-point blog post's bound: splitting v_iᵀv_j gives each v_i the "
                "coefficient ½Σ_j|α_ij|, not Σ_j|α_ij| (erratum E2); it is safe, but too small.",
                "erratum E2",
            ),
            "published-2d+1": Variant(
                lambda d, y: 1.0 / (2 * d + 1),
                "You returned 1/(2d + 1), the step size the proximal-point blog post uses: the bookkeeping slip of "
                "erratum E2 makes it safe but too small.",
                "erratum E2",
            ),
            "one-over-d": Variant(
                lambda d, y: (1.0 / d if y > 0 else 1.0) if d > 1 else math.inf,
                "Along 1 the eigenvalue is 1 − (d − 1)ηz: each feature pairs with d − 1 others, not d.",
            ),
            "label-ignored": Variant(
                lambda d, y: 1.0 / (d - 1) if d > 1 else math.inf,
                "Right for y = +1 only: for y = −1 the eigenvalue along 1 is 1 + (d − 1)ηz > 0 and the one that "
                "binds is 1 − ηz on the complement of 1, so η < 1.",
            ),
        },
    )
)


def _s_min_eig_cases() -> list[Case]:
    settings = [
        (2, 0.4, 1, 0.5),
        (3, 0.3, -1, 0.8),
        (5, 0.2, 1, 1.0),
        (4, 0.5, -1, 0.3),
        (6, 0.1, 1, 0.7),
        (4, 0.5, 1, 1.0),
    ]
    cases = []
    for d, eta, y, z in settings:
        S = _s_matrix(d, eta * y * z)
        expected = float(torch.linalg.eigvalsh(S)[0])
        cases.append(Case((d, eta, y, z), expected, f"d = {d}, η = {eta}, y = {y:+d}, z = {z}"))
    return cases


def s_min_eigenvalue(d: int, eta: float, y: int, z: float) -> float:
    """The smallest eigenvalue of S(z) = (1 + ηyz)I − ηyz 11ᵀ (d ≥ 2): min(1 − ηyz(d − 1), 1 + ηyz)."""
    beta = eta * y * z
    return min(1 - beta * (d - 1), 1 + beta)


def _eig_agree(expected, actual, case: Case) -> bool:
    d, eta, y, z = case.args
    try:
        a = float(actual)
    except (TypeError, ValueError):
        return False
    # a backward-stable symmetric eigensolver errs by about d·ε·‖S‖₂, ‖S‖₂ ≤ 1 + d|β|
    return math.isfinite(a) and abs(a - float(expected)) <= ROUNDING_SAFETY * d * EPS * (1 + d * abs(eta * z))


register(
    Exercise(
        name="s_min_eigenvalue",
        chapter="05",
        signature="s_min_eigenvalue(d, eta, y, z)",
        task=(
            "return the smallest eigenvalue of S(z) = (1 + ηyz)I − ηyz 11ᵀ of size d ≥ 2 as a float, "
            "from its two eigenvalues (no eigensolver)."
        ),
        evidence="float64 eigenvalues of the explicit d × d matrix S(z), within d·ε·‖S‖ times a safety factor",
        hint_text=(
            "Write β = ηyz. S1 = (1 − β(d − 1))1, and Su = (1 + β)u for every u whose entries sum to zero; "
            "the smaller of the two is the answer, and which one it is depends on the sign of β."
        ),
        reference=s_min_eigenvalue,
        cases=_s_min_eig_cases,
        agree=_eig_agree,
        output="a number",
        variants={
            "d-not-d-1": Variant(
                lambda d, eta, y, z: min(1 - eta * y * z * d, 1 + eta * y * z),
                "Along 1 the eigenvalue is 1 − β(d − 1): J1 = d·1 adds dβ, and the (1 + β) in front gives one β "
                "back, so each feature pairs with d − 1 others, not d.",
            ),
            "label-ignored": Variant(
                lambda d, eta, y, z: min(1 - eta * z * (d - 1), 1 + eta * z),
                "Right for y = +1 only: β = ηyz carries the label, and for y = −1 the smaller eigenvalue is "
                "1 − ηz on the complement of 1.",
            ),
            "mean-only": Variant(
                lambda d, eta, y, z: 1 - eta * y * z * (d - 1),
                "You returned the eigenvalue along 1 only: for y = −1 it is the larger one, and the smallest is "
                "1 + β = 1 − ηz on the vectors that sum to zero.",
            ),
            "worst-z": Variant(
                lambda d, eta, y, z: min(1 - eta * y * (d - 1), 1 + eta * y),
                "Right at z = 1 only: you took the worst z of the bound, but S(z) has β = ηyz with the given z.",
            ),
        },
    )
)


# ============================================================================ chapter 06


def _s_matrix(d: int, beta: float) -> Tensor:
    return (1 + beta) * torch.eye(d, dtype=F64) - beta * torch.ones(d, d, dtype=F64)


def _inverse_cases() -> list[Case]:
    pairs = [(2, 0.2), (3, 0.3), (4, -0.5), (6, 0.15), (5, 0.24)]
    return [Case((d, b), torch.linalg.inv(_s_matrix(d, b)), f"d = {d}, β = {b}") for d, b in pairs]


def s_inverse(d: int, beta: float) -> Tensor:
    """(1/E)(I + (β/D) 11ᵀ) with E = 1 + β, D = 1 − (d − 1)β: the inverse of (1 + β)I − β11ᵀ."""
    E, D = 1 + beta, 1 - (d - 1) * beta
    return (torch.eye(d, dtype=F64) + (beta / D) * torch.ones(d, d, dtype=F64)) / E


def _inverse_agree(expected, actual, case: Case) -> bool:
    d, beta = case.args
    e, a = _as_array(expected), _as_array(actual)
    if e.shape != a.shape or not np.all(np.isfinite(a)):
        return False
    cond = float(torch.linalg.cond(_s_matrix(d, beta)))
    return bool(np.abs(e - a).max() <= ROUNDING_SAFETY * d * cond * EPS * np.abs(e).max())


register(
    Exercise(
        name="s_inverse",
        chapter="06",
        signature="s_inverse(d, beta)",
        task="return the d × d inverse of S = (1 + β)I − β11ᵀ as a float64 tensor, in closed form (no solve).",
        evidence="a dense float64 inverse, within κ(S)·d·ε times a safety factor",
        hint_text=(
            "Write S = E·I − β11ᵀ with E = 1 + β and apply Sherman–Morrison: (A + uvᵀ)⁻¹ = A⁻¹ − "
            "A⁻¹uvᵀA⁻¹/(1 + vᵀA⁻¹u) with A = E·I, u = −β1, v = 1. The denominator is D/E with D = 1 − (d − 1)β."
        ),
        reference=s_inverse,
        cases=_inverse_cases,
        agree=_inverse_agree,
        output="a matrix",
        shape=lambda case: (case.args[0], case.args[0]),
        variants={
            "minus-rank-one": Variant(
                lambda d, b: (
                    (torch.eye(d, dtype=F64) - (b / (1 - (d - 1) * b)) * torch.ones(d, d, dtype=F64)) / (1 + b)
                ),
                "The rank-one term has the wrong sign: S subtracts β11ᵀ, so its inverse adds (β/D)11ᵀ/E.",
            ),
            "D-with-d": Variant(
                lambda d, b: (torch.eye(d, dtype=F64) + (b / (1 - d * b)) * torch.ones(d, d, dtype=F64)) / (1 + b),
                "The eigenvalue of S along 1 is E − dβ = 1 − (d − 1)β, not 1 − dβ.",
            ),
            "no-1/E": Variant(
                lambda d, b: torch.eye(d, dtype=F64) + (b / (1 - (d - 1) * b)) * torch.ones(d, d, dtype=F64),
                "You forgot the factor 1/E in front: Sherman–Morrison starts from A⁻¹ = I/E.",
            ),
        },
    )
)


def _q_by_solving(z: Tensor, b_t: Tensor, V_t: Tensor, y: int, eta: float) -> Tensor:
    """q(z) = min_θ φ(θ, z), the minimiser found by a dense solve SV = V_t (no reduced form), as a
    differentiable function of z; φ = −zy ŷ(θ) + ‖θ − θ_t‖²/(2η) − h*(z), h*(z) = z log z + (1 − z) log(1 − z)."""
    d = V_t.shape[0]
    beta = eta * y * z
    S = (1 + beta) * torch.eye(d, dtype=F64) - beta * torch.ones(d, d, dtype=F64)
    V = torch.linalg.solve(S, V_t)
    b = b_t + eta * z * y
    y_hat = b.sum() + _pair_sum(torch.ones(1, d, dtype=F64), V)[0]
    h_star = z * torch.log(z) + (1 - z) * torch.log(1 - z)
    return -z * y * y_hat + (((b - b_t) ** 2).sum() + ((V - V_t) ** 2).sum()) / (2 * eta) - h_star


@cache
def _q_prime_cases_cached() -> tuple[Case, ...]:
    settings = [(2, 1, 0.5, 0.3), (4, -1, 0.6, 0.7), (5, 1, 0.2, 0.15), (3, -1, 0.3, 0.9)]
    cases = []
    for seed, (d, y, eta_fraction, z0) in enumerate(settings):
        g = _gen(60 + seed)
        V_t = 0.5 * torch.randn(d, 3, dtype=F64, generator=g)  # k = 3 ≠ d
        b_t = 0.5 * torch.randn(d + 1, dtype=F64, generator=g)
        eta = eta_fraction * (1.0 / (d - 1) if y > 0 else 1.0)
        z = torch.tensor(z0, dtype=F64, requires_grad=True)
        (dq,) = torch.autograd.grad(_q_by_solving(z, b_t, V_t, y, eta), z)
        B, A, C = float(b_t.sum()), float((V_t * V_t).sum()), float((V_t.sum(0) ** 2).sum())
        label = f"d = {d}, k = 3, y = {y:+d}, η = {eta:.4g}, z = {z0}"
        cases.append(Case((z0, B, A, C, d, y, eta), float(dq), label))
    return tuple(cases)


def _q_prime_cases() -> list[Case]:
    return list(_q_prime_cases_cached())


def q_prime(z: float, B: float, A: float, C: float, d: int, y: int, eta: float) -> float:
    """q′(z) = −y ŷ(θ(z)) − log(z/(1 − z)), with ŷ(θ(z)) from the sample scalars B, A, C (6.7)."""
    beta = eta * y * z
    lam_mean, lam_perp = 1 - beta * (d - 1), 1 + beta
    m, p = C / d, A - C / d
    y_hat = B + (d + 1) * beta + 0.5 * ((d - 1) * m / lam_mean**2 - p / lam_perp**2)
    return -y * y_hat - math.log(z / (1 - z))


def _q_prime_scale(case: Case) -> float:
    z, B, A, C, d, y, eta = case.args
    lam_min = min(1 - eta * y * z * (d - 1), 1 + eta * y * z)
    return 1 + abs(B) + (d + 1) * eta + A / lam_min**2 + abs(math.log(z / (1 - z)))


def _q_prime_agree(expected, actual, case: Case) -> bool:
    a = float(actual)
    # autograd through a dense solve and the reduced form each err by about γ_n·T, n ≲ 64 operations
    return math.isfinite(a) and abs(a - float(expected)) <= ROUNDING_SAFETY * 64 * EPS * _q_prime_scale(case)


def _q_prime_with(y_hat_of, entropy_sign: float = -1.0, y_sign: float = -1.0):
    def wrong(z, B, A, C, d, y, eta):
        return y_sign * y * y_hat_of(z, B, A, C, d, y, eta) + entropy_sign * math.log(z / (1 - z))

    return wrong


def _y_hat_after(z, B, A, C, d, y, eta, *, lam_d: int | None = None, bias_moves: bool = True):
    beta = eta * y * z
    lam_mean, lam_perp = 1 - beta * (d - 1 if lam_d is None else lam_d), 1 + beta
    m, p = C / d, A - C / d
    bias = (d + 1) * beta if bias_moves else 0.0
    return B + bias + 0.5 * ((d - 1) * m / lam_mean**2 - p / lam_perp**2)


register(
    Exercise(
        name="q_prime",
        chapter="06",
        signature="q_prime(z, B, A, C, d, y, eta)",
        task=(
            "return q′(z), the derivative of the reduced dual, from the sample scalars B, A, C, the number d "
            "of non-zeros, the label y and the step size η, as a float (0 < z < 1)."
        ),
        evidence=(
            "float64 autograd of q(z) computed by a dense solve for the minimiser (no reduced form, no "
            "envelope theorem), k = 3, d ≠ k"
        ),
        hint_text=(
            "By the envelope theorem only the explicit z in φ counts: q′(z) = −y ŷ(θ(z)) − d h*/dz. The new "
            "prediction is (6.7): B + (d + 1)ηyz + ½[(d − 1)m/λ_mean² − p/λ_⊥²] with m = C/d, p = A − C/d."
        ),
        reference=q_prime,
        cases=_q_prime_cases,
        agree=_q_prime_agree,
        output="a number",
        variants={
            "y-hat-at-start": Variant(
                _q_prime_with(lambda z, B, A, C, d, y, eta: B + 0.5 * (C - A)),
                "You used the prediction at θ_t: the envelope theorem differentiates φ in its explicit z, but at "
                "the minimiser θ(z), so ŷ is the prediction after the step, (6.7).",
            ),
            "entropy-sign": Variant(
                _q_prime_with(_y_hat_after, entropy_sign=1.0),
                "The entropy term has the wrong sign: q = … − h*(z), and dh*/dz = log(z/(1 − z)), so q′ subtracts it.",
            ),
            "sign-of-y": Variant(
                _q_prime_with(_y_hat_after, y_sign=1.0),
                "Opposite sign of the label term: φ contains −zy ŷ(θ), so its z-derivative is −y ŷ(θ(z)).",
            ),
            "lambda-d": Variant(
                _q_prime_with(lambda *a: _y_hat_after(*a, lam_d=a[4])),
                "The eigenvalue along 1 is λ_mean = 1 − ηyz(d − 1), not 1 − ηyzd.",
            ),
            "bias-fixed": Variant(
                _q_prime_with(lambda *a: _y_hat_after(*a, bias_moves=False)),
                "Missing (d + 1)ηyz: the step moves the d + 1 biases too, each by ηyz, and the new prediction "
                "includes them.",
            ),
        },
    )
)


# ============================================================================ chapter 07


def _log_loss_by_probability(y: Tensor, y_hat: Tensor) -> float:
    """−mean[t log p + (1 − t) log(1 − p)] with t = (y + 1)/2 and p = σ(ŷ), each log taken stably."""
    t = (y + 1) / 2
    log_p = torch.nn.functional.logsigmoid(y_hat)
    log_1mp = torch.nn.functional.logsigmoid(-y_hat)
    return float(-(t * log_p + (1 - t) * log_1mp).mean())


def _log_loss_cases() -> list[Case]:
    raw = [
        ("three ratings", [1.0, -1.0, 1.0], [0.3, -2.0, -0.5]),
        ("two confident mistakes", [1.0, -1.0], [-800.0, 750.0]),
        ("six ratings", [1.0, 1.0, -1.0, -1.0, 1.0, -1.0], [2.0, -0.1, 0.4, -3.0, 0.0, 1.5]),
    ]
    out = []
    for label, y, s in raw:
        yt, st = torch.tensor(y, dtype=F64), torch.tensor(s, dtype=F64)
        out.append(Case((yt, st), _log_loss_by_probability(yt, st), label))
    return out


def log_loss(y: Tensor, y_hat: Tensor) -> float:
    """Mean of log(1 + e^(−yŷ)) over the rows, computed without overflow (softplus)."""
    return float(torch.nn.functional.softplus(-y * y_hat).mean())


register(
    Exercise(
        name="log_loss",
        chapter="07",
        signature="log_loss(y, y_hat)",
        task=(
            "return the mean of log(1 + e^(−yŷ)) over the rows (labels ±1, scores ŷ) as "
            "a float, finite for any finite scores."
        ),
        evidence="the logistic loss of the probabilities σ(ŷ), taken with stable logarithms",
        hint_text=(
            "log(1 + e^(−m)) overflows when −m > 709. Use log(1 + e^(−m)) = max(−m, 0) + log(1 + e^(−|m|)), "
            "which torch provides as softplus."
        ),
        reference=log_loss,
        cases=_log_loss_cases,
        agree=inf_or_close(rtol=ROUNDING_SAFETY * EPS * 8),
        output="a number",
        variants={
            "overflow": Variant(
                lambda y, s: float(torch.log(1 + torch.exp(-y * s)).mean()),
                "Your loss overflows on confident mistakes: e^(−yŷ) is inf for yŷ < −709; write it as "
                "max(−m, 0) + log(1 + e^(−|m|)) (softplus).",
            ),
            "sum": Variant(
                lambda y, s: float(torch.nn.functional.softplus(-y * s).sum()),
                "You returned the sum over the rows, not the mean.",
            ),
            "labels-01": Variant(
                lambda y, s: float(
                    -(y * torch.nn.functional.logsigmoid(s) + (1 - y) * torch.nn.functional.logsigmoid(-s)).mean()
                ),
                "You used the 0/1 formula −[y log p + (1 − y) log(1 − p)] with labels ±1: map y to (y + 1)/2 first.",
            ),
        },
    )
)


def _stretch_cases() -> list[Case]:
    cases = []
    for d, eta, y in [(2, 0.3, 1), (3, 0.2, 1), (11, 1 / 23, 1), (11, 1 / 23, -1), (6, 0.1, -1), (4, 0.2, 1)]:
        # evidence: the largest eigenvalue of the numerically inverted S(z) over a grid of z in [0, 1]
        worst = max(
            float(torch.linalg.eigvalsh(torch.linalg.inv(_s_matrix(d, eta * y * z))).max())
            for z in np.linspace(0.0, 1.0, 41)
        )
        cases.append(Case((d, eta, y), worst, f"d = {d}, η = {eta:.4g}, y = {y:+d}"))
    return cases


def max_stretch(d: int, eta: float, y: int) -> float:
    """Largest eigenvalue of S(z)⁻¹ over z ∈ [0, 1], by (7.1): 1/(1 − (d − 1)η) for y = +1, 1/(1 − η) for y = −1."""
    return 1.0 / (1.0 - (d - 1) * eta) if y > 0 else 1.0 / (1.0 - eta)


register(
    Exercise(
        name="max_stretch",
        chapter="07",
        signature="max_stretch(d, eta, y)",
        task=(
            "return the largest factor by which one prox step can stretch a direction of the sample's "
            "latent vectors: the largest eigenvalue of S(z)⁻¹ over z ∈ [0, 1], as a float."
        ),
        evidence="the eigenvalues of the numerically inverted S(z) on a grid of 41 values of z, end points included",
        hint_text=(
            "By (7.1) S(z)⁻¹ has eigenvalue 1/(1 − (d − 1)ηyz) along 1 and 1/(1 + ηyz) on the rest. For y = +1 the "
            "first grows with z; for y = −1 the second does. Both are largest at z = 1."
        ),
        reference=max_stretch,
        cases=_stretch_cases,
        agree=inf_or_close(rtol=1e-12),
        output="a number",
        variants={
            "d-not-d-1": Variant(
                lambda d, eta, y: 1.0 / (1.0 - d * eta) if y > 0 else 1.0 / (1.0 - eta),
                "The common direction's eigenvalue of S is 1 + β − βd = 1 − (d − 1)β, not 1 − dβ.",
            ),
            "one-direction-only": Variant(
                lambda d, eta, y: 1.0 / (1.0 - (d - 1) * eta * y),
                "For y = −1 the common direction shrinks (1/(1 + (d − 1)η) < 1); the largest stretch is then "
                "on the directions orthogonal to 1, 1/(1 − η).",
            ),
            "not-inverted": Variant(
                lambda d, eta, y: 1.0 + eta if y > 0 else 1.0 + (d - 1) * eta,
                "You took the largest eigenvalue of S(z), not of its inverse: the step applies S(z)⁻¹.",
            ),
        },
    )
)


# ============================================================================ chapter 08


def _paired_cases() -> list[Case]:
    cases = []
    for label, n, seed in [("5 rows", 5, 0), ("40 rows", 40, 1), ("1,000 rows", 1000, 2)]:
        g = np.random.default_rng(seed)
        base = g.exponential(0.45, size=n)  # the difficulty of each row, shared by both models
        a = base + g.normal(0, 0.02, size=n)
        b = base + 0.004 + g.normal(0, 0.02, size=n)
        diff = b - a
        se = math.sqrt(sum((x - diff.mean()) ** 2 for x in diff) / (n - 1) / n)
        cases.append(Case((a, b), se, label))
    return cases


def paired_se(loss_a: np.ndarray, loss_b: np.ndarray) -> float:
    """Standard error of the mean paired difference mean(loss_b − loss_a) over the same rows."""
    diff = np.asarray(loss_b, dtype=np.float64) - np.asarray(loss_a, dtype=np.float64)
    return float(diff.std(ddof=1) / math.sqrt(len(diff)))


register(
    Exercise(
        name="paired_se",
        chapter="08",
        signature="paired_se(loss_a, loss_b)",
        task=(
            "return the standard error of the mean of loss_b − loss_a, two models' "
            "per-row losses on the SAME test rows."
        ),
        evidence="the sample standard deviation of the per-row differences over √n, summed term by term",
        hint_text=(
            "Both models are scored on the same rows, so work with the per-row differences d_r = b_r − a_r: "
            "their sample standard deviation (ddof = 1) divided by √n."
        ),
        reference=paired_se,
        cases=_paired_cases,
        agree=inf_or_close(rtol=1e-10),
        output="a number",
        variants={
            "unpaired": Variant(
                lambda a, b: float(math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b))),
                "You treated the two models as independent samples: both score the same rows, and the rows' "
                "difficulty is shared, so the per-row differences vary far less than either loss.",
            ),
            "ddof0": Variant(
                lambda a, b: float(np.std(np.asarray(b) - np.asarray(a)) / math.sqrt(len(a))),
                "You used the population standard deviation (dividing by n): use n − 1 for a sample.",
            ),
            "no-sqrt-n": Variant(
                lambda a, b: float(np.std(np.asarray(b) - np.asarray(a), ddof=1)),
                "You returned the spread of one row's difference: the mean of n rows has it divided by √n.",
            ),
        },
    )
)


def _width_cases() -> list[Case]:
    def scan(etas, losses, tol):  # the definition, step by step: keep the qualifying η, then the ratio
        finite = [v for v in losses if math.isfinite(v)]
        best = min(finite)
        kept = [e for e, v in zip(etas, losses) if math.isfinite(v) and v <= best + tol]
        return math.log10(max(kept) / min(kept))

    raw = [
        ("a valley", [1e-4, 1e-3, 1e-2, 1e-1], [0.50, 0.43, 0.431, 0.46], 0.005),
        (
            "unsorted, with a diverged run",
            [1e-2, 1e-4, 1.0, 1e-3, 1e-1],
            [0.4302, 0.52, math.inf, 0.4301, 0.4349],
            0.005,
        ),
        ("only the best qualifies", [1e-5, 1e-3, 1e-1], [0.51, 0.43, 0.6], 0.005),
        ("a nan and a wide window", [1e-5, 1e-4, 1e-3, 1e-2], [math.nan, 0.4421, 0.4402, 0.4449], 0.005),
    ]
    return [Case((e, v, tol), scan(e, v, tol), label) for label, e, v, tol in raw]


def stable_width(etas, losses, tol: float) -> float:
    """log10(η_hi/η_lo) over the step sizes whose loss is within ``tol`` of the smallest finite loss (8.3)."""
    from ..movielens.analysis import stable_width as width

    return width(etas, losses, tol)[0]


register(
    Exercise(
        name="stable_width",
        chapter="08",
        signature="stable_width(etas, losses, tol)",
        task=(
            "return log10(η_hi / η_lo), where η_lo and η_hi are the smallest and largest step sizes whose "
            "loss is within tol of the smallest finite loss; non-finite losses never qualify."
        ),
        evidence="a scan of the definition, step size by step size, in plain Python",
        hint_text=(
            "Drop the non-finite losses first, take the best of the rest, keep the step sizes with loss ≤ best + tol, "
            "and return log10(max / min) of those. Do not assume the step sizes are sorted."
        ),
        reference=stable_width,
        cases=_width_cases,
        agree=inf_or_close(rtol=1e-12),
        output="a number",
        variants={
            "natural-log": Variant(
                lambda e, v, tol: math.log(
                    max(x for x, y in zip(e, v) if y <= min(w for w in v if math.isfinite(w)) + tol)
                    / min(x for x, y in zip(e, v) if y <= min(w for w in v if math.isfinite(w)) + tol)
                ),
                "You used the natural logarithm: the width is counted in decades, log10.",
            ),
            "loss-spread": Variant(
                lambda e, v, tol: max(w for w in v if math.isfinite(w)) - min(w for w in v if math.isfinite(w)),
                "You returned the spread of the loss (largest minus smallest): the width measures step sizes, "
                "log10(η_hi / η_lo), over those within tol of the best.",
            ),
            "grid-order": Variant(
                lambda e, v, tol: math.log10(
                    [x for x, y in zip(e, v) if y <= min(w for w in v if math.isfinite(w)) + tol][-1]
                    / [x for x, y in zip(e, v) if y <= min(w for w in v if math.isfinite(w)) + tol][0]
                ),
                "You took the first and last qualifying step sizes in the order given: sort them (or use min and max).",
            ),
        },
    )
)


# ============================================================================ chapter 09


def _reg_s_matrix(d: int, beta: float, eta: float, lam_v: float) -> Tensor:
    a = 1 + eta * lam_v
    return (a + beta) * torch.eye(d, dtype=F64) - beta * torch.ones(d, d, dtype=F64)


def _reg_latent_cases() -> list[Case]:
    raw = [  # (d, k, beta, eta, lam_v, seed); k >= 3 and d != k where both vary
        (2, 3, 0.02, 0.1, 0.5, 0),
        (3, 4, -0.05, 0.1, 0.3, 1),
        (5, 3, 0.03, 0.06, 0.2, 2),
        (11, 4, 0.004, 0.01, 0.1, 3),
        (4, 3, -0.2, 0.5, 1.0, 4),
    ]
    out = []
    for d, k, beta, eta, lam_v, seed in raw:
        V_t = torch.randn(d, k, dtype=F64, generator=_gen(900 + seed))
        expected = torch.linalg.solve(_reg_s_matrix(d, beta, eta, lam_v), V_t)
        out.append(Case((V_t, beta, eta, lam_v), expected, f"d = {d}, k = {k}, β = {beta}, η = {eta}, λ_v = {lam_v}"))
    return out


def reg_latent_step(V_t: Tensor, beta: float, eta: float, lam_v: float) -> Tensor:
    """V_I = S_λ⁻¹ V_t with S_λ = (a + β)I − β11ᵀ, a = 1 + ηλ_v: (V_t + (β/D) 1 (1ᵀV_t)) / E."""
    d = V_t.shape[0]
    a = 1 + eta * lam_v
    E, D = a + beta, a - (d - 1) * beta
    return (V_t + (beta / D) * V_t.sum(dim=0, keepdim=True)) / E


def _reg_latent_agree(expected, actual, case: Case) -> bool:
    V_t, beta, eta, lam_v = case.args
    e, a = _as_array(expected), _as_array(actual)
    if e.shape != a.shape or not np.all(np.isfinite(a)):
        return False
    d = V_t.shape[0]
    cond = float(torch.linalg.cond(_reg_s_matrix(d, beta, eta, lam_v)))
    return bool(np.abs(e - a).max() <= ROUNDING_SAFETY * d * cond * EPS * np.abs(e).max())


def _latent_variant(E_of, D_of):
    def fn(V_t, beta, eta, lam_v):
        d = V_t.shape[0]
        a = 1 + eta * lam_v
        return (V_t + (beta / D_of(a, d, beta)) * V_t.sum(dim=0, keepdim=True)) / E_of(a, beta)

    return fn


register(
    Exercise(
        name="reg_latent_step",
        chapter="09",
        signature="reg_latent_step(V_t, beta, eta, lam_v)",
        task=(
            "return the touched latent rows after the regularised step for a fixed z: the solution V of "
            "S_λ V = V_t with S_λ = (a + β)I − β11ᵀ, a = 1 + ηλ_v, in closed form (no solve), float64 (d, k)."
        ),
        evidence="a dense float64 solve of S_λ V = V_t, within κ(S_λ)·d·ε times a safety factor",
        hint_text=(
            "Sherman–Morrison: S_λ⁻¹ = (1/E)(I + (β/D)11ᵀ) with E = a + β and D = a − (d − 1)β. Applied to V_t, "
            "11ᵀV_t puts the column sums of V_t in every row."
        ),
        reference=reg_latent_step,
        cases=_reg_latent_cases,
        agree=_reg_latent_agree,
        output="a matrix",
        shape=lambda case: tuple(case.args[0].shape),
        variants={
            "a-instead-of-E": Variant(
                _latent_variant(lambda a, b: a, lambda a, d, b: a - (d - 1) * b),
                "You divided by a = 1 + ηλ_v in front: the eigenvalue of S_λ on the complement of 1 is E = a + β.",
            ),
            "penalty-forgotten": Variant(
                _latent_variant(lambda a, b: 1 + b, lambda a, d, b: 1 - (d - 1) * b),
                "Your step ignores the penalty: with λ_v > 0 the diagonal of S_λ is a + β with a = 1 + ηλ_v, "
                "not 1 + β.",
            ),
            "D-with-d": Variant(
                _latent_variant(lambda a, b: a + b, lambda a, d, b: a - d * b),
                "The eigenvalue of S_λ along 1 is E − dβ = a − (d − 1)β, not a − dβ.",
            ),
        },
    )
)


def _linear_objective_minimiser(b_t: Tensor, beta: float, eta: float, lam_w: float) -> Tensor:
    """The minimiser of −(β/η)(w0 + Σ w_i) + ½λ_w Σ w_i² + ‖b − b_t‖²/(2η) over b = (w0, w_I): one
    Newton step from b_t with autograd's gradient and Hessian (exact, the objective is quadratic)."""

    def objective(b: Tensor) -> Tensor:
        return -(beta / eta) * b.sum() + 0.5 * lam_w * (b[1:] ** 2).sum() + ((b - b_t) ** 2).sum() / (2 * eta)

    g = torch.autograd.functional.jacobian(objective, b_t)
    H = torch.autograd.functional.hessian(objective, b_t)
    return b_t - torch.linalg.solve(H, g)


def _reg_linear_cases() -> list[Case]:
    raw = [(2, 0.03, 0.1, 0.5, 0), (3, -0.02, 0.05, 0.3, 1), (6, 0.01, 0.04, 0.01, 2), (11, -0.4, 0.5, 2.0, 3)]
    out = []
    for d, beta, eta, lam_w, seed in raw:
        b_t = torch.randn(d + 1, dtype=F64, generator=_gen(950 + seed))
        expected = _linear_objective_minimiser(b_t, beta, eta, lam_w)
        out.append(Case((b_t, beta, eta, lam_w), expected, f"d = {d}, β = {beta}, η = {eta}, λ_w = {lam_w}"))
    return out


def reg_linear_step(b_t: Tensor, beta: float, eta: float, lam_w: float) -> Tensor:
    """b = (w0, w_I) after the regularised step for fixed z: w0 + β (never penalised), ρ(w_i + β), ρ = 1/(1 + ηλ_w)."""
    rho = 1 / (1 + eta * lam_w)
    out = rho * (b_t + beta)
    out[0] = b_t[0] + beta
    return out


def _linear_variant(rho_w0: bool, rho_w: bool, shrink_first: bool):
    def fn(b_t, beta, eta, lam_w):
        rho = 1 / (1 + eta * lam_w)
        out = (rho * b_t + beta) if shrink_first else (rho if rho_w else 1.0) * (b_t + beta)
        out[0] = (rho if rho_w0 else 1.0) * (b_t[0] + beta)
        return out

    return fn


register(
    Exercise(
        name="reg_linear_step",
        chapter="09",
        signature="reg_linear_step(b_t, beta, eta, lam_w)",
        task=(
            "b_t = (w0, w_i for the d touched features) as a float64 vector: return the same vector after the "
            "regularised step for a fixed z (β = ηyz, per-touch penalty ½λ_w w_i² on the touched w_i only)."
        ),
        evidence="the minimiser of the step's quadratic objective in (w0, w_I), by autograd's gradient and Hessian",
        hint_text=(
            "Set the derivative of −(β/η) w_i + ½λ_w w_i² + (w_i − w_i,t)²/(2η) to zero and multiply by η. "
            "w0 has no penalty term."
        ),
        reference=reg_linear_step,
        cases=_reg_linear_cases,
        agree=_rounding_agree(lambda case: 4.0 * (float(case.args[0].abs().max()) + abs(case.args[1]))),
        output="a vector",
        shape=lambda case: tuple(case.args[0].shape),
        variants={
            "penalised-w0": Variant(
                _linear_variant(True, True, False),
                "You shrank w0 too: the per-touch penalty never touches the global bias, so w0 ← w0 + β.",
            ),
            "rho-forgotten": Variant(
                _linear_variant(False, False, False),
                "Your w_i ignore the penalty: the stationarity condition gives w_i = ρ(w_i,t + β) with "
                "ρ = 1/(1 + ηλ_w).",
            ),
            "shrink-then-step": Variant(
                _linear_variant(False, True, True),
                "You shrank w_i,t and then added β (ρw + β, as a decoupled weight decay would): the implicit step "
                "shrinks the sum, ρ(w_i,t + β).",
            ),
        },
    )
)
