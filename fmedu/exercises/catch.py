"""Every check shown to catch something: a chapter's checks run against its catalogue of wrong variants.

A check that no wrong function can fail is a check that cannot fail. For a chapter,
:func:`catch_table` runs every check that takes a candidate function (the check of each "your
turn" exercise, and the chapter's other checks that accept the same kind of function, listed in
:data:`CHAPTER_CHECKS`) on every catalogued wrong variant of that kind and on the reference
solution. A variant is *caught* by a check when the check says it is wrong; the reference must be
caught by none. :func:`every_check_catches` is the chapter's verdict: every check catches at least
one variant, every variant is caught by at least one check, and no check rejects a reference.

:data:`PENDING_SECOND_YOUR_TURN` lists the chapters whose second "your turn" exercise is still
to be written (each chapter needs two); the tests keep that list honest in both directions.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .core import EXERCISES, Exercise

__all__ = [
    "ChapterCheck",
    "CatchRow",
    "CHAPTER_CHECKS",
    "PENDING_SECOND_YOUR_TURN",
    "checks_for",
    "catch_table",
    "format_catch_table",
    "every_check_catches",
]

F64 = torch.float64
EPS = float(torch.finfo(F64).eps)

# Chapters whose second "your turn" exercise is not written yet (each chapter needs at least two).
PENDING_SECOND_YOUR_TURN: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ChapterCheck:
    """A check that takes a candidate function of the kind ``exercise`` asks for; ``passes(fn)`` is
    True when the check accepts ``fn`` (it must not raise: a candidate that raises fails)."""

    name: str
    exercise: str
    passes: Callable[[Callable], bool]
    what: str


@dataclass(frozen=True)
class CatchRow:
    """One candidate (a wrong variant, or the reference) and, per check name, whether the check
    rejected it (None where the check takes another kind of function)."""

    exercise: str
    candidate: str  # a variant's name, or "reference"
    source: str  # "erratum E1", "a common slip", "reference solution"
    caught: dict[str, bool | None]

    @property
    def is_reference(self) -> bool:
        return self.candidate == "reference"


def _quietly(check: Callable[[Callable], bool]) -> Callable[[Callable], bool]:
    """Run a check with its printed verdict swallowed and any exception counted as a failure."""

    def passes(fn: Callable) -> bool:
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                return bool(check(fn))
            except Exception:
                return False

    return passes


# --------------------------------------------------------------------------- the chapters' own checks


def _rendle_rounding_bound(fn: Callable) -> bool:
    """Chapter 01's rounding-bound check (1.6) on dense and 0/1 batches, n = 7, k = 3."""
    from ..testing import check_rendle_form

    return check_rendle_form(fn)


def _grad_v_finite_differences(fn: Callable) -> bool:
    """Chapter 02's third way: central differences of the pair sum, n = 5, k = 3, step h = 1e-6.

    The difference quotient of a cubic polynomial errs by h²·(third derivative)/6 plus rounding
    ε·|f|/h; with entries of size ≤ 3 both stay far below 1e-6, which we allow."""
    from ..model import pairwise_naive

    gen = torch.Generator().manual_seed(7)
    n, k, h = 5, 3, 1e-6
    x = torch.tensor([1.0, -2.0, 0.0, 0.5, 3.0], dtype=F64)
    V = torch.randn(n, k, dtype=F64, generator=gen)
    got = torch.as_tensor(fn(x.clone(), V.clone()), dtype=F64)
    if got.shape != (n, k):
        return False
    fd = torch.zeros(n, k, dtype=F64)
    for i in range(n):
        for f in range(k):
            up, down = V.clone(), V.clone()
            up[i, f] += h
            down[i, f] -= h
            fd[i, f] = (pairwise_naive(x[None], up)[0] - pairwise_naive(x[None], down)[0]) / (2 * h)
    return bool(((got - fd).abs() <= 1e-6).all())


def _dloss_finite_differences(fn: Callable) -> bool:
    """Central differences of log(1 + e^(−yŷ)) at six scores, h = 1e-6, agreement within 1e-8
    (the loss's second derivative is at most ¼, the third at most 0.1: h²/6·0.1 plus ε/h ≈ 2e-10)."""
    y_hat = torch.tensor([-3.0, -0.4, 0.0, 0.2, 1.5, 4.0], dtype=F64)
    y = torch.tensor([1.0, -1.0, 1.0, -1.0, -1.0, 1.0], dtype=F64)
    h = 1e-6
    loss = lambda s: torch.nn.functional.softplus(-y * s)
    fd = (loss(y_hat + h) - loss(y_hat - h)) / (2 * h)
    got = torch.as_tensor(fn(y_hat.clone(), y.clone()), dtype=F64)
    return got.shape == fd.shape and bool(((got - fd).abs() <= 1e-8).all())


