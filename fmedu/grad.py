"""Closed-form gradients of the FM prediction and of batch losses, and the checks behind them.

Used by chapter 02 (the O(nk) gradient, checked three ways) and by ``fmedu.train``.

**Prediction gradient.** For one sample x (notation as in the README)

    ∂ŷ/∂w0 = 1,   ∂ŷ/∂w_i = x_i,   ∂ŷ/∂v_if = x_i s_f − v_if x_i²,   s_f = Σ_j v_jf x_j .

The k sums s_f are computed once per sample (O(nk), or O(nnz·k) on a sparse sample); each
of the n·k entries then costs O(1), so the whole gradient costs O(nk) (O(nnz·k) sparse).

**Sparse layout** (the padded index matrix of :mod:`fmedu.model`): ``idx`` is int64
``(batch, m)`` (or ``(m,)``) with ``-1`` padding on the right and ``val`` optional values of
the same shape (default 1). :func:`predict_grad_sparse` returns gradients only for the
touched rows, aligned with ``idx``: ``g_w`` of shape ``(batch, m)`` with
``g_w[b, t] = ∂ŷ_b/∂w[idx[b, t]]`` and ``g_V`` of shape ``(batch, m, k)`` with
``g_V[b, t, f] = ∂ŷ_b/∂V[idx[b, t], f]``; entries at padding are exactly 0. Every
parameter row not listed in a sample's ``idx`` has gradient 0 for that sample.

**Losses.** ``squared``: (ŷ − y)², derivative 2(ŷ − y), any real y. ``logistic``:
log(1 + exp(−yŷ)) computed as logaddexp(0, −yŷ), derivative −y·sigmoid(−yŷ), labels in
{−1, +1}; both forms stay exact for margins of ±1000. ``hinge``: max(0, 1 − yŷ), labels in
{−1, +1}, subgradient −y where yŷ ≤ 1 and 0 elsewhere (at the kink yŷ = 1 this picks −y,
the same choice torch's autograd makes for ``clamp``).

**Batch loss.** :func:`batch_loss_grad` (dense) and :func:`batch_loss_grad_sparse`
return the mean loss over the batch and its gradient with respect to w0, w and V, built
from the two pieces above by the chain rule: ∂L/∂θ = (1/B) Σ_b ℓ'(ŷ_b, y_b) ∂ŷ_b/∂θ.

**Checks.** :func:`autograd_batch_grad` (torch autograd through ``fmedu.predict``),
:func:`finite_difference_batch_grad` (central differences, one parameter at a time) and
:func:`roundoff_bound` / :func:`finite_difference_bound` (the tolerances they are held to)
make up the three-way check of ``tests/test_grad.py``; chapter 02 holds the comparison to
:func:`rounding_model_bounds` (tolerances derived from the standard rounding model, no safety
factor) through :func:`three_way`, which reports the ratios observed error / tolerance.

**Errata** (chapter 02). E1: :func:`note_batch_grad_V` uses the gradient note's
−2 v_if x_i² (the correct term is −v_if x_i²). E6: :func:`slipped_batch_grad_V` reproduces the
factor-index slip of Apache SystemDS's ``scripts/nn/layers/fm.dml`` (factors 2..k read the
last column of XV), which is exactly right for k ≤ 2 and wrong for every k ≥ 3, so
:func:`e6_gradient_test` passes at k ≤ 2; the three-way checks therefore draw k ≥ 3 (and
n ≠ k, so that a mix-up of the feature and factor axes fails on shapes).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from . import symbolic
from .errors import FMInputError
from .losses import LOSSES, Loss, check_targets, get_loss
from .model import gather_sparse, predict, predict_sparse, sparse_batch
from .validation import check_dense_batch, check_finite_result, check_finite_results, check_nonempty, check_params

__all__ = [
    "predict_grad",
    "predict_grad_sparse",
    "batch_loss_grad",
    "batch_loss_grad_sparse",
    "autograd_batch_grad",
    "finite_difference_batch_grad",
    "roundoff_bound",
    "finite_difference_bound",
    "max_abs_error",
    "three_way_check",
    "kink_safe_step",
    "note_batch_grad_V",
    "slipped_batch_grad_V",
    "e6_gradient_test",
    "gamma",
    "rounding_model_bounds",
    "three_way",
]

EPS64 = torch.finfo(torch.float64).eps


# --------------------------------------------------------------------------- prediction


def predict_grad(x: Tensor, w0: Tensor, w: Tensor, V: Tensor, *, check: bool = True) -> tuple[Tensor, Tensor, Tensor]:
    """Closed-form (∂ŷ/∂w0, ∂ŷ/∂w, ∂ŷ/∂V) of dense samples.

    ``x`` of shape ``(n,)`` gives tensors of shapes ``()``, ``(n,)``, ``(n, k)``;
    ``(batch, n)`` gives ``(batch,)``, ``(batch, n)``, ``(batch, n, k)``. ``w`` and ``w0``
    do not enter the gradient (ŷ is affine in them) but are validated with V.
    """
    if check:
        check_params(w0, w, V)
        check_dense_batch(x, V)
    single = x.dim() == 1
    xb = x.unsqueeze(0) if single else x  # (batch, n)
    s = xb @ V  # (batch, k): s_f = Σ_j v_jf x_j, once per sample
    g_w0 = torch.ones(xb.shape[0], dtype=V.dtype)  # (batch,)
    g_w = xb.clone()  # (batch, n): ∂ŷ/∂w_i = x_i
    # (batch, n, k): x_i s_f − v_if x_i², one (batch, n, k) allocation (the output itself)
    g_V = xb.unsqueeze(-1) * s.unsqueeze(-2)
    g_V.addcmul_(V.unsqueeze(0), (xb * xb).unsqueeze(-1), value=-1)
    if check:
        check_finite_result("the gradient dy_hat/dV", g_V)
    if single:
        return g_w0[0], g_w[0], g_V[0]
    return g_w0, g_w, g_V


def predict_grad_sparse(
    idx: Tensor, w0: Tensor, w: Tensor, V: Tensor, val: Tensor | None = None, *, check: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """Closed-form gradients of ŷ on a padded index batch, only for the touched rows.

    Returns ``(g_w0, g_w, g_V)`` of shapes ``(batch,)``, ``(batch, m)``, ``(batch, m, k)``
    (``()``, ``(m,)``, ``(m, k)`` for ``idx`` of shape ``(m,)``), aligned with ``idx`` as the
    module docstring describes, zeros at padding. Cost O(batch·m·k), independent of n.
    """
    idx, val, single = sparse_batch(idx, val, w0, w, V, check)
    safe_idx, values = gather_sparse(idx, val, V.dtype)  # (batch, m)
    rows = V[safe_idx]  # (batch, m, k): v_i for the touched i (a fresh copy, reused as the output)
    xv = values.unsqueeze(-1)  # (batch, m, 1): x_i (0 at padding)
    s = (values.unsqueeze(-2) @ rows).squeeze(-2)  # (batch, k): Σ_j v_jf x_j, once per sample
    g_w0 = torch.ones(idx.shape[0], dtype=V.dtype)
    g_w = values.clone()  # (batch, m)
    # (batch, m, k): x_i s_f − v_if x_i², written over the gathered rows; 0 where x_i = 0 (padding)
    g_V = rows.mul_(-(xv * xv)).addcmul_(xv, s.unsqueeze(-2))
    if check:
        check_finite_result("the gradient dy_hat/dV", g_V)
    if single:
        return g_w0[0], g_w[0], g_V[0]
    return g_w0, g_w, g_V


# --------------------------------------------------------------------------- batch losses


def batch_loss_grad(
    x: Tensor, y: Tensor, w0: Tensor, w: Tensor, V: Tensor, loss: str | Loss = "squared", *, check: bool = True
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Mean loss over a dense batch and its closed-form gradient: ``(L, g_w0, g_w, g_V)``.

    ``x``: ``(batch, n)`` (or ``(n,)`` with ``y`` of shape ``()``); shapes of the gradients
    are those of the parameters: ``()``, ``(n,)``, ``(n, k)``. The per-sample gradients are
    never materialised: with d_b = ℓ'(ŷ_b, y_b)/B,
    ∂L/∂V = xᵀ(d ⊙ s) − V ⊙ ((x²)ᵀ d), two (n × B)(B × k)-sized products, O(B·n·k).
    """
    spec = get_loss(loss)
    if check:
        check_params(w0, w, V)
        check_dense_batch(x, V)
    xb = x.unsqueeze(0) if x.dim() == 1 else x  # (B, n)
    yb = y.unsqueeze(0) if (isinstance(y, Tensor) and x.dim() == 1 and y.dim() == 0) else y
    if check:
        check_nonempty(xb.shape[0])
        check_targets(yb, xb.shape[0], V.dtype, spec)
    B = xb.shape[0]
    s = xb @ V  # (B, k): Σ_j v_jf x_j per sample, reused by prediction and gradient
    x2 = xb * xb  # (B, n)
    y_hat = w0 + xb @ w + 0.5 * (s * s - x2 @ (V * V)).sum(-1)  # (B,)
    L = spec.value(y_hat, yb).mean()
    d = spec.derivative(y_hat, yb) / B  # (B,): ∂L/∂ŷ_b
    g_w0 = d.sum()
    g_w = xb.T @ d  # (n,)
    g_V = xb.T @ (d.unsqueeze(-1) * s) - V * (x2.T @ d).unsqueeze(-1)  # (n, k)
    if check:
        _check_finite_outputs(y_hat, L, g_w0, g_w, g_V)
    return L, g_w0, g_w, g_V


