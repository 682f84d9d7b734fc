"""Input checks shared by the whole package: each error says what was wrong and how to fix it."""

from __future__ import annotations

import math
import operator
import os
import re

import numpy as np
import torch
from torch import Tensor

from .errors import FMInputError


def _require_tensor(name: str, value, dtype: str = "torch.float64") -> Tensor:
    if not isinstance(value, Tensor):
        raise FMInputError(
            f"{name} must be a torch.Tensor, got {type(value).__name__}; "
            f"convert it with torch.as_tensor({name}, dtype={dtype})"
        )
    return value


def _require_float(name: str, t: Tensor) -> None:
    if not t.is_floating_point():
        raise FMInputError(
            f"{name} has dtype {t.dtype}, but a floating dtype is required; use {name}.to(torch.float64)"
        )


def require_finite(name: str, t: Tensor) -> None:
    """Raise if ``t`` holds NaN or ±inf, naming the first bad position."""
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        where = tuple(int(i) for i in torch.nonzero(bad)[0]) if t.dim() else ()
        raise FMInputError(
            f"{name} contains non-finite values (first at index {where}: {t[where].item()}); "
            "remove or impute NaN/inf entries before calling"
        )


def check_devices(**tensors: Tensor | None) -> None:
    """All given tensors on one real device: ``meta`` tensors (shapes without data) and a mix of
    devices are refused here, in words, rather than deep inside torch."""
    named = {name: t for name, t in tensors.items() if isinstance(t, Tensor)}
    for name, t in named.items():
        if t.device.type == "meta":
            raise FMInputError(
                f"{name} is a 'meta' tensor (a shape without data); create it with real values, "
                "e.g. torch.zeros(..., device='cpu')"
            )
    devices = {str(t.device) for t in named.values()}
    if len(devices) > 1:
        listed = ", ".join(f"{name} on {t.device}" for name, t in named.items())
        first = next(iter(named.values())).device
        raise FMInputError(f"inputs are on different devices ({listed}); move them to one, e.g. .to('{first}')")


def check_params(w0: Tensor, w: Tensor, V: Tensor) -> None:
    """w0 scalar, w ``(n,)``, V ``(n, k)``, one floating dtype, all finite."""
    for name, t in (("w0", w0), ("w", w), ("V", V)):
        _require_tensor(name, t)
        _require_float(name, t)
    if w0.dim() != 0:
        raise FMInputError(f"w0 must be a scalar tensor (shape ()), got shape {tuple(w0.shape)}")
    if w.dim() != 1:
        raise FMInputError(f"w must have shape (n,), got {tuple(w.shape)}")
    if V.dim() != 2:
        raise FMInputError(f"V must have shape (n, k), got {tuple(V.shape)}")
    if V.shape[0] != w.shape[0]:
        raise FMInputError(
            f"w has {w.shape[0]} entries but V has {V.shape[0]} rows; both must equal n, the number of features"
        )
    if not (w0.dtype == w.dtype == V.dtype):
        raise FMInputError(
            f"w0, w, V must share one dtype, got {w0.dtype}, {w.dtype}, {V.dtype}; convert them with .to(torch.float64)"
        )
    check_devices(w0=w0, w=w, V=V)
    for name, t in (("w0", w0), ("w", w), ("V", V)):
        require_finite(name, t)


def check_dense_batch(x: Tensor, V: Tensor) -> None:
    """x ``(n,)`` or ``(batch, n)``, same floating dtype as V, finite."""
    _require_tensor("x", x)
    _require_float("x", x)
    if x.dim() not in (1, 2):
        raise FMInputError(f"x must have shape (n,) or (batch, n), got {tuple(x.shape)}")
    if x.shape[-1] != V.shape[0]:
        raise FMInputError(
            f"x has {x.shape[-1]} features (last dimension) but V has {V.shape[0]} rows (n); "
            "pass x of shape (n,) or (batch, n)"
        )
    if x.dtype != V.dtype:
        raise FMInputError(f"x has dtype {x.dtype} but the parameters have {V.dtype}; convert x with x.to({V.dtype})")
    check_devices(x=x, V=V)
    require_finite("x", x)