def _bound_by_eigenvalues_either_side(fn: Callable) -> bool:
    """Chapter 05's check of the bound: S(1) positive definite at 0.999 × the bound and not at 1.001 ×,
    float64 eigenvalues, d ∈ {2, 6, 11}, both labels."""
    for d in (2, 6, 11):
        for y in (1, -1):
            b = float(fn(d, y))
            if not math.isfinite(b) or b <= 0:
                return False
            low, high = (torch.linalg.eigvalsh(_s(d, f * b * y))[0] for f in (0.999, 1.001))
            if not (low > 0 > high):
                return False
    return True


def _s(d: int, beta: float) -> torch.Tensor:
    return (1 + beta) * torch.eye(d, dtype=F64) - beta * torch.ones(d, d, dtype=F64)


def _s_inverse_residual(fn: Callable) -> bool:
    """Chapter 06's Sherman–Morrison check as a residual: ‖S·X − I‖_max ≤ 16·d·κ(S)·ε for the
    candidate X, d ∈ {3, 7}, β ∈ {0.1, −0.4}."""
    for d in (3, 7):
        for beta in (0.1, -0.4):
            X = torch.as_tensor(fn(d, beta), dtype=F64)
            S = _s(d, beta)
            if X.shape != (d, d):
                return False
            residual = float((S @ X - torch.eye(d, dtype=F64)).abs().max())
            if not residual <= 16 * d * float(torch.linalg.cond(S)) * EPS:
                return False
    return True


def _q_prime_finite_differences(fn: Callable) -> bool:
    """q′ against central differences of q (the library's q from a tensor solve), h = 1e-5, within 1e-7:
    q is smooth on (0, 1) away from the bound, so h²·|q‴|/6 + ε|q|/h stays below 1e-8 here."""
    from .. import prox

    gen = torch.Generator().manual_seed(8)
    d, k, h = 4, 3, 1e-5
    V_rows = 0.5 * torch.randn(d, k, dtype=F64, generator=gen)
    B = 0.3
    A, C = float((V_rows * V_rows).sum()), float((V_rows.sum(0) ** 2).sum())
    for y, eta in ((1, 0.2), (-1, 0.5)):
        for z in (0.2, 0.6):
            fd = (prox.q(z + h, B, V_rows, y, eta) - prox.q(z - h, B, V_rows, y, eta)) / (2 * h)
            got = float(fn(z, B, A, C, d, y, eta))
            if not abs(got - fd) <= 1e-7:
                return False
    return True


def _reg_latent_stationary(fn: Callable) -> bool:
    """Chapter 09's autograd check: at the candidate V the gradient of η × the latent part of the
    penalised prox objective for a fixed z, −β Σ_{i<j}⟨v_i, v_j⟩ + ½ηλ_v‖V‖² + ½‖V − V_t‖², vanishes
    (float64; d ∈ {3, 5}, k = 4, both signs of β, within 1e-10 of the data's scale)."""
    gen = torch.Generator().manual_seed(9)
    for d, beta, eta, lam_v in ((3, 0.2, 0.3, 0.05), (5, -0.4, 0.5, 0.1), (5, 0.15, 0.2, 0.3)):
        V_t = torch.randn(d, 4, dtype=F64, generator=gen)
        V = torch.as_tensor(fn(V_t.clone(), beta, eta, lam_v), dtype=F64).detach().clone()
        if V.shape != V_t.shape or not bool(torch.isfinite(V).all()):
            return False
        V.requires_grad_(True)
        s = V.sum(0)
        pairs = 0.5 * ((s * s).sum() - (V * V).sum())
        G = -beta * pairs + 0.5 * eta * lam_v * (V * V).sum() + 0.5 * ((V - V_t) ** 2).sum()
        (g,) = torch.autograd.grad(G, V)
        if float(g.abs().max()) > 1e-10 * (1 + float(V_t.abs().max())):
            return False
    return True


