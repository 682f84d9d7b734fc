"""The course's own structure, read from the chapter files (chapter 00, the course index).

The index computes what it shows from the chapters as they are when it runs, so it cannot
drift from them:

* :func:`cells` splits a chapter's paired ``.py`` file (jupytext percent format) into
  markdown and code cells;
* :func:`reading_stats` counts the words of prose and the non-blank lines of code of the
  lesson and of the exercises, and :func:`reading_minutes` turns them into minutes with the
  rule stated in :data:`WORDS_PER_MINUTE` and :data:`CODE_LINES_PER_MINUTE`;
* :func:`references` parses a chapter's numbered "## References" list, :func:`citations`
  the numbers ``[N]`` its text cites, and :func:`bibliography` merges every chapter's list
  into one, de-duplicated by :func:`entry_key` (the normalised title);
* :func:`markdown_links` and :func:`broken_links` check the relative links of a page.

Every chapter numbers its references on its own; the bibliography records each chapter's
number for each work. ``tests/test_ch00_index.py`` checks the index against these functions.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "NOTEBOOKS_DIR",
    "WORDS_PER_MINUTE",
    "CODE_LINES_PER_MINUTE",
    "Cell",
    "Work",
    "chapter_files",
    "cells",
    "reading_stats",
    "reading_minutes",
    "references",
    "citations",
    "entry_key",
    "bibliography",
    "markdown_links",
    "broken_links",
    "chapter_title",
    "exercise_count",
    "reading_table",
    "bibliography_markdown",
]

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
# Reading rule of the index: mathematical prose is read at about half the speed of ordinary
# prose (200–250 words a minute), and a line of code takes a few seconds to read and relate to
# the text. 2,500 words and 200 lines, the course's target for one sitting, give 45 minutes.
WORDS_PER_MINUTE = 100
CODE_LINES_PER_MINUTE = 10


@dataclass(frozen=True)
class Cell:
    """One cell of a chapter: ``kind`` is ``"markdown"`` or ``"code"``; ``text`` without comment marks."""

    kind: str
    text: str
    tags: tuple[str, ...] = ()


@dataclass
class Work:
    """One entry of the bibliography: its text (from the first chapter that lists it) and who cites it."""

    key: str
    text: str
    cited_as: dict[str, int] = field(default_factory=dict)  # chapter stem → that chapter's number


def chapter_files(folder: Path | str = NOTEBOOKS_DIR) -> list[Path]:
    """The chapters' paired sources ``NN_name.py``, in course order (the index, 00, included)."""
    return sorted(Path(folder).glob("[0-9][0-9]_*.py"))


def cells(path: Path | str) -> list[Cell]:
    """The cells of a jupytext percent-format file, the header block left out."""
    out: list[Cell] = []
    kind: str | None = None
    tags: tuple[str, ...] = ()
    lines: list[str] = []

    def flush():
        if kind is not None:
            text = "\n".join(lines).strip("\n")
            out.append(Cell(kind, text, tags))

    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("# %%"):
            flush()
            kind = "markdown" if "[markdown]" in line else "code"
            found = re.search(r"tags=\[([^\]]*)\]", line)
            tags = tuple(t.strip().strip("\"'") for t in found.group(1).split(",")) if found else ()
            lines = []
        elif kind == "markdown":
            lines.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
        elif kind == "code":
            lines.append(line)
    flush()
    return out


def _sections(path: Path | str) -> dict[str, list[tuple[str, str]]]:
    """Lines of the chapter as ``(kind, line)``, split into lesson, exercises and references."""
    parts: dict[str, list[tuple[str, str]]] = {"lesson": [], "exercises": [], "references": []}
    part = "lesson"
    for cell in cells(path):
        for line in cell.text.splitlines():
            if cell.kind == "markdown" and line.strip() == "## Exercises":
                part = "exercises"
            elif cell.kind == "markdown" and line.strip() == "## References":
                part = "references"
            parts[part].append((cell.kind, line))
    return parts


