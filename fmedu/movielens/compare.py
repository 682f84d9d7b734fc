"""This engine against an earlier one, side by side in one process: ``python -m fmedu bench --against DIR``.

``DIR`` is another fmedu source tree (for example a git worktree of an earlier commit:
``git worktree add /tmp/before <commit>``). Its package is imported under another name, so
both engines run in the same process on the same data; for each method, one run and one
thread, the two engines take turns: each round trains a fresh run of each for ``epochs``
epochs and times every epoch. Reported per method: the median over rounds of the ratio of
epoch times (earlier / this, so > 1 means this engine is faster), for each epoch, the range of
all ratios, both rates, and whether both engines ended with the same parameters bit for bit.

Only ratios taken in the same round are meaningful on a shared machine: a slowdown during the
benchmark affects both engines of a round alike.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from ..errors import FMInputError

__all__ = ["load_engine", "compare", "format_rows", "METHODS"]

# the methods compared, with the step sizes they run at (η = 1/23 is the published prox step size;
# "prox+L2" is the exact prox step with the regularised experiment's per-touch penalty)
METHODS = {
    "sgd": ("sgd", 0.01, {}),
    "adagrad": ("adagrad", 0.01, {}),
    "adam": ("adam", 0.01, {}),
    "prox": ("prox", 1 / 23, {}),
    "prox-published": ("prox-published", 1 / 23, {}),
    "prox+L2": ("prox", 1 / 23, {"lam_w": 0.003, "lam_v": 0.03}),
    "prox-linearised": ("prox-linearised", 1 / 23, {}),
}
_NAME = "fmedu_against"


def load_engine(source: str | Path) -> ModuleType:
    """The ``fmedu.engine`` of the fmedu source tree ``source`` (a folder holding ``fmedu/``),
    imported as ``fmedu_against.engine`` next to this one."""
    root = Path(source).expanduser()
    package = root / "fmedu" if (root / "fmedu" / "__init__.py").is_file() else root
    if not (package / "__init__.py").is_file() or not (package / "engine").is_dir():
        raise FMInputError(
            f"--against {source}: no fmedu package with an engine there; pass the root of an fmedu "
            "checkout (e.g. made with: git worktree add /tmp/before <commit>)"
        )
    if _NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            _NAME, package / "__init__.py", submodule_search_locations=[str(package)]
        )
        if spec is None or spec.loader is None:  # pragma: no cover - a folder with __init__.py has a spec
            raise FMInputError(f"--against {source}: cannot import {package}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[_NAME] = module
        spec.loader.exec_module(module)
    return importlib.import_module(f"{_NAME}.engine")


def _timed(engine: ModuleType, method: str, data, epochs: int):
    name, eta, penalty = METHODS[method]
    idx, nnz, y, n_features = data
    trainer = engine.make_trainer(
        [engine.Run(name, eta, 0, **penalty)], idx, nnz, y, n_features=n_features, train_rows=np.arange(len(y))
    )
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        trainer.epoch()
        times.append(time.perf_counter() - start)
    return times, trainer


def compare(before: ModuleType, after: ModuleType, data, methods=tuple(METHODS), rounds: int = 5, epochs: int = 2):
    """One row per method: ``method``, ``ratios`` (median over rounds of before/after epoch time, per
    epoch), ``low``, ``high`` (range of all ratios), ``before_rate``, ``after_rate`` (median
    sample-steps/s), ``identical`` (same parameters after ``epochs`` epochs)."""
    for engine in (before, after):
        engine.set_threads(1)
    samples = len(data[2])
    rows = []
    for method in methods:
        if method not in METHODS:
            raise FMInputError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        _, old = _timed(before, method, data, epochs)  # compiles (or loads) both engines' kernels
        _, new = _timed(after, method, data, epochs)
        identical = bool(np.array_equal(old.w0, new.w0) and np.array_equal(old.theta, new.theta))
        ratios, old_rates, new_rates = [], [], []
        for _ in range(rounds):
            t_old, _ = _timed(before, method, data, epochs)
            t_new, _ = _timed(after, method, data, epochs)
            ratios.append([a / b for a, b in zip(t_old, t_new)])
            old_rates += [samples / t for t in t_old]
            new_rates += [samples / t for t in t_new]
        table = np.array(ratios)
        rows.append(
            {
                "method": method,
                "ratios": [float(x) for x in np.median(table, axis=0)],
                "low": float(table.min()),
                "high": float(table.max()),
                "before_rate": float(np.median(old_rates)),
                "after_rate": float(np.median(new_rates)),
                "identical": identical,
            }
        )
    return rows


def format_rows(rows, rounds: int) -> list[str]:
    """The report's lines: a header, then one line per method."""
    epochs = len(rows[0]["ratios"]) if rows else 0
    head = "  ".join(f"epoch {e + 1}" for e in range(epochs))
    lines = [
        f"this engine against --against's, one run and one thread per method, taking turns; "
        f"median over {rounds} rounds of the ratio of epoch times (> 1: this one is faster)",
        f"{'method':16s} {head}  {'range':>11s}  {'before M/s':>10s}  {'this M/s':>8s}  identical",
    ]
    for row in rows:
        ratios = "  ".join(f"{r:7.2f}" for r in row["ratios"])
        lines.append(
            f"{row['method']:16s} {ratios}  {row['low']:5.2f}-{row['high']:<5.2f}  "
            f"{row['before_rate'] / 1e6:10.2f}  {row['after_rate'] / 1e6:8.2f}  {row['identical']}"
        )
    return lines
