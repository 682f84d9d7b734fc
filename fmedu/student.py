"""The student edition: the chapters without worked solutions, for a teacher to hand out.

``python -m fmedu.student`` (what ``make student`` runs) reads every committed chapter
``notebooks/NN_*.ipynb`` and writes ``build/student/NN_*.ipynb`` with

* every cell tagged ``solution`` or ``solution-text`` removed (the worked solutions under each
  exercise; ``solution-text`` marks one written as text, collapsed by an HTML details element);
* every cell tagged ``your-turn`` kept with the stub stored in its metadata (``fmedu.stub``),
  so the reader's function starts as ``raise NotImplementedError`` and its check says
  "not yet written" instead of failing;
* every output cleared, so the reader runs the chapter themselves.

Nothing outside the output folder is written, and only files this command names
``NN_*.ipynb`` are replaced there.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTICE = (
    '*Student edition: the worked solutions are removed. Each exercise marked "your turn" '
    "has a stub to fill in; its check tells you whether your function is right and names the "
    "mistake when it is not.*"
)

__all__ = ["student_notebook", "write_student_edition", "main"]


def student_notebook(nb):
    """A copy of the notebook ``nb`` (nbformat node) as the student edition."""
    import nbformat

    out = copy.deepcopy(nb)
    cells = []
    for cell in out.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "solution" in tags or "solution-text" in tags:
            continue
        if "your-turn" in tags:
            stub = cell.get("metadata", {}).get("fmedu", {}).get("stub")
            if stub is not None:
                cell.source = stub
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cells.append(cell)
    if cells and cells[0].cell_type == "markdown":
        cells.insert(1, nbformat.v4.new_markdown_cell(NOTICE))
    out.cells = cells
    return out


def write_student_edition(
    notebooks: Path = ROOT / "notebooks", out_dir: Path = ROOT / "build" / "student"
) -> list[Path]:
    """Write the student edition of every ``NN_*.ipynb`` in ``notebooks`` into ``out_dir``."""
    import nbformat

    sources = sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))
    if not sources:
        raise SystemExit(f"no chapters NN_*.ipynb found in {notebooks}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise SystemExit(f"--out {out_dir} is a file; give a folder (it is created if missing)")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sources:
        nb = nbformat.read(path, as_version=4)
        target = out_dir / path.name
        nbformat.write(student_notebook(nb), target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fmedu.student", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "build" / "student", help="output folder (default build/student)"
    )
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks", help="the chapters' folder")
    args = parser.parse_args(argv)
    for path in write_student_edition(args.notebooks, args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
