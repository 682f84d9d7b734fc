"""FM prediction: the naive double sum, Rendle's O(nk) form, a sparse form and an nn.Module.

Used by chapter 01 (the reformulation and its cost) and by every later chapter.

Shapes (notation as in the README): ``x`` is ``(n,)`` or ``(batch, n)``, ``w0`` a scalar tensor,
``w`` is ``(n,)`` and ``V`` is ``(n, k)`` with row ``v_i`` the latent vector of feature i.

Sparse batches (one-hot / multi-hot data) are a *padded index matrix*:

* ``idx``: int64 ``(batch, m)`` (or ``(m,)`` for one sample), the non-zero feature
  indices of each sample, padded with ``-1`` on the right when samples have fewer than
  ``m`` non-zeros;
* ``val``: optional float ``(batch, m)``, the values at those indices (default 1, i.e.
  one-hot / multi-hot); ignored where ``idx == -1``.

Indices within a sample must be distinct (a repeated index would be two different
features in the sparse form but one summed value in the dense form).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .errors import FMInputError
from .validation import (
    check_dense_batch,
    check_devices,
    check_finite_result,
    check_indices,
    check_params,
    check_sparse_batch,
    require_finite,
)

__all__ = [
    "predict_naive",
    "predict",
    "predict_sparse",
    "pairwise_naive",
    "pairwise_rendle",
    "pairwise_sparse",
    "dense_to_sparse",
    "sparse_to_dense",
    "FactorizationMachine",
]


def pairwise_naive(x: Tensor, V: Tensor) -> Tensor:
    """Σ_{i<j} ⟨v_i, v_j⟩ x_i x_j by the double sum over pairs: O(n²k).

    The Gram matrix V Vᵀ (n², k multiply-adds each) is formed explicitly and only its
    strict upper triangle is used. ``x``: ``(batch, n)``; returns ``(batch,)``.
    """
    gram = V @ V.T  # (n, n): ⟨v_i, v_j⟩
    upper = torch.triu(gram, diagonal=1)  # keep i < j only
    return ((x @ upper) * x).sum(-1)


def pairwise_rendle(x: Tensor, V: Tensor) -> Tensor:
    """½ Σ_f [(Σ_i v_if x_i)² − Σ_i v_if² x_i²]: O(nk). ``x``: ``(batch, n)``."""
    xv = x @ V  # (batch, k): Σ_i v_if x_i, reused for every pair
    x2v2 = (x * x) @ (V * V)  # (batch, k): Σ_i v_if² x_i²
    return 0.5 * (xv * xv - x2v2).sum(-1)


def _dense(x, w0, w, V, pairwise, check: bool) -> Tensor:
    if check:
        check_params(w0, w, V)
        check_dense_batch(x, V)
    batch = x.unsqueeze(0) if x.dim() == 1 else x
    out = w0 + batch @ w + pairwise(batch, V)
    if check:
        check_finite_result("the prediction y_hat", out)
    return out[0] if x.dim() == 1 else out


def predict_naive(x: Tensor, w0: Tensor, w: Tensor, V: Tensor, *, check: bool = True) -> Tensor:
    """ŷ(x) = w0 + Σ_i w_i x_i + Σ_{i<j} ⟨v_i, v_j⟩ x_i x_j, pairs summed explicitly (O(n²k)).

    ``x`` of shape ``(n,)`` gives a scalar tensor, ``(batch, n)`` gives ``(batch,)``.
    Chapter 01 uses it as the reference the fast forms are checked against.
    """
    return _dense(x, w0, w, V, pairwise_naive, check)


def predict(x: Tensor, w0: Tensor, w: Tensor, V: Tensor, *, check: bool = True) -> Tensor:
    """ŷ(x) by Rendle's reformulation of the pairwise term (O(nk) per sample).

    Same contract as :func:`predict_naive`; pass ``check=False`` in hot loops once the
    inputs are known to be valid.
    """
    return _dense(x, w0, w, V, pairwise_rendle, check)


def sparse_batch(idx: Tensor, val: Tensor | None, w0: Tensor, w: Tensor, V: Tensor, check: bool):
    """Validate (when ``check``) and lift a single sample to a batch: ``(idx, val, single)``.

    Shared by the sparse prediction here and the sparse gradients in ``fmedu.grad``.
    """
    if check:
        check_params(w0, w, V)
        idx = check_sparse_batch(idx, val, V)
    single = idx.dim() == 1
    if single:
        idx = idx.unsqueeze(0)
        val = None if val is None else val.unsqueeze(0)
    return idx, val, single


def gather_sparse(idx: Tensor, val: Tensor | None, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Safe indices (padding → 0) and values with padding zeroed, both ``(batch, m)``."""
    present = idx >= 0
    safe_idx = torch.where(present, idx, torch.zeros_like(idx))
    if val is None:
        values = present.to(dtype)
    else:
        values = torch.where(present, val, torch.zeros_like(val))
    return safe_idx, values


def pairwise_sparse(idx: Tensor, val: Tensor | None, V: Tensor) -> Tensor:
    """Rendle's pairwise term on a padded index batch: O(m·k) per sample, independent of n."""
    safe_idx, values = gather_sparse(idx, val, V.dtype)
    rows = V[safe_idx] * values.unsqueeze(-1)  # (batch, m, k): v_i x_i
    sum_f = rows.sum(-2)  # (batch, k)
    return 0.5 * (sum_f * sum_f - (rows * rows).sum(-2)).sum(-1)


