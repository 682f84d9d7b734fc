"""Project hygiene: environment.yml mirrors pyproject, notebooks are paired, executed and clean."""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from fmedu import figures
from fmedu.notebook_tools import pair_differences

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_mirrors_pyproject():
    project = _pyproject()["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    python = next(d for d in conda if d.startswith("python="))
    lower = re.search(r">=\s*([\d.]+)", project["requires-python"]).group(1)
    assert python == f"python={lower}", "environment.yml's python must match requires-python"
    wanted = set(project["dependencies"]).union(*project["optional-dependencies"].values())
    assert {"test", "lab", "book", "browser"} <= set(project["optional-dependencies"])
    listed = {p for p in pip if not p.startswith("-e")}
    assert listed == wanted, f"only in pyproject: {wanted - listed}; only in environment.yml: {listed - wanted}"
    assert "-e ." in pip


def test_torch_and_sympy_pinned_exactly():
    deps = _pyproject()["project"]["dependencies"]
    assert "torch==2.13.0" in deps
    assert any(re.fullmatch(r"sympy==[\d.]+", d) for d in deps)


def test_every_notebook_is_paired_and_in_sync():
    assert NOTEBOOKS, "no notebooks found"
    for nb in NOTEBOOKS:
        assert nb.with_suffix(".py").exists(), f"{nb.name} has no jupytext pair"
        assert pair_differences(nb.with_suffix(".py")) == []
    for py in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"):
        assert py.with_suffix(".ipynb").exists(), f"{py.name} was never executed into a notebook"


def test_pair_check_detects_an_edit(tmp_path):
    src = NOTEBOOKS[0].with_suffix(".py")
    (tmp_path / src.name).write_text(src.read_text() + "\n# %%\n1 + 1\n")
    (tmp_path / NOTEBOOKS[0].name).write_text(NOTEBOOKS[0].read_text())
    assert pair_differences(tmp_path / src.name) != []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executed_cleanly(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1)), "re-run with make notebooks"
    for cell in code:
        assert "execution" not in cell.get("metadata", {}), "timing metadata recorded"
        for out in cell["outputs"]:
            assert out["output_type"] != "error", f"error output in {path.name}"
            assert out.get("name") != "stderr", f"stderr output in {path.name}: {''.join(out['text'])[:200]}"
            assert "image/svg+xml" not in out.get("data", {}), "SVG figures embed dates; use PNG"
            text = "".join(out.get("data", {}).get("text/plain", ""))
            assert not text.startswith("[<matplotlib") and not text.startswith("Text("), (
                "end plot cells with ';' or plt.show()"
            )


def test_figure_registry_names_match_notebooks():
    registry = figures.discover()
    prefixes = {p.name[:2] for p in NOTEBOOKS}
    assert registry
    for name in registry:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+", name), name
        assert name[:2] in prefixes, f"figure {name} belongs to no notebook"


def test_committed_figures_have_csv():
    for png in (ROOT / "figures").glob("*.png"):
        assert png.with_suffix(".csv").exists(), f"{png.name} has no CSV of its numbers"


def test_figure_writer_roundtrip(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    png = figures.save_png(fig, tmp_path / "00_demo.png")
    csv = figures.write_csv(tmp_path / "00_demo.csv", [{"a": 1, "b": 2.5}])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert csv.read_text().splitlines() == ["a,b", "1,2.5"]


def test_cli_help():
    out = subprocess.run([sys.executable, "-m", "fmedu", "--help"], capture_output=True, text=True, check=True)
    assert "figures" in out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "fmedu", "figures", "--list"], capture_output=True, text=True, check=True
    )
    assert "01_cost_vs_n" in out.stdout.split()


def test_ci_calls_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make figures" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_movielens_never_tracked():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    leaked = [
        p
        for p in tracked
        if re.search(r"(^|/)(u\.(data|item|user)|u[1-5]\.(base|test)|u[ab]\.(base|test)|ml-100k\.zip)$", p)
    ]
    assert leaked == []
