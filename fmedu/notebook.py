"""Set-up shared by every notebook's first cell: ``from fmedu.notebook import setup; setup()``."""

from __future__ import annotations

import os
import warnings


def in_ci() -> bool:
    """True under CI or ``make notebooks`` (progress bars off, one thread)."""
    return bool(os.environ.get("CI")) or os.environ.get("FMEDU_THREADS") == "1"


def setup(threads: int | None = None) -> None:
    """One torch thread under CI, float64 printing, quiet warnings, PNG inline figures."""
    import matplotlib
    import torch

    from .validation import check_threads, env_threads

    if threads is None:
        threads = env_threads() or (1 if in_ci() else None)
    else:
        threads = check_threads(threads)
    if threads:
        torch.set_num_threads(threads)
    torch.set_printoptions(precision=6)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    matplotlib.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "figure.max_open_warning": 0})
    try:  # inline PNG figures whatever MPLBACKEND says (nbval skips PNG; SVG would embed dates)
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None:
        shell.run_line_magic("matplotlib", "inline")
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")