def _integer_indices(idx: Tensor, name: str) -> Tensor:
    """``idx`` as int64: any integer dtype is accepted (torch treats uint8 as a mask and refuses
    int8/int16 as indices, so they are converted here); booleans and floats are refused."""
    _require_tensor(name, idx, "torch.int64")
    if idx.dtype == torch.bool:
        raise FMInputError(
            f"{name} is a boolean mask; pass the integer indices instead, e.g. torch.nonzero({name}).flatten()"
        )
    if idx.is_floating_point() or idx.is_complex():
        raise FMInputError(f"{name} must be an integer tensor, got dtype {idx.dtype}; use {name}.long()")
    return idx.to(torch.int64)


def check_indices(idx: Tensor, n: int, name: str = "idx", allow_padding: bool = True) -> Tensor:
    """Integer indices in [0, n) (or −1 padding), distinct within each sample (last dim).

    Returns them as int64 (any integer dtype is accepted; use the returned tensor for indexing).
    """
    idx = _integer_indices(idx, name)
    if idx.numel() == 0:
        return idx
    low = -1 if allow_padding else 0
    bad = (idx < low) | (idx >= n)
    if bool(bad.any()):
        pos = tuple(int(i) for i in torch.nonzero(bad)[0])
        allowed = "[0, n) or -1 for padding" if allow_padding else "[0, n)"
        raise FMInputError(f"{name} has index {int(idx[pos])} at position {pos}, outside {allowed} with n = {n}")
    ordered, _ = torch.sort(idx, dim=-1)
    repeat = (ordered[..., 1:] == ordered[..., :-1]) & (ordered[..., 1:] >= 0)
    if bool(repeat.any()):
        pos = tuple(int(i) for i in torch.nonzero(repeat)[0])
        raise FMInputError(
            f"{name} repeats feature index {int(ordered[pos[:-1] + (pos[-1] + 1,)])} within one sample "
            f"(sample {pos[:-1] or 0}); indices of one sample must be distinct: merge repeated "
            "features by adding their values"
        )
    return idx


def check_sparse_batch(idx: Tensor, val: Tensor | None, V: Tensor) -> Tensor:
    """Padded index batch ``idx`` ``(m,)``/``(batch, m)`` with optional ``val`` of the same shape.

    Returns ``idx`` as int64.
    """
    _require_tensor("idx", idx, "torch.int64")
    if idx.dim() not in (1, 2):
        raise FMInputError(f"idx must have shape (m,) or (batch, m), got {tuple(idx.shape)}")
    check_devices(idx=idx, val=val, V=V)
    idx = check_indices(idx, V.shape[0])
    if val is not None:
        _require_tensor("val", val)
        _require_float("val", val)
        if val.shape != idx.shape:
            raise FMInputError(f"val has shape {tuple(val.shape)} but idx has {tuple(idx.shape)}; they must match")
        if val.dtype != V.dtype:
            raise FMInputError(f"val has dtype {val.dtype} but the parameters have {V.dtype}; use val.to({V.dtype})")
        require_finite("val", val)
    return idx


def check_nonempty(batch: int, what: str = "the batch") -> None:
    """A mean over samples needs at least one sample (the mean of none is NaN)."""
    if batch == 0:
        raise FMInputError(f"{what} is empty: pass at least one sample (the mean loss over no samples is undefined)")


RESCALE = "the inputs or parameters are too large for {dtype} arithmetic; rescale the features or the parameters"


