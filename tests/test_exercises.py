"""The "your turn" exercises: every reference passes its check, every catalogued wrong variant
fails it with its own diagnosis, and the reader's mistakes get messages about their code."""

import math
import re
from pathlib import Path

import nbformat
import pytest
import torch

from fmedu.exercises import (
    EXERCISES,
    NOT_WRITTEN,
    PENDING_SECOND_YOUR_TURN,
    catch_table,
    every_check_catches,
    for_chapter,
    format_catch_table,
)
from fmedu.exercises.catch import CatchRow, checks_for
from fmedu.student import student_notebook, write_student_edition

NAMES = sorted(EXERCISES)


def test_every_chapter_has_an_exercise():
    assert {ex.chapter for ex in EXERCISES.values()} >= {"01", "02", "03", "04", "05", "06", "07", "08", "09"}
    assert all(len(for_chapter(c)) >= 1 for c in ("01", "02", "03", "04", "05", "06", "07", "08", "09"))


@pytest.mark.parametrize("name", NAMES)
def test_reference_solution_passes(name):
    result = EXERCISES[name].check(EXERCISES[name].solution(), quiet=True)
    assert result.correct and result.variant is None
    assert "correct" in result.message


@pytest.mark.parametrize("name", NAMES)
def test_every_variant_fails_with_its_own_diagnosis(name):
    ex = EXERCISES[name]
    assert len(ex.variants) >= 2, "a check needs at least two catalogued wrong variants"
    for vname, variant in ex.variants.items():
        result = ex.check(variant.fn, quiet=True)
        assert not result.correct
        assert result.variant == vname, f"{name}: variant {vname} diagnosed as {result.variant}: {result.message}"
        assert variant.diagnosis in result.message


@pytest.mark.parametrize("name", NAMES)
def test_stub_says_not_yet_written(name):
    def stub(*args):
        raise NotImplementedError

    for fn in (stub, None):
        result = EXERCISES[name].check(fn, quiet=True)
        assert not result.correct and NOT_WRITTEN in result.message and result.variant is None


def test_reader_exception_is_reported_as_their_code():
    def broken(x, V):
        return x @ V / 0 if False else [][0]

    result = EXERCISES["rendle_pairwise"].check(broken, quiet=True)
    assert not result.correct
    assert "your function raised IndexError" in result.message and "Traceback" not in result.message


def test_wrong_shape_is_named():
    result = EXERCISES["grad_v"].check(
        lambda x, V: (x[:, None] * (x @ V)[None, :] - V * (x * x)[:, None]).T, quiet=True
    )
    assert not result.correct and "shape (3, 4)" in result.message and "(4, 3)" in result.message


def test_unknown_mistake_gets_the_smallest_failing_case():
    ref = EXERCISES["rendle_pairwise"].reference
    result = EXERCISES["rendle_pairwise"].check(lambda x, V: ref(x, V) * 1.001, quiet=True)
    assert not result.correct and result.variant is None
    assert "smallest failing case is n = 4, k = 3" in result.message and "expected" in result.message


def test_e1_message_names_the_erratum():
    ex = EXERCISES["grad_v"]
    message = ex.check(ex.variants["E1"].fn, quiet=True).message
    assert "−v_if x_i²" in message and "E1" in message


def test_check_prints_its_message(capsys):
    ex = EXERCISES["exact_bound"]
    result = ex.check(lambda d, y: 1.0 / (2 * d))
    assert capsys.readouterr().out.strip() == result.message
    assert result.variant == "published-2d"


def test_bound_evidence_is_exact_and_finite_where_it_should_be():
    cases = EXERCISES["exact_bound"].cases()
    assert [c.expected for c in cases if c.args[0] == 1] == [math.inf]
    assert all(math.isfinite(c.expected) for c in cases if c.args[0] >= 2)


def test_student_notebook_removes_solutions_and_outputs(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 01 · Title"),
        nbformat.v4.new_code_cell("x = 1", outputs=[nbformat.v4.new_output("stream", text="1\n")]),
        nbformat.v4.new_code_cell("# Worked solution\nprint(2)", metadata={"tags": ["solution", "hide-cell"]}),
        nbformat.v4.new_code_cell(
            "def f():\n    return 3",
            metadata={"tags": ["your-turn"], "fmedu": {"stub": "def f():\n    raise NotImplementedError"}},
        ),
    ]
    out = student_notebook(nb)
    sources = [c.source for c in out.cells]
    assert "# Worked solution\nprint(2)" not in sources
    assert "def f():\n    raise NotImplementedError" in sources
    assert all(c.outputs == [] for c in out.cells if c.cell_type == "code")
    assert len(nb.cells) == 4 and nb.cells[1].outputs, "the original notebook is not modified"


