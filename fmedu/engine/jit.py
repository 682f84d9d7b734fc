"""``shared``: the decorator of the per-sample pieces that the CPU and the GPU kernels share.

A decorated function stays plain Python (the GPU simulator and the tests call it as it is)
and is registered with each compiler for its own target:

* the CPU (numba, :func:`shared` itself): ``overload(..., target="cpu", inline="always")``, so
  numba-compiled CPU kernels inline it into their loops at the IR level (its arrays then need no
  calls, and the column loops vectorise);
* the GPU (numba-cuda, :func:`register_for_gpu`, called by :mod:`fmedu.engine.cuda` when it is
  imported): numba-cuda's own ``overload(..., target="cuda", inline="never")``, an ordinary
  device function. numba-cuda cannot take numba's inlined IR, and a registration it may inline
  makes it build each piece's IR once more per signature just to ask whether to inline it:
  three times the compile time of the same machine code (NVVM inlines the device functions
  on its own).

Keeping the two registrations apart also lets the CPU engine run where numba-cuda is not
installed: this module imports only numba.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from numba.core.extending import overload

__all__ = ["shared", "cpu_inlined", "register_for_gpu", "SHARED", "COMPILED_SOURCES", "sources_digest"]

F = TypeVar("F", bound=Callable[..., Any])

SHARED: list[Callable[..., Any]] = []  # every decorated function, in definition order
_on_the_gpu: set[Callable[..., Any]] = set()


def _implementation(fn: Callable[..., Any]) -> Callable[..., Callable[..., Any]]:
    return lambda *args, **kwargs: fn


def shared(fn: F) -> F:
    """Register ``fn`` for compiled CPU callers (inlined) and for :func:`register_for_gpu`."""
    overload(fn, target="cpu", inline="always", strict=False)(_implementation(fn))
    SHARED.append(fn)
    return fn


def cpu_inlined(fn: F) -> F:
    """Register ``fn`` for compiled CPU callers only, inlined at the IR level as :func:`shared` does
    (for pieces of the CPU kernels that the GPU does not share)."""
    overload(fn, target="cpu", inline="always", strict=False)(_implementation(fn))
    return fn


def register_for_gpu() -> int:
    """Register every :data:`SHARED` function with numba-cuda as a device function (not inlined
    at the IR level); idempotent. Returns how many were registered now."""
    cuda_overload = importlib.import_module("numba.cuda.extending").overload  # numba-cuda's, target "cuda"

    count = 0
    for fn in SHARED:
        if fn not in _on_the_gpu:
            cuda_overload(fn, target="cuda", inline="never", strict=False)(_implementation(fn))
            _on_the_gpu.add(fn)
            count += 1
    return count


# The source files (relative to the package fmedu/) whose code both backends' kernels compile,
# besides the kernel's own file: the shared pieces, their decorator, the constants, the scalars.
COMPILED_SOURCES = (
    "engine/rules.py",
    "engine/adam.py",
    "engine/penalised.py",
    "engine/jit.py",
    "engine/common.py",
    "prox/scalar.py",
)


def sources_digest(kernel_file: str, root: Path | None = None) -> str:
    """sha256 of ``kernel_file`` (``"engine/cpu.py"`` or ``"engine/cuda.py"``) and of every file of
    :data:`COMPILED_SOURCES`, under ``root`` (default: the installed package).

    numba checks a cached kernel against its own file only; the engine's caches are stamped with
    this digest instead (:mod:`fmedu.engine.cpu`, :mod:`fmedu.engine.cuda`), so that an edit to
    any source a kernel compiles invalidates it.
    """
    root = Path(__file__).resolve().parent.parent if root is None else Path(root)
    digest = hashlib.sha256()
    for name in (kernel_file, *COMPILED_SOURCES):
        digest.update(name.encode() + b"\0")
        digest.update((root / name).read_bytes())
    return digest.hexdigest()
