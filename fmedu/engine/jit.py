"""``shared``: the decorator of the per-sample pieces that the CPU and the GPU kernels share.

A decorated function stays plain Python (the GPU simulator and the tests call it as it is)
and is registered with numba like ``register_jitable``, so that compiled code can call it:
numba-compiled CPU kernels inline it into their loops (its arrays then need no calls, and the
column loops vectorise), while numba-cuda compiles it as an ordinary device function (its
compiler cannot take numba's inlined IR).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from numba.core.extending import overload

__all__ = ["shared"]

F = TypeVar("F", bound=Callable[..., Any])


def _inline_on_the_cpu(expr, caller_info, callee_info) -> bool:
    """numba's inlining cost model: inline where the caller is numba's own (CPU) IR."""
    return type(caller_info.func_ir).__module__.startswith("numba.core")


def shared(fn: F) -> F:
    """Register ``fn`` for compiled callers (inlined on the CPU, a device function on the GPU)."""
    overload(fn, inline=_inline_on_the_cpu, strict=False)(lambda *args, **kwargs: fn)
    return fn