def reading_stats(path: Path | str) -> dict[str, int]:
    """Words of prose and non-blank code lines, for the lesson and for the exercises.

    The lesson runs up to the heading "## Exercises", the exercises from there to
    "## References"; the reference list itself is not counted. A word is a
    whitespace-separated token of a markdown cell (a formula counts by its tokens).
    """
    parts = _sections(path)
    stats = {}
    for part in ("lesson", "exercises"):
        lines = parts[part]
        stats[f"{part}_words"] = sum(len(t.split()) for kind, t in lines if kind == "markdown")
        stats[f"{part}_code_lines"] = sum(1 for kind, t in lines if kind == "code" and t.strip())
    return stats


def reading_minutes(words: int, code_lines: int) -> int:
    """Minutes to read ``words`` of prose and ``code_lines`` of code, rounded to the nearest 5."""
    minutes = words / WORDS_PER_MINUTE + code_lines / CODE_LINES_PER_MINUTE
    return max(5, 5 * round(minutes / 5))


_ITEM = re.compile(r"^(\d+)\.\s+(.*)$")


def references(path: Path | str) -> dict[int, str]:
    """The numbered list under a chapter's "## References" heading: ``{number: entry text}``.

    An entry may run over several indented lines; the list ends at the first line that is
    neither an item nor indented (for example the previous/next links).
    """
    out: dict[int, str] = {}
    current = None
    for _, line in _sections(path)["references"]:
        found = _ITEM.match(line.strip()) if not line.startswith(" ") else None
        if found:
            current = int(found.group(1))
            out[current] = found.group(2).strip()
        elif current is not None and line.startswith(" ") and line.strip():
            out[current] += " " + line.strip()
        elif current is not None and line.strip():
            current = None
    return out


_CODE_SPAN = re.compile(r"`[^`]*`")
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$]*\$", re.S)
_CITE = re.compile(r"\[(\d+(?:\s*[,–-]\s*\d+)*)(?:,\s*[^\]\d][^\]]*)?\](?!\()")


def citations(path: Path | str) -> set[int]:
    """Reference numbers cited as ``[N]``, ``[N, M]``, ``[N–M]`` or ``[N, §2.2]`` in a chapter's markdown.

    Code spans, formulas and the reference list are skipped, and a bracket followed by ``(``
    (a markdown link) is not a citation.
    """
    found: set[int] = set()
    for part in ("lesson", "exercises"):
        text = "\n".join(t for kind, t in _sections(path)[part] if kind == "markdown")
        text = _CODE_SPAN.sub(" ", _MATH.sub(" ", text))
        for group in _CITE.findall(text):
            for piece in re.split(r"\s*,\s*", group):
                ends = [int(p) for p in re.split(r"\s*[–-]\s*", piece)]
                found.update(range(ends[0], ends[-1] + 1))
    return found


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def entry_key(entry: str) -> str:
    """The de-duplication key of a reference: its normalised title.

    The title is the first quoted ("…") or italic (*…*) or code (`…`) segment; chapters write
    authors in different styles ("Steffen Rendle." or "S. Rendle,") and some add an access
    year to a web page, so authors and years are left out. An entry with no recognisable title
    is keyed by its whole normalised text.
    """
    title = re.search(r"[\"“]([^\"”]+)[\"”]|\*([^*]+)\*|`([^`]+)`", entry)
    if title is None:
        return _normalise(entry)
    return _normalise(next(g for g in title.groups() if g))


def bibliography(folder: Path | str = NOTEBOOKS_DIR) -> list[Work]:
    """Every chapter's reference list merged into one, de-duplicated by :func:`entry_key`.

    Works appear in the order in which the chapters first list them; each records the
    chapters that list it and the number it has there.
    """
    works: dict[str, Work] = {}
    for path in chapter_files(folder):
        for number, text in references(path).items():
            key = entry_key(text)
            work = works.setdefault(key, Work(key, text))
            work.cited_as[path.stem] = number
    return list(works.values())


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def markdown_links(path: Path | str) -> list[str]:
    """The targets of the markdown links ``[text](target)`` in a chapter's markdown cells."""
    text = "\n".join(c.text for c in cells(path) if c.kind == "markdown")
    return _LINK.findall(text)