def batch_loss_grad_sparse(
    idx: Tensor,
    y: Tensor,
    w0: Tensor,
    w: Tensor,
    V: Tensor,
    loss: str | Loss = "squared",
    val: Tensor | None = None,
    *,
    check: bool = True,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Mean loss over a padded index batch and its gradient, scattered to parameter shapes.

    Returns ``(L, g_w0, g_w, g_V)`` with ``g_w`` ``(n,)`` and ``g_V`` ``(n, k)``; only rows
    listed in ``idx`` are non-zero. Work O(batch·m·k) plus the O(nk) zero-filled outputs.
    """
    spec = get_loss(loss)
    idx, val, single = sparse_batch(idx, val, w0, w, V, check)
    if single:
        y = y.unsqueeze(0) if isinstance(y, Tensor) and y.dim() == 0 else y
    if check:
        check_nonempty(idx.shape[0])
        check_targets(y, idx.shape[0], V.dtype, spec)
    B = idx.shape[0]
    safe_idx, values = gather_sparse(idx, val, V.dtype)  # (B, m)
    rows = V[safe_idx]  # (B, m, k)
    xv = values.unsqueeze(-1)  # (B, m, 1)
    s = (rows * xv).sum(-2)  # (B, k)
    y_hat = w0 + (w[safe_idx] * values).sum(-1) + 0.5 * (s * s - (rows * rows * xv * xv).sum(-2)).sum(-1)
    L = spec.value(y_hat, y).mean()
    d = spec.derivative(y_hat, y) / B  # (B,)
    per_w = d.unsqueeze(-1) * values  # (B, m): d_b x_i
    per_V = d.unsqueeze(-1).unsqueeze(-1) * (xv * s.unsqueeze(-2) - rows * xv * xv)  # (B, m, k)
    n, k = V.shape
    g_w = torch.zeros(n, dtype=V.dtype).index_add_(0, safe_idx.flatten(), per_w.flatten())
    g_V = torch.zeros(n, k, dtype=V.dtype).index_add_(0, safe_idx.flatten(), per_V.reshape(-1, k))
    g_w0 = d.sum()
    if check:
        _check_finite_outputs(y_hat, L, g_w0, g_w, g_V)
    return L, g_w0, g_w, g_V


def _check_finite_outputs(y_hat: Tensor, L: Tensor, g_w0: Tensor, g_w: Tensor, g_V: Tensor) -> None:
    """Finite inputs can still overflow float arithmetic: refuse instead of returning inf or NaN."""
    check_finite_results(
        {
            "the prediction y_hat": y_hat,
            "the loss": L,
            "the gradient in w0": g_w0,
            "the gradient in w": g_w,
            "the gradient in V": g_V,
        }
    )


# --------------------------------------------------------------------------- checks


def _check_reference_batch(y, w0, w, V, spec: Loss, x, idx, val):
    """The checks of the closed-form functions, for the reference legs: returns (y, idx)."""
    if (x is None) == (idx is None):
        raise FMInputError("pass exactly one of x (a dense batch) or idx (a padded index batch)")
    check_params(w0, w, V)
    if x is not None:
        check_dense_batch(x, V)
        batch = 1 if x.dim() == 1 else x.shape[0]
        if isinstance(y, Tensor) and x.dim() == 1 and y.dim() == 0:
            y = y.unsqueeze(0)
    else:
        idx, val, _ = sparse_batch(idx, val, w0, w, V, True)
        batch = idx.shape[0]
        if isinstance(y, Tensor) and y.dim() == 0:
            y = y.unsqueeze(0)
    check_nonempty(batch)
    check_targets(y, batch, V.dtype, spec)
    return y, idx, val


def _predict_either(x: Tensor | None, idx: Tensor | None, val: Tensor | None, w0, w, V) -> Tensor:
    """ŷ of a dense batch ``x`` or, when ``idx`` is given, of a padded index batch (no input checks)."""
    if idx is not None:
        return predict_sparse(idx, w0, w, V, val, check=False)
    assert x is not None, "pass x (dense) or idx (sparse)"
    return predict(x, w0, w, V, check=False)


def _loss_of(params, spec: Loss, y: Tensor, x=None, idx=None, val=None) -> Tensor:
    w0, w, V = params
    if idx is None:
        y_hat = predict(x, w0, w, V, check=False)
    else:
        y_hat = predict_sparse(idx, w0, w, V, val, check=False)
    return spec.value(y_hat, y).mean()


def autograd_batch_grad(
    y: Tensor,
    w0: Tensor,
    w: Tensor,
    V: Tensor,
    loss: str | Loss = "squared",
    *,
    x: Tensor | None = None,
    idx: Tensor | None = None,
    val: Tensor | None = None,
) -> tuple[Tensor, ...]:
    """``(L, g_w0, g_w, g_V)`` by torch autograd through ``fmedu.predict`` (dense ``x``) or
    ``fmedu.predict_sparse`` (``idx``, ``val``): the second leg of chapter 02's three-way check."""
    spec = get_loss(loss)
    y, idx, val = _check_reference_batch(y, w0, w, V, spec, x, idx, val)
    params = [p.detach().clone().requires_grad_(True) for p in (w0, w, V)]
    L = _loss_of(params, spec, y, x, idx, val)
    grads = torch.autograd.grad(L, params)
    names = ("the loss", "the gradient in w0", "the gradient in w", "the gradient in V")
    check_finite_results(dict(zip(names, (L, *grads))))
    return (L.detach(), *grads)


def finite_difference_batch_grad(
    y: Tensor,
    w0: Tensor,
    w: Tensor,
    V: Tensor,
    loss: str | Loss = "squared",
    *,
    x: Tensor | None = None,
    idx: Tensor | None = None,
    val: Tensor | None = None,
    h: float = 1e-5,
) -> tuple[Tensor, ...]:
    """``(g_w0, g_w, g_V)`` by central differences (L(θ + h) − L(θ − h)) / 2h, one coordinate at a time.

    The third leg of chapter 02's three-way check: it uses only loss *values*, so it is
    independent of any derivative formula. Cost: 2(1 + n + nk) loss evaluations.
    """
    spec = get_loss(loss)
    y, idx, val = _check_reference_batch(y, w0, w, V, spec, x, idx, val)
    check_finite_result("the loss", _loss_of([p.detach() for p in (w0, w, V)], spec, y, x, idx, val))
    base = [p.detach().clone() for p in (w0, w, V)]
    out = [torch.zeros_like(p) for p in base]
    with torch.no_grad():
        for which, p in enumerate(base):
            flat, g = p.view(-1), out[which].view(-1)
            for c in range(flat.numel()):
                keep = flat[c].item()
                flat[c] = keep + h
                up = _loss_of(base, spec, y, x, idx, val).item()
                flat[c] = keep - h
                down = _loss_of(base, spec, y, x, idx, val).item()
                flat[c] = keep
                g[c] = (up - down) / (2 * h)
    return tuple(out)


def _abs_scales(y: Tensor, w0, w, V, spec: Loss, x=None, idx=None, val=None):
    """Per-sample sizes of the quantities the roundoff analysis needs (absolute values throughout).

    Returns ``(xa, A_w, A_V, y_hat_abs, d_abs)``: dense |x| ``(B, n)``; the absolute-value
    gradient of ŷ, |x_i|, and |x_i| Σ_j |v_jf||x_j| + |v_if| x_i² as ``(B, n)``, ``(B, n, k)``;
    the absolute-value prediction |w0| + Σ|w_i x_i| + ½Σ_f (Σ_i |v_if x_i|)²; |ℓ'(ŷ, y)|.
    """
    if idx is not None:
        from .model import sparse_to_dense

        x = sparse_to_dense(idx, V.shape[0], val, dtype=V.dtype)
    xa = (x.unsqueeze(0) if x.dim() == 1 else x).abs()
    Va = V.abs()
    sa = xa @ Va  # (B, k)
    A_V = xa.unsqueeze(-1) * sa.unsqueeze(-2) + Va.unsqueeze(0) * (xa * xa).unsqueeze(-1)
    y_hat_abs = w0.abs() + xa @ w.abs() + 0.5 * (sa * sa).sum(-1)
    y_hat = predict(x, w0, w, V, check=False)
    d_abs = spec.derivative(y_hat, y).abs()
    return xa, xa, A_V, y_hat_abs, d_abs


def _roundoff_per_term(V: Tensor, c: float) -> float:
    """c·(n + k)·ε: the relative roundoff allowed per term of a sum over n features and k factors."""
    n, k = V.shape
    return c * (n + k) * EPS64


def roundoff_bound(
    y: Tensor,
    w0: Tensor,
    w: Tensor,
    V: Tensor,
    loss: str | Loss = "squared",
    *,
    x: Tensor | None = None,
    idx: Tensor | None = None,
    val: Tensor | None = None,
    c: float = 64.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Entrywise float64 tolerance ``(b_w0, b_w, b_V)`` for closed form vs autograd.

    Both compute the same sums in different orders, so they differ by at most a few
    roundoffs per term: c·(n + k)·ε times the absolute-value version of each gradient,
    (1/B) Σ_b (|ℓ'_b| + ℓ''-scale·|ŷ|_b) · |∂ŷ_b/∂θ|, where the second part covers the
    roundoff of ŷ itself carried through ℓ' (|ℓ''| ≤ 2 for every loss here; hinge has a
    jump only at the kink, which checks avoid).
    """
    spec = get_loss(loss)
    _, A_w, A_V, y_hat_abs, d_abs = _abs_scales(y, w0, w, V, spec, x, idx, val)
    weight = (d_abs + 2 * y_hat_abs + 1) / d_abs.shape[0]  # (B,)
    scale = _roundoff_per_term(V, c)
    b_w0 = scale * weight.sum()
    b_w = scale * (weight.unsqueeze(-1) * A_w).sum(0)
    b_V = scale * (weight.unsqueeze(-1).unsqueeze(-1) * A_V).sum(0)
    return b_w0, b_w, b_V


def finite_difference_bound(
    y: Tensor,
    w0: Tensor,
    w: Tensor,
    V: Tensor,
    loss: str | Loss = "squared",
    *,
    x: Tensor | None = None,
    idx: Tensor | None = None,
    val: Tensor | None = None,
    h: float = 1e-5,
    c: float = 64.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Entrywise tolerance ``(b_w0, b_w, b_V)`` for closed form vs central differences with step h.

    ŷ is affine in each single parameter (v_if never multiplies itself: the pairs have i < j),
    so the central difference has truncation error only through the loss:
    h²/6 · sup|ℓ'''| · |∂ŷ/∂θ|³ per sample (0 for squared and, away from the kink, hinge).
    Roundoff: each loss value carries error ≲ c(n+k)ε(|ℓ| + |ℓ'||ŷ|_abs), divided by h.
    """
    spec = get_loss(loss)
    xa, A_w, A_V, y_hat_abs, d_abs = _abs_scales(y, w0, w, V, spec, x, idx, val)
    B = xa.shape[0]
    y_hat = _predict_either(x, idx, val, w0, w, V)
    value_err = _roundoff_per_term(V, c) * (spec.value(y_hat, y).abs() + (d_abs + 1) * (y_hat_abs + 1)).mean()
    round_part = value_err / h
    t = spec.third_derivative_bound * h * h / 6 / B
    b_w0 = round_part + t * B * torch.ones((), dtype=V.dtype)
    b_w = round_part + t * (A_w**3).sum(0)
    b_V = round_part + t * (A_V**3).sum(0)
    return b_w0, b_w, b_V


def max_abs_error(a, b) -> float:
    """Largest |a − b| over a tuple of tensors (e.g. two ``(g_w0, g_w, g_V)`` triples)."""
    return max(float((p - q).abs().max()) if p.numel() else 0.0 for p, q in zip(a, b))


def _within(errors, bounds) -> bool:
    return all(bool((e <= b).all()) for e, b in zip(errors, bounds))


def three_way_check(
    y: Tensor,
    w0: Tensor,
    w: Tensor,
    V: Tensor,
    loss: str | Loss = "squared",
    *,
    x: Tensor | None = None,
    idx: Tensor | None = None,
    val: Tensor | None = None,
    h: float = 1e-5,
) -> dict:
    """Closed form vs autograd (float64) vs central differences on one batch.

    Dense when ``x`` is given, sparse when ``idx`` is. Returns the largest absolute errors,
    whether every entry lies within :func:`roundoff_bound` and :func:`finite_difference_bound`,
    and whether autograd agrees with the finite differences within the same bound.
    Used by chapter 02 and ``tests/test_grad.py``.
    """
    kw: dict[str, Any] = dict(x=x, idx=idx, val=val)
    if idx is None:
        assert x is not None, "pass x (dense) or idx (sparse)"
        L, *closed = batch_loss_grad(x, y, w0, w, V, loss)
    else:
        L, *closed = batch_loss_grad_sparse(idx, y, w0, w, V, loss, val)
    L_ad, *auto = autograd_batch_grad(y, w0, w, V, loss, **kw)
    fd = finite_difference_batch_grad(y, w0, w, V, loss, h=h, **kw)
    b_ad = roundoff_bound(y, w0, w, V, loss, **kw)
    b_fd = finite_difference_bound(y, w0, w, V, loss, h=h, **kw)
    err_ad = [(a - b).abs() for a, b in zip(closed, auto)]
    err_fd = [(a - b).abs() for a, b in zip(closed, fd)]
    err_ad_fd = [(a - b).abs() for a, b in zip(auto, fd)]
    return {
        "loss_equal": bool((L - L_ad).abs() <= 64 * EPS64 * (1 + L.abs())),
        "closed_vs_autograd": max_abs_error(closed, auto),
        "closed_vs_fd": max_abs_error(closed, fd),
        "closed_vs_autograd_ok": _within(err_ad, b_ad),
        "closed_vs_fd_ok": _within(err_fd, b_fd),
        "autograd_vs_fd_ok": _within(err_ad_fd, [b + a for a, b in zip(b_ad, b_fd)]),
        "fd_bound_max": max(float(b.max()) for b in b_fd),
    }


def kink_safe_step(y, w0, w, V, *, x=None, idx=None, val=None, h: float = 1e-5) -> bool:
    """True when no sample's hinge margin can cross 1 under a ±h change of one parameter.

    A ±h change moves ŷ_b by at most h·max_θ |∂ŷ_b/∂θ| (ŷ is affine in each parameter).
    """
    spec = LOSSES["hinge"]
    _, A_w, A_V, _, _ = _abs_scales(y, w0, w, V, spec, x, idx, val)
    reach = h * torch.maximum(A_w.amax(-1), A_V.flatten(1).amax(-1)).clamp(min=1.0)  # (B,)
    y_hat = _predict_either(x, idx, val, w0, w, V)
    return bool(((1 - y * y_hat).abs() > 2 * reach).all())


# --------------------------------------------------------------------------- errata E1 and E6 (chapter 02)


def note_batch_grad_V(x: Tensor, y: Tensor, w0: Tensor, w: Tensor, V: Tensor, loss: str | Loss = "logistic") -> Tensor:
    """The V-gradient of the mean batch loss built from the gradient note's formula (erratum E1).

    Andrew Bai's note "FM O(dk) weight gradient calculation" (2022) ends with
    ∂ŷ/∂v_if = x_i s_f − 2 v_if x_i² (in its letters X_j Z_i − 2 P_ij X_j²); the correct
    term is − v_if x_i². Same arithmetic as :func:`batch_loss_grad` with the note's factor 2.
    """
    spec = get_loss(loss)
    s = x @ V  # (B, k)
    d = spec.derivative(predict(x, w0, w, V), y) / x.shape[0]  # (B,): ∂L/∂ŷ_b
    return x.T @ (d.unsqueeze(-1) * s) - 2 * V * ((x * x).T @ d).unsqueeze(-1)


def slipped_batch_grad_V(x, y, w0, w, V, loss: str | Loss, variant) -> Tensor:
    """The V-gradient of the mean batch loss with a factor-index slip (erratum E6).

    ``variant`` is a name in :data:`fmedu.symbolic.SLIP_VARIANTS` or a column map; the
    published one, ``"first-own-rest-last"``, is the backward pass of Apache SystemDS's
    ``scripts/nn/layers/fm.dml``, which builds the V-gradient from column 1 of XV for factor 1
    and from column k for every factor 2..k. Our own code with the same arithmetic.
    """
    spec = get_loss(loss)
    s = x @ V  # (B, k)
    d = spec.derivative(predict(x, w0, w, V), y) / x.shape[0]  # (B,)
    s_used = s[:, symbolic.slipped_columns(V.shape[1], variant)]  # (B, k): the slip
    return x.T @ (d.unsqueeze(-1) * s_used) - V * ((x * x).T @ d).unsqueeze(-1)


def e6_gradient_test(n: int, k: int, variant, *, loss: str = "squared", batch: int = 8, seed: int = 0) -> bool:
    """A standard gradient test of the slipped V-gradient: does it match autograd on random data
    within chapter 02's rounding-model tolerance 2γ_m·G (:func:`rounding_model_bounds`)?
    (True means the slip goes unnoticed.)"""
    from .testing import random_problem

    x, y, w0, w, V = random_problem(n, k, batch, loss, torch.Generator().manual_seed(seed))
    slipped = slipped_batch_grad_V(x, y, w0, w, V, loss, variant)
    auto = autograd_batch_grad(y, w0, w, V, loss, x=x)[3]
    bound = rounding_model_bounds(y, w0, w, V, loss, x=x)["autograd"][2]
    return bool(((slipped - auto).abs() <= bound).all())


# --------------------------------------------------------------------------- chapter 02's rounding model

UNIT_ROUNDOFF = EPS64 / 2
#: sup |ℓ''(ŷ)| of each loss (hinge: 0 away from the kink, which the checks avoid)
SECOND_DERIVATIVE_BOUND = {"squared": 2.0, "logistic": 0.25, "hinge": 0.0}
#: roundings outside the sums over n features, k factors and B samples: products, the
#: subtraction in x_i s_f − v_if x_i², the square s_f², the halving, the loss derivative and the
#: transcendental functions inside it (exp, log, sigmoid: a few units of rounding each)
EXTRA_ROUNDINGS = 8


def gamma(m: int) -> float:
    """γ_m = m·u / (1 − m·u), u = 2⁻⁵³: a float64 sum of m + 1 terms, in any order, is exact up to
    γ_m times the sum of the absolute values of its terms (Higham, *Accuracy and Stability of
    Numerical Algorithms*, 2nd ed., SIAM 2002, Lemma 3.1 and §4.2)."""
    if m * UNIT_ROUNDOFF >= 1:
        raise FMInputError(f"gamma({m}) is undefined: m·u must be below 1")
    return m * UNIT_ROUNDOFF / (1 - m * UNIT_ROUNDOFF)


def rounding_model_bounds(
    y: Tensor,
    w0: Tensor,
    w: Tensor,
    V: Tensor,
    loss: str | Loss = "squared",
    *,
    x: Tensor | None = None,
    idx: Tensor | None = None,
    val: Tensor | None = None,
    h: float = 1e-5,
) -> dict[str, tuple[Tensor, Tensor, Tensor]]:
    """Chapter 02's tolerances, derived from the standard rounding model, no safety factor.

    With m = n + k + B + :data:`EXTRA_ROUNDINGS` and G the batch gradient computed with absolute
    values, G = (1/B) Σ_b (|ℓ'_b| + 2·sup|ℓ''|·|ŷ|_b) |∂ŷ_b/∂θ| (|ŷ|_b: the prediction with
    absolute values; the factor 2 covers the squares in Rendle's form), each computation of the
    gradient is within γ_m·G of the exact value. Returns entrywise ``(b_w0, b_w, b_V)``:

    * ``"autograd"``: 2·γ_m·G, closed form vs autograd (two computations, each within γ_m·G);
    * ``"fd"``: γ_m·G (the closed form) + the central difference's own error: truncation
      h²/6·sup|ℓ'''|·|∂ŷ/∂θ|³ (ŷ is affine in each parameter, Taylor's theorem), the rounding of
      the two loss values divided by 2h, γ_m·mean(|ℓ_b| + |ℓ'_b|·2|ŷ|_b)/h, and the rounding of
      θ ± h, u·(|θ| + h)/h times the gradient.
    """
    spec = get_loss(loss)
    _, A_w, A_V, y_hat_abs, d_abs = _abs_scales(y, w0, w, V, spec, x, idx, val)
    B = A_w.shape[0]
    n, k = V.shape
    g = gamma(n + k + B + EXTRA_ROUNDINGS)
    weight = (d_abs + 2 * SECOND_DERIVATIVE_BOUND[spec.name] * y_hat_abs) / B  # (B,)
    G = (weight.sum(), (weight.unsqueeze(-1) * A_w).sum(0), (weight.unsqueeze(-1).unsqueeze(-1) * A_V).sum(0))
    plain = (d_abs.sum() / B, (d_abs.unsqueeze(-1) * A_w).sum(0) / B, (d_abs[:, None, None] * A_V).sum(0) / B)
    y_hat = _predict_either(x, idx, val, w0, w, V)
    value_err = g * (spec.value(y_hat, y).abs() + d_abs * 2 * y_hat_abs).mean()
    t = spec.third_derivative_bound * h * h / 6 / B
    trunc = (t * B * torch.ones((), dtype=V.dtype), t * (A_w**3).sum(0), t * (A_V**3).sum(0))
    fd = tuple(
        g * G_ + value_err / h + tr + UNIT_ROUNDOFF * (p.abs() + h) / h * pl
        for G_, tr, p, pl in zip(G, trunc, (w0, w, V), plain)
    )
    return {"autograd": tuple(2 * g * G_ for G_ in G), "fd": fd}  # type: ignore[dict-item,unused-ignore]


def _largest_ratio(a, b, bounds) -> float:
    """max over all entries of |a − b| / bound (the bounds are positive wherever a gradient can be non-zero)."""
    ratios = [((p - q).abs() / bnd.clamp(min=torch.finfo(bnd.dtype).tiny)).max() for p, q, bnd in zip(a, b, bounds)]
    return max(float(r) for r in ratios)


def three_way(
    y: Tensor,
    w0: Tensor,
    w: Tensor,
    V: Tensor,
    loss: str | Loss = "squared",
    *,
    x: Tensor | None = None,
    idx: Tensor | None = None,
    val: Tensor | None = None,
    h: float = 1e-5,
) -> dict:
    """Closed form, autograd and central differences on one batch, with chapter 02's tolerances.

    Returns the three gradients (``"closed"``, ``"autograd"``, ``"fd"``, each ``(g_w0, g_w, g_V)``),
    the bounds of :func:`rounding_model_bounds`, and the largest entrywise ratios
    observed error / tolerance: ``"ratio_autograd"`` (closed form vs autograd) and ``"ratio_fd"``
    (closed form vs central differences). A ratio ≤ 1 means the comparison passes.
    """
    if idx is None:
        assert x is not None, "pass x (dense) or idx (sparse)"
        _, *closed = batch_loss_grad(x, y, w0, w, V, loss)
    else:
        _, *closed = batch_loss_grad_sparse(idx, y, w0, w, V, loss, val)
    kw: dict[str, Any] = dict(x=x, idx=idx, val=val)
    auto = autograd_batch_grad(y, w0, w, V, loss, **kw)[1:]
    fd = finite_difference_batch_grad(y, w0, w, V, loss, h=h, **kw)
    bounds = rounding_model_bounds(y, w0, w, V, loss, h=h, **kw)
    return {
        "closed": tuple(closed),
        "autograd": tuple(auto),
        "fd": tuple(fd),
        "bounds": bounds,
        "ratio_autograd": _largest_ratio(closed, auto, bounds["autograd"]),
        "ratio_fd": _largest_ratio(closed, fd, bounds["fd"]),
    }
