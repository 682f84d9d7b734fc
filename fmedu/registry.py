"""The figure registry: one function per figure, discovery, and ``python -m fmedu figures``.

Each chapter's plotting and demo code (the presentation layer: nothing a test imports)
lives in a module ``fmedu/figures/nbNN.py``; a function decorated with ``@figure("NN_name")``
writes ``figures/NN_name.png`` together with
``figures/NN_name.csv``, the numbers it was drawn from, and returns both paths. Modules
are discovered automatically, so adding a notebook never edits this file.

A chapter whose figure is a timing (which differs from run to run) reads the committed
CSV with :func:`read_csv` and draws it with the same plotting function, so the chapter's
copy and ``figures/NN_name.png`` always show the same numbers.
"""

from __future__ import annotations

import csv
import importlib
import io
import pkgutil
from collections.abc import Callable
from pathlib import Path

from .errors import FMInputError
from .paths import atomic_write

FigureFn = Callable[[Path], list[Path]]
REGISTRY: dict[str, FigureFn] = {}
FIGURES_DIR = Path(__file__).resolve().parents[1] / "figures"  # the project's committed figures

__all__ = ["REGISTRY", "FIGURES_DIR", "figure", "discover", "generate", "write_csv", "read_csv", "save_png"]


def figure(name: str) -> Callable[[FigureFn], FigureFn]:
    """Register ``fn(out_dir) -> [paths]`` as the producer of ``figures/<name>.png``."""

    def register(fn: FigureFn) -> FigureFn:
        if name in REGISTRY:
            raise FMInputError(f"figure {name!r} is registered twice")
        REGISTRY[name] = fn
        fn.figure_name = name  # type: ignore[attr-defined]
        return fn

    return register


def discover() -> dict[str, Callable[[Path], list[Path]]]:
    """Import every ``fmedu.figures.nb*`` module so that its figures register."""
    from . import figures

    for info in pkgutil.iter_modules(figures.__path__):
        if info.name.startswith("nb"):
            importlib.import_module(f"fmedu.figures.{info.name}")
    return dict(sorted(REGISTRY.items()))


def write_csv(path: Path, rows: list[dict]) -> Path:
    """Write dict rows (one header from the first row's keys), replacing ``path`` at once
    (:func:`fmedu.paths.atomic_write`: a failure leaves the old file as it was; a link is kept)."""
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, buf.getvalue())


def _number(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_csv(path: Path | str) -> list[dict]:
    """Rows written by :func:`write_csv`, numbers converted back (int, then float, else text).

    A bare name such as ``"01_cost_vs_n.csv"`` is looked up in the project's ``figures/``.
    """
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = FIGURES_DIR / path
    if not path.exists():
        raise FMInputError(f"{path} does not exist; regenerate it with `python -m fmedu figures`")
    with open(path, newline="") as fh:
        return [{key: _number(value) for key, value in row.items()} for row in csv.DictReader(fh)]


def save_png(fig, path: Path) -> Path:
    """Save a matplotlib figure as PNG without embedded software/date metadata, replacing
    ``path`` at once (:func:`fmedu.paths.atomic_write`: drawn in memory first, so a failure
    leaves the old file as it was; a link is kept and its target updated)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight", metadata={"Software": None})
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, buf.getvalue())


def generate(out_dir: Path, only: list[str] | None = None, progress: bool = True) -> list[Path]:
    """Run the registered figure functions (all, or those whose name starts with one of ``only``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    registry = discover()
    chosen = [n for n in registry if not only or any(n.startswith(p) for p in only)]
    if only and not chosen:
        raise FMInputError(f"no figure matches {only}; known figures: {', '.join(registry)}")
    written: list[Path] = []
    for name in chosen:
        if progress:
            print(f"[figures] {name} ...", flush=True)
        written += registry[name](Path(out_dir))
        plt.close("all")
    return written
