"""Project hygiene: environment.yml mirrors pyproject, notebooks are paired, executed and clean."""

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from fmedu import registry
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
    assert {"test", "lab", "book", "browser", "peers"} <= set(project["optional-dependencies"])
    listed = {p for p in pip if not p.startswith("-e")}
    assert listed == wanted, f"only in pyproject: {wanted - listed}; only in environment.yml: {listed - wanted}"
    assert "-e ." in pip


def test_torch_and_sympy_pinned_exactly():
    deps = _pyproject()["project"]["dependencies"]
    assert "torch==2.13.0" in deps
    assert any(re.fullmatch(r"sympy==[\d.]+", d) for d in deps)


def test_peers_extra_pinned_exactly_and_installed_by_make():
    peers = _pyproject()["project"]["optional-dependencies"]["peers"]
    for name in ("scikit-learn", "myfm"):
        assert any(re.fullmatch(rf"{name}==[\d.]+", d) for d in peers), f"{name} must be pinned exactly"
    assert "'.[test,peers]'" in (ROOT / "Makefile").read_text(), "make setup installs the peers extra"


def test_every_notebook_is_paired_and_in_sync():
    assert NOTEBOOKS, "no notebooks found"
    for nb in NOTEBOOKS:
        assert nb.with_suffix(".py").exists(), f"{nb.name} has no jupytext pair"
        assert pair_differences(nb.with_suffix(".py")) == []
    for py in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"):
        assert py.with_suffix(".ipynb").exists(), f"{py.name} was never executed into a notebook"


def test_paired_scripts_are_what_jupytext_writes():
    """JupyterLab's jupytext refuses to open a notebook newer than its script when the script's text
    differs from what jupytext would write (cell-marker metadata order, empty cells): compare the
    text, the two version lines of the header aside."""
    import jupytext

    for nb in NOTEBOOKS:
        text = jupytext.writes(jupytext.read(nb), fmt="py:percent")
        lines = [
            line
            for line in text.splitlines()
            if not line.startswith(("#       format_version:", "#       jupytext_version:"))
        ]
        assert "\n".join(lines) + "\n" == nb.with_suffix(".py").read_text(), (
            f"{nb.name}: rewrite its script from jupytext"
        )


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
    listed = subprocess.run(
        [sys.executable, "-m", "fmedu", "figures", "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    prefixes = {p.name[:2] for p in NOTEBOOKS}
    assert listed
    for name in listed:
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
    png = registry.save_png(fig, tmp_path / "00_demo.png")
    csv = registry.write_csv(tmp_path / "00_demo.csv", [{"a": 1, "b": 2.5}])
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


def _fmedu_imports(path: Path) -> set[str]:
    """The fmedu modules a source file imports (absolute names; module-level and inside functions)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("fmedu")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if not base.startswith("fmedu"):
                continue
            for alias in node.names:  # `from fmedu.x import y`: y may be a module or a name in x
                candidate = f"{base}.{alias.name}"
                module_file = ROOT / Path(*candidate.split("."))
                found.add(candidate if module_file.with_suffix(".py").exists() or module_file.is_dir() else base)
    return found - {".".join(parts)}


def test_no_import_cycle_among_fmedu_modules():
    graph = {}
    for path in (ROOT / "fmedu").rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(rel[:-1] if rel[-1] == "__init__" else rel)
        graph[name] = _fmedu_imports(path)
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt) :] + [node, nxt]))
            if nxt in graph and not state.get(nxt):
                visit(nxt, path + [node])
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node, [])


def test_no_test_imports_the_presentation_layer():
    offenders = [
        p.name for p in (ROOT / "tests").glob("*.py") if any(m.startswith("fmedu.figures") for m in _fmedu_imports(p))
    ]
    assert offenders == []


def test_the_project_stands_on_its_own():
    """No pointer to files a user who clones the project does not have."""
    sources = [*(ROOT / "fmedu").rglob("*.py"), *(ROOT / "notebooks").glob("*.py"), ROOT / "README.md"]
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in sources
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"design\.md|\.\./shared", line)
    ]
    assert offenders == []


def test_pooch_pinned_exactly_in_both_environments():
    """The download library is pinned exactly, the same in pyproject.toml and environment.yml."""
    deps = _pyproject()["project"]["dependencies"]
    pins = [d for d in deps if d.startswith("pooch")]
    assert len(pins) == 1 and re.fullmatch(r"pooch==\d+\.\d+\.\d+", pins[0])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pins[0] in pip


def test_numba_cache_goes_to_the_user_cache_not_the_source_tree(tmp_path):
    """Defect 13: the first experiment wrote numba's cache (*.nbi, *.nbc) into the installed
    package. A fresh process with an empty user cache compiles one kernel: its cache files land
    in $XDG_CACHE_HOME/fmedu/numba and nothing in the package changes; a NUMBA_CACHE_DIR the
    user set is kept."""
    package = ROOT / "fmedu"

    def cache_files(folder):
        return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.suffix in (".nbi", ".nbc")}

    before = cache_files(package)
    code = (
        "import numba, fmedu.engine as e; "
        "print(e.newton_z(0.1, 0.2, 0.3, 3, 0.05, 1.0) > 0); print(numba.config.CACHE_DIR)"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", str(tmp_path / "xdg" / "fmedu" / "numba")]
    assert any(p.name.startswith("scalar.newton_z") for p in cache_files(tmp_path / "xdg"))
    assert cache_files(package) == before
    # the user's choice wins
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")
    code = "import numba, fmedu; print(numba.config.CACHE_DIR)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert out.stdout.split() == [str(tmp_path / "mine")]