def check_finite_result(name: str, t: Tensor, fix: str = RESCALE) -> Tensor:
    """Refuse a non-finite result computed from finite inputs: float overflow (or inf − inf).

    The one overflow check of the package's public entries (predictions, gradients, losses,
    training steps). ``fix`` says what to change; ``{dtype}`` in it is filled in."""
    bad = ~torch.isfinite(t.detach())
    if bool(bad.any()):
        where = tuple(int(i) for i in torch.nonzero(bad)[0]) if t.dim() else ()
        raise FMInputError(
            f"{name} overflowed to {t.detach()[where].item()} (first at index {where}) although every input is "
            f"finite: {fix.format(dtype=t.dtype)}"
        )
    return t


def check_finite_results(results: dict[str, Tensor], fix: str = RESCALE) -> None:
    """:func:`check_finite_result` on each named result, in order (the first bad one is named)."""
    for name, t in results.items():
        check_finite_result(name, t, fix)


def check_labels(y: Tensor, allowed: tuple[float, ...] = (-1.0, 1.0), name: str = "y") -> None:
    """Labels restricted to ``allowed`` (default ±1 for the logistic and hinge losses)."""
    _require_tensor(name, y)
    ok = torch.zeros_like(y, dtype=torch.bool)
    for a in allowed:
        ok |= y == a
    if not bool(ok.all()):
        bad = y[~ok].flatten()[0].item()
        hint = ""
        if set(allowed) == {-1.0, 1.0}:
            hint = "; map {0, 1} labels with y = 2 * y - 1"
        raise FMInputError(f"{name} must take values in {set(allowed)}, found {bad}{hint}")


# --------------------------------------------------------------------------- scalars of one sample


def _is_bool(value) -> bool:
    """Python, numpy and one-element torch booleans: refused wherever a number is expected."""
    if isinstance(value, Tensor):
        return value.dtype == torch.bool
    return isinstance(value, bool | np.bool_)


def check_nnz(nnz) -> int:
    """A sample's number of non-zeros: a non-negative integer (Python or numpy integer)."""
    refused = FMInputError(f"nnz must be a non-negative int (non-zeros of the sample), got {nnz!r}")
    if _is_bool(nnz) or isinstance(nnz, Tensor):
        raise refused
    try:
        count = operator.index(nnz)
    except TypeError:
        raise refused from None
    if count < 0:
        raise refused
    return int(count)