def _anchors(target: Path) -> set[str]:
    """The heading anchors of a markdown file or a chapter (GitHub's rule: lower case, spaces → -)."""
    if target.suffix == ".ipynb" and target.with_suffix(".py").exists():
        text = "\n".join(c.text for c in cells(target.with_suffix(".py")) if c.kind == "markdown")
    else:
        text = target.read_text(encoding="utf-8")
    heads = re.findall(r"^#+\s+(.*)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def broken_links(path: Path | str) -> list[str]:
    """Relative link targets of a chapter that do not exist (a file, or a heading in it).

    Links with a scheme (``https:``) are not followed: this checks the course, not the web.
    """
    path = Path(path)
    broken = []
    for link in markdown_links(path):
        if re.match(r"^[a-z]+:", link):
            continue
        name, _, anchor = link.partition("#")
        target = (path.parent / name) if name else path.with_suffix(".ipynb")
        if not target.exists() or (anchor and anchor not in _anchors(target)):
            broken.append(link)
    return broken


def chapter_title(path: Path | str) -> str:
    """The chapter's title: its first level-1 heading, without the ``#``."""
    for cell in cells(path):
        for line in cell.text.splitlines():
            if cell.kind == "markdown" and line.startswith("# "):
                return line[2:].strip()
    return Path(path).stem


def exercise_count(path: Path | str) -> int:
    """Number of exercises: level-3 headings "### Exercise" in the chapter's markdown."""
    return sum(
        line.startswith("### Exercise") for c in cells(path) if c.kind == "markdown" for line in c.text.splitlines()
    )


def reading_table(folder: Path | str = NOTEBOOKS_DIR) -> list[dict]:
    """One row per chapter after the index: title, prose words, code lines, minutes, exercises."""
    rows = []
    for path in chapter_files(folder)[1:]:
        s = reading_stats(path)
        rows.append(
            {
                "chapter": path.stem,
                "title": chapter_title(path),
                "words": s["lesson_words"],
                "code_lines": s["lesson_code_lines"],
                "minutes": reading_minutes(s["lesson_words"], s["lesson_code_lines"]),
                "exercises": exercise_count(path),
            }
        )
    return rows


def _plain_math(text: str) -> str:
    """Inline formulas ``$…$`` of an entry as plain text (``$VV^\\top$`` → ``VVᵀ``).

    The bibliography is a cell's output, and the book does not typeset formulas in outputs.
    """

    def plain(found: re.Match) -> str:
        math = found.group(1).replace("^\\top", "ᵀ").replace("\\top", "ᵀ")
        math = re.sub(r"\\(mathbb|mathbf|mathrm|operatorname|text)\s*", "", math)
        return re.sub(r"\\([A-Za-z]+)", r"\1", math).replace("{", "").replace("}", "")

    return re.sub(r"\$([^$]+)\$", plain, text)


def bibliography_markdown(folder: Path | str = NOTEBOOKS_DIR) -> str:
    """The bibliography as a numbered markdown list; each entry ends with the chapters that list it.

    "(01 [1], 02 [4])" means: chapter 01 lists the work as its reference [1], chapter 02 as [4].
    Formulas in an entry are written as plain text (:func:`_plain_math`), and the chapters are
    named by number, not linked: the book resolves links in markdown cells, not in outputs.
    """
    lines = []
    for number, work in enumerate(bibliography(folder), start=1):
        where = ", ".join(f"{stem[:2]} [{n}]" for stem, n in work.cited_as.items())
        lines.append(f"{number}. {_plain_math(work.text)} ({where})")
    return "\n".join(lines)
