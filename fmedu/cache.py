"""Where fmedu keeps what it downloads or compiles: a per-user cache folder, never the source tree.

The folder is the platform's user cache (``$XDG_CACHE_HOME/fmedu``, by default
``~/.cache/fmedu`` on Linux; ``~/Library/Caches/fmedu`` on macOS; ``%LOCALAPPDATA%\\fmedu\\Cache``
on Windows), as :func:`pooch.os_cache` computes it. It holds the MovieLens download
(``ml-100k/``) and numba's compiled kernels (``numba/``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["user_cache_dir", "use_user_numba_cache", "NUMBA_CACHE_VAR"]

NUMBA_CACHE_VAR = "NUMBA_CACHE_DIR"


def user_cache_dir() -> Path:
    """fmedu's per-user cache folder (not created here)."""
    import warnings

    with warnings.catch_warnings():  # pooch imports tqdm.auto, which warns inside a notebook kernel
        warnings.simplefilter("ignore")  # without ipywidgets (stderr in every chapter's first cell)
        import pooch

    return Path(pooch.os_cache("fmedu"))


def use_user_numba_cache() -> str:
    """Point numba's on-disk cache at ``user_cache_dir()/numba`` unless the user chose a folder.

    numba writes the compiled kernels of ``@njit(cache=True)`` functions next to their source
    files by default, i.e. into the installed package. Called when fmedu is imported, before
    any of its kernels is defined; an existing ``$NUMBA_CACHE_DIR`` is left as it is. Returns
    the folder in force.
    """
    folder = os.environ.get(NUMBA_CACHE_VAR)
    if not folder:
        folder = str(user_cache_dir() / "numba")
        os.environ[NUMBA_CACHE_VAR] = folder
    for name in ("numba.core.config", "numba.cuda.core.config"):  # numba's, numba-cuda's (GPU kernels)
        config = sys.modules.get(name)
        if config is not None:  # numba was imported first: its configuration was read already
            config.CACHE_DIR = folder  # type: ignore[attr-defined]
    return folder


use_user_numba_cache()  # on import: fmedu/__init__ imports this module before anything compiled