def predict_sparse(
    idx: Tensor,
    w0: Tensor,
    w: Tensor,
    V: Tensor,
    val: Tensor | None = None,
    *,
    check: bool = True,
) -> Tensor:
    """ŷ for a padded index batch (see the module docstring for the layout).

    ``idx`` of shape ``(m,)`` gives a scalar tensor, ``(batch, m)`` gives ``(batch,)``.
    The cost is O(batch·m·k): it depends on the number of non-zeros, not on n.
    """
    idx, val, single = sparse_batch(idx, val, w0, w, V, check)
    safe_idx, values = gather_sparse(idx, val, V.dtype)
    out = w0 + (w[safe_idx] * values).sum(-1) + pairwise_sparse(idx, val, V)
    if check:
        check_finite_result("the prediction y_hat", out)
    return out[0] if single else out


def dense_to_sparse(x: Tensor) -> tuple[Tensor, Tensor]:
    """Padded ``(idx, val)`` holding the non-zeros of a dense ``(batch, n)`` or ``(n,)`` x."""
    if not isinstance(x, torch.Tensor):
        raise FMInputError(
            f"x must be a torch.Tensor, got {type(x).__name__}; convert it with torch.as_tensor(x, dtype=torch.float64)"
        )
    if x.dim() not in (1, 2):
        raise FMInputError(f"x must have shape (n,) or (batch, n), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise FMInputError(f"x has dtype {x.dtype}, but a floating dtype is required; use x.to(torch.float64)")
    check_devices(x=x)
    require_finite("x", x)
    x = x.cpu()
    single = x.dim() == 1
    batch = x.unsqueeze(0) if single else x
    nonzero = batch != 0
    width = max(int(nonzero.sum(-1).max()) if batch.numel() else 0, 1)
    idx = torch.full((batch.shape[0], width), -1, dtype=torch.int64)
    val = torch.zeros((batch.shape[0], width), dtype=batch.dtype)
    for row in range(batch.shape[0]):
        cols = torch.nonzero(nonzero[row]).flatten()
        idx[row, : cols.numel()] = cols
        val[row, : cols.numel()] = batch[row, cols]
    return (idx[0], val[0]) if single else (idx, val)


def sparse_to_dense(idx: Tensor, n: int, val: Tensor | None = None, dtype=torch.float64) -> Tensor:
    """Dense ``(batch, n)`` (or ``(n,)``) x from a padded index batch (indices checked against ``n``)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise FMInputError(f"n (number of features) must be a non-negative int, got {n!r}")
    if isinstance(idx, torch.Tensor):
        check_devices(idx=idx)
    idx = check_indices(idx, n)
    if idx.dim() not in (1, 2):
        raise FMInputError(f"idx must have shape (m,) or (batch, m), got {tuple(idx.shape)}")
    if val is not None and (not isinstance(val, torch.Tensor) or val.shape != idx.shape):
        raise FMInputError("val must be a tensor of the same shape as idx")
    if val is not None and val.dtype != dtype:
        raise FMInputError(
            f"val has dtype {val.dtype} but the result is asked in {dtype}; pass val.to({dtype}) or dtype={val.dtype}"
        )
    if val is not None:
        check_devices(idx=idx, val=val)
        require_finite("val", val)
    single = idx.dim() == 1
    idx2 = idx.unsqueeze(0) if single else idx
    val2 = None if val is None else (val.unsqueeze(0) if single else val)
    safe_idx, values = gather_sparse(idx2, val2, dtype)
    x = torch.zeros((idx2.shape[0], n), dtype=dtype)
    x.scatter_add_(1, safe_idx, values)
    return x[0] if single else x


class FactorizationMachine(nn.Module):
    """A second-order FM over padded index batches, for training code.

    Parameters ``w0`` (scalar), ``w`` ``(n,)`` and ``V`` ``(n, k)``; ``w`` and ``V`` are
    drawn from N(0, init_std²) with the given ``generator`` and ``w0`` starts at 0, as in
    the MovieLens experiment of chapter 07.
    """

    def __init__(
        self,
        n: int,
        k: int,
        *,
        init_std: float = 0.01,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        if not (isinstance(n, int) and n >= 1):
            raise FMInputError(f"n (number of features) must be a positive int, got {n!r}")
        if not (isinstance(k, int) and k >= 1):
            raise FMInputError(f"k (factorization dimension) must be a positive int, got {k!r}")
        if isinstance(init_std, bool) or not isinstance(init_std, int | float) or not math.isfinite(init_std):
            raise FMInputError(f"init_std must be a finite number >= 0, got {init_std!r}")
        if init_std < 0:
            raise FMInputError(f"init_std must be a finite number >= 0, got {init_std!r}; pass e.g. init_std=0.01")
        self.n, self.k = n, k
        self.w0 = nn.Parameter(torch.zeros((), dtype=dtype))
        self.w = nn.Parameter(init_std * torch.randn(n, dtype=dtype, generator=generator))
        self.V = nn.Parameter(init_std * torch.randn(n, k, dtype=dtype, generator=generator))

    def forward(self, idx: Tensor, val: Tensor | None = None) -> Tensor:
        return predict_sparse(idx, self.w0, self.w, self.V, val)

    def forward_dense(self, x: Tensor) -> Tensor:
        return predict(x, self.w0, self.w, self.V)

    def extra_repr(self) -> str:
        return f"n={self.n}, k={self.k}"