def test_student_edition_of_the_course(tmp_path):
    written = write_student_edition(out_dir=tmp_path / "student")
    assert written and all(p.parent == tmp_path / "student" for p in written)
    for path in written:
        nb = nbformat.read(path, as_version=4)
        assert not any("solution" in c.metadata.get("tags", []) for c in nb.cells), path.name
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name


def test_student_edition_refuses_a_file_as_folder(tmp_path):
    target = tmp_path / "file"
    target.write_text("mine")
    with pytest.raises(SystemExit, match="is a file"):
        write_student_edition(out_dir=target)
    assert target.read_text() == "mine"


def test_evidence_uses_k_at_least_3_and_n_not_k_for_gradients():
    for case in EXERCISES["grad_v"].cases():
        n, k = case.args[1].shape
        assert k >= 3 and n != k
    assert all(isinstance(case.args[0], torch.Tensor) for case in EXERCISES["grad_v"].cases())


# --------------------------------------------------------------------------- every check catches something

CHAPTERS = sorted({ex.chapter for ex in EXERCISES.values()})
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_check_catches_a_variant_and_every_variant_is_caught(chapter):
    rows = catch_table(chapter)
    checks = list(rows[0].caught)
    variants = [r for r in rows if not r.is_reference]
    for name in checks:
        assert any(r.caught[name] for r in variants), f"chapter {chapter}: the check {name!r} catches no variant"
    for r in variants:
        assert any(v for v in r.caught.values()), (
            f"chapter {chapter}: variant {r.exercise}/{r.candidate} is caught by no check"
        )
    for r in rows:
        if r.is_reference:
            assert not any(v for v in r.caught.values()), f"chapter {chapter}: a check rejects {r.exercise}'s reference"
        # a check applies exactly to the candidates of its own exercise
        assert all((v is None) == (name in NOT_MINE[r.exercise]) for name, v in r.caught.items())
    assert every_check_catches(rows) is True


NOT_MINE = {ex.name: {c.name for c in checks_for(ex.chapter) if c.exercise != ex.name} for ex in EXERCISES.values()}


def test_a_check_that_cannot_fail_is_reported():
    rows = catch_table("05")
    blind = [
        CatchRow(
            r.exercise,
            r.candidate,
            r.source,
            {**r.caught, "always passes": False if r.exercise == "exact_bound" else None},
        )
        for r in rows
    ]
    assert every_check_catches(rows) is True and every_check_catches(blind) is False
    lost = [CatchRow(r.exercise, r.candidate, r.source, {n: False for n in r.caught}) for r in rows]
    assert every_check_catches(lost) is False


def test_catch_table_names_an_unknown_chapter():
    with pytest.raises(KeyError, match="chapters with exercises"):
        catch_table("99")


def test_format_catch_table_one_block_per_exercise():
    text = format_catch_table(catch_table("06"))
    blocks = text.split("\n\n")
    assert [b.split()[0] for b in blocks] == ["s_inverse", "q_prime"]
    assert "y-hat-at-start" in blocks[1] and "caught" in blocks[1] and "passes" in blocks[1].splitlines()[2]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_two_your_turn_exercises_per_chapter(chapter):
    names = sorted(for_chapter(chapter))
    if chapter in PENDING_SECOND_YOUR_TURN:
        assert len(names) == 1, f"chapter {chapter} has {len(names)} exercises: remove it from PENDING_SECOND_YOUR_TURN"
    else:
        assert len(names) >= 2, f"chapter {chapter} has fewer than two 'your turn' exercises: {names}"
    (source,) = NOTEBOOKS.glob(f"{chapter}_*.py")
    text = source.read_text()
    assert text.count('tags=["your-turn"]') == len(names), source.name
    assert all(f'EXERCISES["{name}"].check(my_{name}).correct' in text for name in names), source.name


def test_pending_chapters_are_chapters():
    assert PENDING_SECOND_YOUR_TURN <= {"01", "02", "03", "04", "05", "06", "07", "08", "09"}
    assert not (PENDING_SECOND_YOUR_TURN & {"01", "02", "05", "06"})


def test_readme_your_turn_counts_match_the_catalogue():
    text = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    match = re.search(r'"Your turn" exercises per chapter \(tested against the catalogue\): ([0-9:, ]+)\.', text)
    assert match, "README: the line of 'your turn' exercises per chapter is missing"
    listed = dict(item.split(": ") for item in match.group(1).split(", "))
    assert listed == {c: str(len(for_chapter(c))) for c in CHAPTERS}
