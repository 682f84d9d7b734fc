"""The engine's compiled kernels are cached on disk and invalidated by an edit to any source they
compile (numba alone checks a kernel's own file): the cache key, checked without compiling."""

import ast
import shutil
from pathlib import Path

import pytest

from fmedu.engine import cpu, jit

PACKAGE = Path(jit.__file__).resolve().parent.parent
KERNEL_FILES = ("engine/cpu.py", "engine/cuda.py")


def _copy_sources(root: Path) -> None:
    for name in (*KERNEL_FILES, *jit.COMPILED_SOURCES):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PACKAGE / name, root / name)


@pytest.mark.parametrize("kernel_file", KERNEL_FILES)
def test_an_edit_to_any_compiled_source_changes_the_cache_key(tmp_path, kernel_file):
    _copy_sources(tmp_path)
    before = jit.sources_digest(kernel_file, tmp_path)
    assert before == jit.sources_digest(kernel_file, PACKAGE)  # the copy is the package
    for name in (kernel_file, *jit.COMPILED_SOURCES):
        path = tmp_path / name
        text = path.read_bytes()
        path.write_bytes(text + b"# an edit\n")
        assert jit.sources_digest(kernel_file, tmp_path) != before, f"editing {name} keeps {kernel_file}'s cache"
        path.write_bytes(text)
    assert jit.sources_digest(kernel_file, tmp_path) == before


def test_the_cpu_kernels_are_stamped_with_the_digest():
    locator = cpu._epoch_kernel._cache._impl.locator
    assert isinstance(locator, cpu._EngineSourcesLocator)
    assert locator.get_source_stamp() == jit.sources_digest("engine/cpu.py")


def _fmedu_imports(path: Path) -> set[str]:
    """The package files (relative to fmedu/) that the module at ``path`` imports."""
    here = path.relative_to(PACKAGE).parent
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here
            for _ in range(node.level - 1):
                base = base.parent
            module = base / (node.module or "").replace(".", "/")
            for name in [module, *(module / alias.name for alias in node.names)]:
                if (PACKAGE / f"{name}.py").is_file():
                    found.add(f"{name.as_posix()}.py")
    return found


def test_every_source_the_kernels_import_is_in_the_key():
    """The kernels' files and the shared pieces import nothing of fmedu's outside the key
    (except the error class, which compiles to nothing)."""
    key = set(KERNEL_FILES) | set(jit.COMPILED_SOURCES)
    uncompiled = {"errors.py", "prox/bounds.py", "validation.py"}  # checks and messages, run in Python
    assert _fmedu_imports(PACKAGE / "engine/rules.py") >= {"prox/scalar.py", "engine/adam.py", "engine/jit.py"}
    for name in key:
        missing = _fmedu_imports(PACKAGE / name) - key - uncompiled
        assert not missing, f"{name} imports {missing}, which the cache key leaves out"