CHAPTER_CHECKS: dict[str, list[ChapterCheck]] = {
    "01": [
        ChapterCheck(
            "rounding bound (1.6)",
            "rendle_pairwise",
            _quietly(_rendle_rounding_bound),
            "the pair sum on dense and 0/1 batches within twice the rounding bound (1.6)",
        )
    ],
    "02": [
        ChapterCheck(
            "finite differences",
            "grad_v",
            _quietly(_grad_v_finite_differences),
            "central differences of the pair sum",
        ),
        ChapterCheck(
            "finite differences (loss)",
            "logistic_dloss",
            _quietly(_dloss_finite_differences),
            "central differences of the logistic loss",
        ),
    ],
    "05": [
        ChapterCheck(
            "eigenvalues either side",
            "exact_bound",
            _quietly(_bound_by_eigenvalues_either_side),
            "S(1) positive definite at 0.999 × the bound and not at 1.001 ×",
        )
    ],
    "06": [
        ChapterCheck(
            "residual S·X − I",
            "s_inverse",
            _quietly(_s_inverse_residual),
            "the residual of S times the candidate inverse",
        ),
        ChapterCheck(
            "finite differences of q",
            "q_prime",
            _quietly(_q_prime_finite_differences),
            "central differences of q computed by a tensor solve",
        ),
    ],
    "09": [
        ChapterCheck(
            "autograd stationarity",
            "reg_latent_step",
            _quietly(_reg_latent_stationary),
            "the gradient of the penalised latent objective vanishes at the candidate",
        ),
    ],
}


# --------------------------------------------------------------------------- the table


def _exercise_check(ex: Exercise) -> ChapterCheck:
    def passes(fn: Callable) -> bool:
        return ex.check(fn, quiet=True).correct

    return ChapterCheck(f"{ex.name} check", ex.name, passes, ex.evidence)


def checks_for(chapter: str) -> list[ChapterCheck]:
    """The chapter's checks that take a candidate function: each exercise's check, then the others."""
    exercises = [ex for ex in EXERCISES.values() if ex.chapter == chapter]
    if not exercises and chapter not in CHAPTER_CHECKS:
        known = sorted({ex.chapter for ex in EXERCISES.values()})
        raise KeyError(f"chapter {chapter!r} has no exercises and no checks; chapters with exercises: {known}")
    return [_exercise_check(ex) for ex in exercises] + list(CHAPTER_CHECKS.get(chapter, []))


def catch_table(chapter: str) -> list[CatchRow]:
    """For every exercise of ``chapter``: its reference and each catalogued variant, and per check
    whether the check rejected it (None where the check takes another kind of function)."""
    checks = checks_for(chapter)
    rows = []
    for ex in (ex for ex in EXERCISES.values() if ex.chapter == chapter):
        candidates = [("reference", "reference solution", ex.reference)]
        candidates += [(name, v.source, v.fn) for name, v in ex.variants.items()]
        for name, source, fn in candidates:
            caught = {c.name: (not c.passes(fn)) if c.exercise == ex.name else None for c in checks}
            rows.append(CatchRow(ex.name, name, source, caught))
    return rows


def format_catch_table(rows: list[CatchRow]) -> str:
    """A plain-text table, one block per exercise: a line per candidate (the reference first), a column
    per check that takes that exercise's kind of function, each cell "caught" or "passes"."""
    if not rows:
        return "(no exercises)"
    blocks = []
    for exercise in dict.fromkeys(r.exercise for r in rows):
        mine = [r for r in rows if r.exercise == exercise]
        names = [n for n, v in mine[0].caught.items() if v is not None]
        header = [exercise, "source", *names]
        body = [[r.candidate, r.source, *("caught" if r.caught[n] else "passes" for n in names)] for r in mine]
        widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in [header, *body]
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def every_check_catches(rows: list[CatchRow]) -> bool:
    """True when every check rejects at least one variant, every variant is rejected by at least one
    check, and no check rejects a reference solution."""
    if not rows:
        return False
    names = list(rows[0].caught)
    variants = [r for r in rows if not r.is_reference]
    references = [r for r in rows if r.is_reference]
    each_check = all(any(r.caught[n] for r in variants) for n in names)
    each_variant = all(any(v for v in r.caught.values()) for r in variants)
    references_pass = all(not any(v for v in r.caught.values()) for r in references)
    return each_check and each_variant and references_pass
