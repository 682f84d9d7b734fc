"""Chapter 00 (the course index): its bibliography, links, notation and reading times.

The index generates its bibliography and reading table from the chapters when it runs; these
tests check the generator (fmedu.course) on small files, check every chapter's citations
against its own reference list, and check that the executed index shows what the chapters
hold now (re-execute the index after changing a chapter's references or length).
"""

import json
import re
from pathlib import Path

import pytest

from fmedu import course

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
INDEX = NOTEBOOKS / "00_index.py"
CHAPTERS = [p for p in course.chapter_files(NOTEBOOKS) if not p.name.startswith("00_")]


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("# %% [markdown]\n" + "\n".join(f"# {line}" if line else "#" for line in body.splitlines()) + "\n")
    return path


def _index_outputs() -> list[str]:
    nb = json.loads(INDEX.with_suffix(".ipynb").read_text())
    outs = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "text/markdown" in data:
                outs.append("".join(data["text/markdown"]))
    return outs


# ---------------------------------------------------------------- the generator on small files


def test_references_and_citations_are_parsed(tmp_path):
    path = _write(
        tmp_path,
        "01_a.py",
        "# 01 · A\n\nAs [1] and [2, 4] show, and [3–4, §2.2]; not `x[5]`, not $a[6]$, not [a link](01_a.ipynb).\n\n"
        '## References\n\n1. A. Author. "First Title." Venue, 2001.\n2. B. Author. "Second\n   Title." 2002.\n'
        '3. C. Author. *A Book*. 2003.\n4. D. Author. "Fourth." 2004.\n\n[Next](02_b.ipynb)',
    )
    refs = course.references(path)
    assert sorted(refs) == [1, 2, 3, 4]
    assert refs[2] == 'B. Author. "Second Title." 2002.'
    assert course.citations(path) == {1, 2, 3, 4}


def test_bibliography_merges_author_styles_and_keeps_each_chapters_number(tmp_path):
    _write(
        tmp_path,
        "01_a.py",
        '[1] [2]\n\n## References\n\n1. Steffen Rendle. "Factorization Machines." ICDM, 2010.\n'
        '2. Some One. "Other Work." 2011.',
    )
    _write(
        tmp_path,
        "02_b.py",
        '[1] [2]\n\n## References\n\n1. X. Y. "Third Work." 2012.\n'
        '2. S. Rendle, "Factorization machines," in *Proc. ICDM*, 2010.',
    )
    works = course.bibliography(tmp_path)
    assert [w.cited_as for w in works] == [{"01_a": 1, "02_b": 2}, {"01_a": 2}, {"02_b": 1}]
    # the title "Factorization Machines with libFM" is another work
    assert course.entry_key('S. Rendle. "Factorization Machines with libFM." 2012.') != works[0].key


def test_broken_links_finds_missing_files_and_headings(tmp_path):
    (tmp_path / "01_a.ipynb").write_text("{}")
    path = _write(
        tmp_path,
        "01_a.py",
        "# Title\n\n## Notation\n\n[ok](01_a.ipynb#notation) [here](#notation) "
        "[missing](02_b.ipynb) [bad heading](01_a.ipynb#nowhere) [web](https://example.org)",
    )
    assert course.broken_links(path) == ["02_b.ipynb", "01_a.ipynb#nowhere"]


def test_reading_rule():
    # the course's target for one sitting, 2,500 words and 200 code lines, reads in 45 minutes
    assert course.reading_minutes(2_500, 200) == 45
    assert course.reading_minutes(0, 0) == 5


# ---------------------------------------------------------------- the chapters


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_citation_has_an_entry_and_every_entry_is_cited(chapter):
    refs, cited = set(course.references(chapter)), course.citations(chapter)
    assert refs, f"{chapter.name} has no numbered '## References' list"
    assert sorted(refs) == list(range(1, len(refs) + 1)), f"{chapter.name}: references not numbered 1..N"
    assert not cited - refs, f"{chapter.name} cites {sorted(cited - refs)} but lists no such reference"
    assert not refs - cited, f"{chapter.name} lists references {sorted(refs - cited)} that its text never cites"


@pytest.mark.parametrize("chapter", [INDEX, *CHAPTERS], ids=lambda p: p.stem)
def test_relative_links_resolve(chapter):
    assert course.broken_links(chapter) == []


# ---------------------------------------------------------------- the executed index


def test_index_bibliography_is_the_union_of_the_chapters_lists():
    works = course.bibliography(NOTEBOOKS)
    listed = {(p.stem, n) for p in CHAPTERS for n in course.references(p)}
    recorded = {(stem, n) for w in works for stem, n in w.cited_as.items()}
    assert recorded == listed, "every chapter's every reference appears exactly once in the bibliography"
    assert len({w.key for w in works}) == len(works)
    shown = _index_outputs()
    assert course.bibliography_markdown(NOTEBOOKS) in shown, (
        "re-execute notebooks/00_index.py: its bibliography is stale"
    )


def test_index_reading_table_is_current():
    shown = "\n".join(_index_outputs())
    for row in course.reading_table(NOTEBOOKS):
        assert f"| {row['title']} | {row['words']:,} | {row['code_lines']} | {row['minutes']} |" in shown, (
            f"re-execute notebooks/00_index.py: the reading table of {row['chapter']} is stale"
        )


def test_index_notation_matches_readme():
    def codes(text: str) -> list[str]:
        section = text.split("## Notation", 1)[1].split("\n## ", 1)[0]
        return [
            re.findall(r"`([^`]+)`", row.split("|")[2])
            for row in section.splitlines()
            if row.startswith("| ") and "`" in row
        ]

    index_md = "\n".join(c.text for c in course.cells(INDEX) if c.kind == "markdown")
    assert codes(index_md) == codes((ROOT / "README.md").read_text()), (
        "the index's notation table and the README's differ"
    )


def test_index_link_check_reads_its_own_links():
    # the index's check cell counts the relative links of its own markdown and finds none broken
    links = [link for link in course.markdown_links(INDEX) if ":" not in link]
    assert len(links) >= 10 and any(link.endswith("#notation") for link in links)
    nb = json.loads(INDEX.with_suffix(".ipynb").read_text())
    printed = [
        "".join(out["data"]["text/plain"])
        for cell in nb["cells"]
        if "course.broken_links" in "".join(cell["source"])
        for out in cell.get("outputs", [])
        if "text/plain" in out.get("data", {})
    ]
    assert printed == [f"({len(links)}, [])"]


def test_bibliography_writes_formulas_as_plain_text(tmp_path):
    # the book does not typeset formulas in a cell's output, so none may reach the bibliography
    _write(
        tmp_path, "01_a.py", '[1]\n\n## References\n\n1. "Notes," on whether $VV^\\top$ is any $\\mathbb{R}$ matrix.'
    )
    text = course.bibliography_markdown(tmp_path)
    assert "$" not in text and "VVᵀ" in text
