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

    One sample of a prox step (chapters 04 and 05, ``tests/test_prox.py``).
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