def _one_number(name: str, value, what: str):
    """``value`` as a Python number: a real scalar (Python, numpy) or a one-element tensor.

    Strings and booleans are refused (``float("1")`` and ``float(True)`` would pass silently).
    """
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise FMInputError(f"{name} must be {what}, got a tensor of shape {tuple(value.shape)}; pass one number")
        if value.dtype == torch.bool or value.is_complex():
            raise FMInputError(f"{name} must be {what}, got a tensor of dtype {value.dtype}")
        return value.item()
    if _is_bool(value) or isinstance(value, str | bytes) or isinstance(value, complex):
        raise FMInputError(f"{name} must be {what}, got {value!r} of type {type(value).__name__}")
    if hasattr(value, "shape") and getattr(value, "size", 1) != 1:
        raise FMInputError(f"{name} must be {what}, got an array of shape {tuple(value.shape)}; pass one number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise FMInputError(f"{name} must be {what}, got {value!r} of type {type(value).__name__}") from None


def check_label(y) -> float:
    """One label, +1 or −1 (int, float, numpy scalar or one-element tensor); returned as a float."""
    value = float(_one_number("y", y, "one label (+1 or -1)"))
    if value not in (-1.0, 1.0):
        hint = "; map {0, 1} labels with y = 2 * y - 1" if value == 0.0 else ""
        raise FMInputError(f"y must be +1 or -1, got {y!r}{hint}")
    return value


def check_eta(eta) -> float:
    """The step size: one positive finite real number (not a string, a boolean or a longer tensor)."""
    value = float(_one_number("eta (step size)", eta, "a positive real number"))
    if not (math.isfinite(value) and value > 0):
        raise FMInputError(f"eta (step size) must be a positive finite number, got {eta!r}")
    return value


def check_penalty(name: str, value, length: int | None = None) -> float | Tensor:
    """An L2 penalty strength: one finite number >= 0, or (``length`` given) a 1-D tensor or
    array of ``length`` such numbers, one per feature (returned as a float64 tensor)."""
    if isinstance(value, Tensor) or (hasattr(value, "shape") and hasattr(value, "dtype") and value.shape != ()):
        t = value if isinstance(value, Tensor) else None
        if t is None:
            try:
                t = torch.as_tensor(value)
            except (TypeError, ValueError, RuntimeError):
                raise FMInputError(f"{name} must be a number >= 0 or a 1-D array of them, got {value!r}") from None
        if t.dim() == 0:
            return check_penalty(name, t.item())
        if length is None:
            raise FMInputError(f"{name} must be one number >= 0 here, got a tensor of shape {tuple(t.shape)}")
        if t.dim() != 1 or t.shape[0] != length:
            raise FMInputError(
                f"{name} has shape {tuple(t.shape)}; pass one number >= 0, or a 1-D tensor of n = {length} "
                "numbers >= 0 (one per feature)"
            )
        if t.dtype == torch.bool or t.is_complex():
            raise FMInputError(f"{name} must hold real numbers >= 0, got dtype {t.dtype}")
        t = t.to(torch.float64)
        bad = ~(torch.isfinite(t) & (t >= 0))
        if bool(bad.any()):
            i = int(torch.nonzero(bad)[0, 0])
            raise FMInputError(
                f"{name}[{i}] = {t[i].item()!r}; every per-feature penalty must be a finite number >= 0 "
                "(0 switches the penalty off for that feature)"
            )
        return t
    number = float(_one_number(name, value, "a finite number >= 0 (or a 1-D tensor of them, one per feature)"))
    if not (math.isfinite(number) and number >= 0):
        raise FMInputError(f"{name} must be a finite number >= 0 (0 switches the penalty off), got {value!r}")
    return number


def check_z(z) -> float:
    value = float(z)
    if not (0.0 <= value <= 1.0):
        raise FMInputError(f"z (dual variable) must lie in [0, 1], got {z!r}")
    return value


def check_one_sample(idx, n: int) -> Tensor:
    """The non-zero feature indices of ONE sample: a 1-D integer tensor of distinct values in [0, n)."""
    if not isinstance(idx, Tensor):
        raise FMInputError(
            f"idx must be a 1-D integer tensor of feature indices, got {type(idx).__name__}; "
            "convert it with torch.as_tensor(idx, dtype=torch.int64)"
        )
    if idx.dim() != 1:
        raise FMInputError(
            f"idx must be 1-D (the non-zero feature indices of ONE sample), got shape {tuple(idx.shape)}"
        )
    return check_indices(idx, n, allow_padding=False)


# --------------------------------------------------------------------------- settings

THREADS_VAR = "FMEDU_THREADS"


def check_threads(value, source: str = "threads", maximum: int | None = None) -> int:
    """A thread count: an integer >= 1 (and <= ``maximum`` when given), also from a string.

    ``source`` names where the value came from (``"--threads"``, ``"$FMEDU_THREADS"``) in the message.
    """
    refused = FMInputError(f"{source} must be a positive integer number of threads, got {value!r}")
    if isinstance(value, str):
        if not re.fullmatch(r"\s*[0-9]+\s*", value):
            raise refused
        value = int(value)
    try:
        if isinstance(value, bool):
            raise TypeError
        count = operator.index(value)
    except TypeError:
        raise refused from None
    if count < 1:
        raise refused
    if maximum is not None and count > maximum:
        raise FMInputError(
            f"{source} = {count} exceeds the {maximum} threads available here (numba's NUMBA_NUM_THREADS); "
            f"use 1 to {maximum}"
        )
    return count


def env_threads(maximum: int | None = None) -> int | None:
    """The thread count in ``$FMEDU_THREADS`` (checked by :func:`check_threads`), or None when unset."""
    raw = os.environ.get(THREADS_VAR, "")
    if raw == "":
        return None
    return check_threads(raw, f"${THREADS_VAR}", maximum)
