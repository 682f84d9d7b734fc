"""Notebook maintenance: execute paired notebooks in the CI environment; check pairs are in sync.

``python -m fmedu.notebook_tools execute notebooks/NN_topic.py ...`` (what ``make notebooks``
runs) rebuilds ``NN_topic.ipynb`` from its jupytext percent ``.py`` and executes it in place
with one thread, fixed seeds and no timing metadata, so stored outputs are byte-stable.
``check`` reports pairs whose cells differ (the test suite runs the same comparison).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

PAIR_FORMATS = "ipynb,py:percent"


def _cells(nb) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", ()))) for c in nb.cells]


def pair_differences(py_path: Path) -> list[str]:
    """Human-readable differences between ``X.py`` and ``X.ipynb`` (empty when in sync)."""
    import jupytext

    ipynb_path = py_path.with_suffix(".ipynb")
    if not ipynb_path.exists():
        return [f"{ipynb_path} is missing: run `make notebooks NB={py_path}`"]
    text_cells, nb_cells = _cells(jupytext.read(py_path)), _cells(jupytext.read(ipynb_path))
    problems = []
    if len(text_cells) != len(nb_cells):
        problems.append(f"{py_path.name}: {len(text_cells)} cells in .py, {len(nb_cells)} in .ipynb")
    for number, (a, b) in enumerate(zip(text_cells, nb_cells)):
        if a != b:
            problems.append(f"{py_path.name}: cell {number} differs between .py and .ipynb")
            break
    if problems:
        problems.append(f"re-run `make notebooks NB={py_path}` after editing the .py")
    return problems


def execute(py_path: Path, timeout: int = 1800) -> Path:
    """Rebuild the .ipynb from the .py and execute it in place (cwd = the notebook's folder)."""
    import jupytext
    import nbformat
    from nbconvert.preprocessors import ExecutePreprocessor

    nb = jupytext.read(py_path)
    nb.metadata["jupytext"] = {"formats": PAIR_FORMATS}
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    for number, cell in enumerate(nb.cells):
        cell.id = f"cell-{number:03d}"  # deterministic ids keep re-runs byte-stable
    env_ok = os.environ.get("OMP_NUM_THREADS") == "1" and os.environ.get("PYTHONHASHSEED") == "0"
    if not env_ok:
        raise SystemExit("run through `make notebooks` so the CI environment (one thread, fixed seeds) is set")
    runner = ExecutePreprocessor(timeout=timeout, kernel_name="python3", record_timing=False)
    runner.preprocess(nb, {"metadata": {"path": str(py_path.parent.resolve())}})
    out = py_path.with_suffix(".ipynb")
    nbformat.write(nb, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmedu.notebook_tools", description=__doc__)
    parser.add_argument("action", choices=["execute", "check"])
    parser.add_argument("notebooks", nargs="+", type=Path, help="paired .py files (or their .ipynb)")
    args = parser.parse_args(argv)
    status = 0
    for path in args.notebooks:
        py_path = path.with_suffix(".py")
        if args.action == "execute":
            print(f"[notebooks] executing {py_path} ...", flush=True)
            print(f"[notebooks] wrote {execute(py_path)}", flush=True)
        else:
            for line in pair_differences(py_path):
                print(line)
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
