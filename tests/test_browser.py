"""The course in a real browser: every notebook opened in JupyterLab, every page of the static book.

A headless Chromium (the system's, driven by Playwright) checks what a reader sees: math
typeset (MathJax elements present, no raw `$` or `\\(` left, no TeX errors), no error output,
every figure loaded, worked solutions collapsed until clicked, and the previous / next links
resolving to pages that exist. Requests to any host other than this machine are blocked and
counted, so the pages are shown to render offline. A screenshot of every page is written to
build/browser/ for a person to look at, and a table of what was counted to
build/browser/report.md.

Without a Chromium the tests skip with a message saying how to install one; with
FMEDU_REQUIRE_BROWSER=1 (set by CI) they fail instead, so that CI never skips them silently.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTION_FIRST_LINE = "# Worked solution (expand the cell to read it)."
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
INDEX = ROOT / "notebooks" / "00_index.ipynb"
CHAPTERS = [p for p in NOTEBOOKS if p != INDEX]
OUT = ROOT / "build" / "browser"
BOOK = ROOT / "build" / "book"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
WAIT_MS = 120_000  # the longest any single wait may take (2 shared cores, cold caches)


# --- what each notebook should show, read from the committed .ipynb ---------------------------


def _markdown_links(text: str) -> list[str]:
    """Targets of the relative links in a markdown cell (not images, not web addresses)."""
    targets = re.findall(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)\)", text)
    return [t for t in targets if not re.match(r"[a-z]+:|#|/", t)]


def _first_line(output: dict) -> str:
    text = output.get("text") or output.get("data", {}).get("text/plain", "")
    lines = ("".join(text) if isinstance(text, list) else text).strip().splitlines()
    return lines[0] if lines else ""


@functools.cache
def expected(path: Path) -> dict:
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    markdown = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    no_code = [re.sub(r"```.*?```|`[^`]*`", "", m, flags=re.S) for m in markdown]
    outputs = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]
    images = sum(1 for o in outputs if {"image/png", "image/jpeg", "image/gif"} & set(o.get("data", {})))
    images += sum(len(re.findall(r"!\[[^\]]*\]\([^)]+\)|<img\s", m)) for m in markdown)
    solutions = [i for i, c in enumerate(cells) if "solution" in c.get("metadata", {}).get("tags", [])]
    first = cells[solutions[0]] if solutions else None
    first_output = next((_first_line(o) for o in first.get("outputs", []) if _first_line(o)), "") if first else ""
    return {
        "cells": len(cells),
        "markdown": len(markdown),
        "math": any("$" in m for m in no_code) or any("text/latex" in o.get("data", {}) for o in outputs),
        "images": images,
        "solutions": solutions,
        # the first line after the neutral opening line: what only an opened solution shows
        "solution_source": "".join(first["source"]).strip().splitlines()[1] if first else "",
        "solution_output": first_output,
        "links": sorted({t for m in markdown for t in _markdown_links(m)}),
    }


def _exercise_solutions(path: Path) -> list[tuple[str, list[int]]]:
    """Each exercise heading with the indices of the code cells directly below it (its solution)."""
    cells = json.loads(path.read_text())["cells"]
    found = []
    for i, cell in enumerate(cells):
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and re.search(r"^###\s+Exercise\b", source, flags=re.M):
            below = []
            for j in range(i + 1, len(cells)):
                if cells[j]["cell_type"] != "code":
                    break
                below.append(j)
            found.append((source.strip().splitlines()[0], below))
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_solutions_are_marked_to_collapse(notebook):
    """A worked solution collapses in JupyterLab (jupyter metadata) and in the book (hide-cell tag)."""
    cells = json.loads(notebook.read_text())["cells"]
    for heading, below in _exercise_solutions(notebook):
        assert below, f"{notebook.name}: {heading!r} has no solution code cell directly below it"
        if "your turn" in heading:
            # the reader's own function (collapsed: it holds the reference answer), then its check
            meta = cells[below[0]].get("metadata", {})
            assert "your-turn" in meta.get("tags", []), f"{notebook.name} cell {below[0]}: tags {meta}"
            assert meta.get("jupyter", {}).get("source_hidden"), f"{notebook.name} cell {below[0]}: {meta}"
            assert "NotImplementedError" in meta.get("fmedu", {}).get("stub", ""), f"{notebook.name}: no stub"
            check = "".join(cells[below[-1]]["source"])
            assert re.search(r"\.check\(my_\w+\)\.correct\s*$", check), f"{notebook.name}: {heading!r} ends unchecked"
            continue
        for j in below:
            meta = cells[j].get("metadata", {})
            assert {"solution", "hide-cell"} <= set(meta.get("tags", [])), f"{notebook.name} cell {j}: tags {meta}"
            # a collapsed cell still shows its first line in JupyterLab: it must not give the answer away
            first_line = "".join(cells[j]["source"]).splitlines()[0]
            assert first_line == SOLUTION_FIRST_LINE, f"{notebook.name} cell {j} opens with {first_line!r}"
            hidden = meta.get("jupyter", {})
            assert hidden.get("source_hidden") and hidden.get("outputs_hidden"), f"{notebook.name} cell {j}: {meta}"


def _book_pages() -> list[tuple[str, Path | None]]:
    """The book's pages in reading order: (page path in the build, source notebook or None)."""
    root = [("notebooks/00_index.html", INDEX)] if INDEX.exists() else [("book/index.html", None)]
    return root + [(f"notebooks/{p.stem}.html", p) for p in CHAPTERS] + [("README.html", None)]


# --- browser, servers ---------------------------------------------------------------------------


def _chromium() -> str | None:
    for candidate in (os.environ.get("FMEDU_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def _unavailable(why: str):
    if os.environ.get("FMEDU_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser test required (FMEDU_REQUIRE_BROWSER=1) but {why}", pytrace=False)
    pytest.skip(f"browser test skipped: {why}")


@pytest.fixture(scope="module")
def chromium():
    executable = _chromium()
    if executable is None:
        _unavailable(
            "no Chromium found (install it with `apt-get install -y chromium`, or point FMEDU_CHROMIUM at one)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install -e '.[browser]'; `make test-browser` does it)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


class Offline:
    """A browser context that lets through requests to this machine only, and records the rest."""

    def __init__(self, browser, base: str):
        self.blocked: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        self.context.set_default_timeout(WAIT_MS)
        self.context.route("**/*", self._route)
        self.base = base

    def _route(self, route):
        url = route.request.url
        host = urllib.parse.urlsplit(url).hostname
        if url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def close(self):
        self.context.close()


@pytest.fixture(scope="module")
def report(request):
    """Collects one row per page; writes build/browser/report.md and prints it at the end."""
    rows: list[dict] = []
    yield rows
    if not rows:
        return
    keys = ["view", "page", "math", "figures", "solutions", "links", "blocked", "seconds", "screenshot"]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.md").write_text("\n".join(lines) + "\n")
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if terminal is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            _print_report(terminal, lines)


def _print_report(terminal, lines: list[str]):
    terminal.write_line("")
    terminal.write_line(
        "pages checked in Chromium (math: typeset math elements outside the collapsed solutions;"
        " figures: images loaded; solutions: collapsed solution cells; links: local links checked)"
    )
    for line in lines:
        terminal.write_line(line)


def _screenshot(page, name: str) -> str:
    path = OUT / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), animations="disabled")
    return str(path.relative_to(ROOT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the static book ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def book(chromium):
    """Builds the book from the committed notebooks (no execution, warnings are errors) and serves it."""
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "-q", "-c", "book"]
    cmd += ["-d", str(BOOK / "doctrees"), ".", str(BOOK / "html")]
    try:
        import myst_nb  # noqa: F401
    except ImportError:
        _unavailable("the book extra is not installed (pip install -e '.[book]'; `make test-browser` does it)")
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"`make book` failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    handler = functools.partial(_QuietHandler, directory=str(BOOK / "html"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


# Runs in the page: counts what a reader sees in the book's article.
_BOOK_STATE = r"""
() => {
  const article = document.querySelector('article.bd-article');
  const visible = (el) => !!el && el.checkVisibility({visibilityProperty: true});
  const prose = article.cloneNode(true);
  prose.querySelectorAll('pre, code, mjx-container, script, style, .cell_input').forEach((el) => el.remove());
  const text = prose.textContent;
  const raw = text.match(/.{0,40}(\$|\\\(|\\\[|\\begin\{).{0,40}/s);
  const solutions = [...article.querySelectorAll('.cell.tag_solution')].map((cell) => {
    const details = cell.querySelector('details');
    return {toggle: !!details, open: details ? details.open : true,
            hidden: !visible(cell.querySelector('.cell_input')) && !visible(cell.querySelector('.cell_output'))};
  });
  return {
    // math outside the worked solutions (JupyterLab typesets a collapsed output only when it is shown)
    math: [...article.querySelectorAll('mjx-container')].filter((m) => !m.closest('.tag_solution')).length,
    untypeset: [...article.querySelectorAll('.math')].filter((m) => !m.querySelector('mjx-container')).length,
    merror: [...article.querySelectorAll('mjx-merror')].map((e) => e.getAttribute('data-mjx-error')),
    raw: raw ? raw[0] : null,
    images: [...article.querySelectorAll('img')].map(
      (i) => ({src: i.currentSrc.slice(-60), ok: i.complete && i.naturalWidth > 0})),
    errors: article.querySelectorAll(
      '.output.stderr, .output.traceback, .output.error, .system-message, .problematic').length,
    solutions,
    hrefs: [...article.querySelectorAll('a[href]')].map((a) => a.href),
    prev: document.querySelector('.prev-next-area a.left-prev')?.href ?? null,
    next: document.querySelector('.prev-next-area a.right-next')?.href ?? null,
  };
}
"""


def _wait_for_mathjax(page):
    """Pages with math load MathJax; wait until it has typeset the page (pages without math have none)."""
    if not page.locator("script[src*='mathjax/']").count():
        return
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=WAIT_MS)
    page.evaluate("() => MathJax.startup.promise")


def test_book_landing_page_and_reading_order(chromium, book, report):
    """`index.html` opens the course index; the sidebar lists the chapters in reading order."""
    offline = Offline(chromium, book)
    try:
        page = offline.context.new_page()
        page.goto(f"{book}/index.html")
        first = _book_pages()[0][0]
        page.wait_for_url(f"{book}/{first}", timeout=WAIT_MS)
        nav = page.eval_on_selector_all("nav.bd-docs-nav a.reference.internal", "els => els.map(a => a.href)")
        wanted = [f"{book}/{p}" for p, _ in _book_pages()[1:]]
        assert [h for h in nav if h in wanted] == wanted, f"sidebar order {nav} is not the reading order {wanted}"
        assert offline.blocked == [], f"requests left this machine: {offline.blocked}"
    finally:
        offline.close()


@pytest.mark.parametrize("position", range(len(_book_pages())), ids=[p for p, _ in _book_pages()])
def test_book_page(chromium, book, report, position):
    pages = _book_pages()
    name, source = pages[position]
    want = expected(source) if source else None
    offline = Offline(chromium, book)
    start = time.monotonic()
    try:
        page = offline.context.new_page()
        response = page.goto(f"{book}/{name}")
        assert response is not None and response.ok, f"{name} not served"
        _wait_for_mathjax(page)
        state = page.evaluate(_BOOK_STATE)
        shot = _screenshot(page, f"book/{Path(name).stem}")

        assert state["merror"] == [], f"{name}: TeX errors {state['merror']}"
        assert state["untypeset"] == 0, f"{name}: {state['untypeset']} math elements were not typeset"
        assert state["raw"] is None, f"{name}: raw math left in the text: {state['raw']!r}"
        if want and want["math"]:
            assert state["math"] > 0, f"{name}: the notebook has math but none was typeset"
        assert state["errors"] == 0, f"{name}: {state['errors']} error outputs or build problems shown"
        broken = [i["src"] for i in state["images"] if not i["ok"]]
        assert broken == [], f"{name}: figures not loaded: {broken}"
        if want:
            assert len(state["images"]) == want["images"], (
                f"{name}: {len(state['images'])} images, notebook has {want['images']}"
            )

        # solutions: one collapsed toggle per solution cell, opened by a click
        if want:
            assert len(state["solutions"]) == len(want["solutions"]), f"{name}: solution cells missing from the page"
        for k, s in enumerate(state["solutions"]):
            assert s["toggle"] and not s["open"] and s["hidden"], f"{name}: solution {k + 1} is not collapsed: {s}"
        if state["solutions"]:
            summary = page.locator("article.bd-article .cell.tag_solution details > summary").first
            summary.scroll_into_view_if_needed()
            summary.click()
            cell = page.locator("article.bd-article .cell.tag_solution").first
            cell.locator(".cell_input").wait_for(state="visible", timeout=WAIT_MS)
            assert want["solution_source"] in cell.locator(".cell_input").inner_text()
            if want["solution_output"]:
                assert want["solution_output"] in cell.locator(".cell_output").inner_text()
            _screenshot(page, f"book/{Path(name).stem}-solution")

        # links: previous / next in reading order, every local link served, no .ipynb left
        here = f"{book}/{name}"
        prev = f"{book}/{pages[position - 1][0]}" if position > 0 else None
        nxt = f"{book}/{pages[position + 1][0]}" if position + 1 < len(pages) else None
        assert state["prev"] == prev and state["next"] == nxt, f"{name}: prev/next {state['prev']}, {state['next']}"
        local = sorted({h for h in state["hrefs"] if h.startswith(book) and h.split("#")[0] != here})
        unresolved = [h for h in local if h.split("#")[0].endswith((".ipynb", ".md"))]
        assert unresolved == [], f"{name}: links not resolved to pages: {unresolved}"
        for href in local:
            url, _, anchor = href.partition("#")
            body = page.request.get(url)
            assert body.ok, f"{name}: link {href} gives {body.status}"
            if anchor:
                assert f'id="{anchor}"' in body.text(), f"{name}: link {href} names no anchor on its page"
        if want:
            for target in want["links"]:
                page_of = Path(urllib.parse.urlsplit(target).path).with_suffix(".html").name
                assert page_of == Path(name).name or any(h.split("#")[0].endswith("/" + page_of) for h in local), (
                    f"{name}: link {target} lost"
                )
        assert offline.blocked == [], f"{name}: requests left this machine: {offline.blocked}"
        report.append(
            {
                "view": "book",
                "page": name,
                "math": state["math"],
                "figures": len(state["images"]),
                "solutions": len(state["solutions"]),
                "links": len(local),
                "blocked": len(offline.blocked),
                "seconds": f"{time.monotonic() - start:.1f}",
                "screenshot": shot,
            }
        )
    finally:
        offline.close()


# --- JupyterLab ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab(chromium):
    """A JupyterLab server on the repository, with its own settings, no token leak, nothing remote."""
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        _unavailable("JupyterLab is not installed (pip install -e '.[lab]'; `make test-browser` does it)")
    tmp = Path(tempfile.mkdtemp(prefix="fmedu-lab-"))
    settings = tmp / "settings" / "@jupyterlab"
    overrides = {
        # attach every cell to the page so that every cell can be checked
        "notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    }
    for name, value in overrides.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(value))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}"]
    cmd += [f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}", "--LabApp.news_url="]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(tmp / "lab.log", "w")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    api = _LabApi(base, token)
    try:
        deadline = time.monotonic() + WAIT_MS / 1000
        while not api.up():
            assert server.poll() is None, f"JupyterLab exited: {(tmp / 'lab.log').read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"JupyterLab did not start: {(tmp / 'lab.log').read_text()[-3000:]}"
            time.sleep(0.5)
        yield base, token, api
    finally:
        with contextlib.suppress(OSError, urllib.error.URLError):
            api.call("POST", "/api/shutdown")
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


class _LabApi:
    def __init__(self, base: str, token: str):
        self.base, self.token = base, token

    def call(self, method: str, path: str):
        request = urllib.request.Request(f"{self.base}{path}", method=method)
        request.add_header("Authorization", f"token {self.token}")
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            return response.status, json.loads(body) if body else None

    def up(self) -> bool:
        try:
            return self.call("GET", "/api/status")[0] == 200
        except (OSError, urllib.error.URLError):
            return False

    def exists(self, path: str) -> bool:
        try:
            return self.call("GET", "/api/contents/" + urllib.parse.quote(path) + "?content=0")[0] == 200
        except urllib.error.HTTPError:
            return False

    def stop_kernels(self):
        """Opening a notebook starts its kernel; nothing is run in it, so stop it after each page."""
        for session in self.call("GET", "/api/sessions")[1]:
            with contextlib.suppress(urllib.error.HTTPError):
                self.call("DELETE", f"/api/sessions/{session['id']}")


_LAB_PANEL = "#jp-main-dock-panel .jp-NotebookPanel:not(.lm-mod-hidden)"

# Runs in the page: -1 while cells are missing, unrendered or hold raw math, else the number of
# typeset math elements (the caller waits until that number stops changing).
_LAB_READY = r"""
([panelSel, cells, wantMath]) => {
  const panel = document.querySelector(panelSel);
  if (!panel || panel.querySelectorAll('.jp-Notebook .jp-Cell').length !== cells) return -1;
  const markdown = [...panel.querySelectorAll('.jp-MarkdownCell')];
  const rendered = (c) => c.classList.contains('jp-mod-rendered')
    && c.querySelector('.jp-RenderedMarkdown')?.textContent.trim();
  if (!markdown.every(rendered)) return -1;
  const math = panel.querySelectorAll('mjx-container').length;
  if (wantMath && !math) return -1;
  const raw = [...panel.querySelectorAll('.jp-RenderedMarkdown, .jp-RenderedLatex')].some((el) => {
    const c = el.cloneNode(true);
    c.querySelectorAll('pre, code, mjx-container').forEach((x) => x.remove());
    return /\$|\\\(|\\\[/.test(c.textContent);
  });
  return raw ? -1 : math;
}
"""


def _wait_for_lab_render(page, want: dict):
    """Until every cell is rendered and typeset: the math count is settled over 2 s, or WAIT_MS passes."""
    deadline, last, settled = time.monotonic() + WAIT_MS / 1000, None, 0
    while time.monotonic() < deadline:
        count = page.evaluate(_LAB_READY, [_LAB_PANEL, want["cells"], want["math"]])
        settled = settled + 1 if count >= 0 and count == last else 0
        if settled >= 4:
            return
        last = count
        page.wait_for_timeout(500)
    raise TimeoutError(f"not rendered after {WAIT_MS / 1000:.0f} s (last math count {last})")


_LAB_STATE = r"""
([panelSel, solutionCells]) => {
  const panel = document.querySelector(panelSel);
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-Cell')];
  const visible = (el) => !!el && el.checkVisibility({visibilityProperty: true});
  let raw = null;
  for (const el of panel.querySelectorAll('.jp-RenderedMarkdown, .jp-RenderedLatex')) {
    const c = el.cloneNode(true);
    c.querySelectorAll('pre, code, mjx-container').forEach((x) => x.remove());
    const m = c.textContent.match(/.{0,40}(\$|\\\(|\\\[|\\begin\{).{0,40}/s);
    if (m) { raw = m[0]; break; }
  }
  return {
    math: cells.filter((c, i) => !solutionCells.includes(i)).reduce(
      (n, c) => n + c.querySelectorAll('mjx-container').length, 0),
    merror: [...panel.querySelectorAll('mjx-merror')].map((e) => e.getAttribute('data-mjx-error')),
    untypeset: [...panel.querySelectorAll('.jp-RenderedLatex')].filter(
      (el) => !el.querySelector('mjx-container')).length,
    raw,
    images: [...panel.querySelectorAll('.jp-Notebook img')].map(
      (i) => ({ok: i.complete && i.naturalWidth > 0, src: i.src.slice(0, 40)})),
    errors: panel.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').length,
    solutions: solutionCells.map((i) => ({
      placeholder: visible(cells[i].querySelector('.jp-InputPlaceholder')),
      input: visible(cells[i].querySelector('.jp-InputArea')),
      output: visible(cells[i].querySelector('.jp-OutputArea')),
    })),
    hrefs: [...panel.querySelectorAll('.jp-RenderedMarkdown a[href]')].map((a) => a.href),
  };
}
"""


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_lab_notebook(chromium, lab, report, notebook):
    base, token, api = lab
    want = expected(notebook)
    rel = notebook.relative_to(ROOT).as_posix()
    offline = Offline(chromium, base)
    start = time.monotonic()
    try:
        page = offline.context.new_page()
        page.goto(f"{base}/lab/tree/{rel}?reset&token={token}")
        try:
            _wait_for_lab_render(page, want)
        except Exception as exc:
            shot = _screenshot(page, f"lab/{notebook.stem}-timeout")
            with contextlib.suppress(Exception):
                state = page.evaluate(_LAB_STATE, [_LAB_PANEL, []])
                shot += f"; {state['math']} math elements, raw math left: {state['raw']!r}"
            raise AssertionError(f"{rel} did not finish rendering in JupyterLab (see {shot})") from exc
        state = page.evaluate(_LAB_STATE, [_LAB_PANEL, want["solutions"]])
        shot = _screenshot(page, f"lab/{notebook.stem}")

        assert state["merror"] == [], f"{rel}: TeX errors {state['merror']}"
        assert state["untypeset"] == 0, f"{rel}: {state['untypeset']} LaTeX outputs not typeset"
        assert state["raw"] is None, f"{rel}: raw math left in the text: {state['raw']!r}"
        if want["math"]:
            assert state["math"] > 0, f"{rel}: the notebook has math but none was typeset"
        assert state["errors"] == 0, f"{rel}: {state['errors']} error outputs shown"
        broken = [i["src"] for i in state["images"] if not i["ok"]]
        assert broken == [], f"{rel}: figures not loaded: {broken}"
        assert len(state["images"]) == want["images"], (
            f"{rel}: {len(state['images'])} images, notebook has {want['images']}"
        )

        # solutions: source and output both collapsed; a click on the placeholder shows the source
        for k, s in enumerate(state["solutions"]):
            assert s["placeholder"] and not s["input"] and not s["output"], (
                f"{rel}: solution {k + 1} not collapsed: {s}"
            )
        if want["solutions"]:
            cell = page.locator(f"{_LAB_PANEL} .jp-Notebook .jp-Cell").nth(want["solutions"][0])
            cell.locator(".jp-InputPlaceholder").click()
            cell.locator(".jp-InputArea").wait_for(state="visible", timeout=WAIT_MS)
            assert want["solution_source"] in cell.locator(".jp-InputArea").inner_text()
            if want["solution_output"]:
                if cell.locator(".jp-OutputPlaceholder").is_visible():
                    cell.locator(".jp-OutputPlaceholder").click()
                cell.locator(".jp-OutputArea").wait_for(state="visible", timeout=WAIT_MS)
                assert want["solution_output"] in cell.locator(".jp-OutputArea").inner_text()
            _screenshot(page, f"lab/{notebook.stem}-solution")

        # links: every relative link names a file the server has, and "Next" opens it in the lab
        folder = notebook.parent.relative_to(ROOT)
        for target in want["links"]:
            path = os.path.normpath(folder / urllib.parse.unquote(target.split("#")[0])).replace(os.sep, "/")
            assert not path.startswith(".."), f"{rel}: link {target} leaves the repository"
            assert api.exists(path), f"{rel}: link {target} names {path}, which does not exist"
            assert any(f"/{urllib.parse.quote(path)}" in h for h in state["hrefs"]), (
                f"{rel}: link {target} not rendered"
            )
        next_link = page.locator(f"{_LAB_PANEL} .jp-RenderedMarkdown a", has_text=re.compile(r"^\s*Next"))
        if next_link.count():
            target = Path(urllib.parse.urlsplit(next_link.first.get_attribute("href")).path).name
            next_link.first.scroll_into_view_if_needed()
            next_link.first.click()
            tab = "#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel"
            page.wait_for_function(
                "([sel, name]) => document.querySelector(sel)?.textContent === name", arg=[tab, target], timeout=WAIT_MS
            )
        assert offline.blocked == [], f"{rel}: requests left this machine: {offline.blocked}"
        report.append(
            {
                "view": "lab",
                "page": rel,
                "math": state["math"],
                "figures": len(state["images"]),
                "solutions": len(state["solutions"]),
                "links": len(want["links"]),
                "blocked": len(offline.blocked),
                "seconds": f"{time.monotonic() - start:.1f}",
                "screenshot": shot,
            }
        )
    finally:
        offline.close()
        api.stop_kernels()


def test_lab_and_book_show_the_same(report):
    """Both views typeset the same math and show the same figures, notebook by notebook."""
    book = {Path(r["page"]).stem: r for r in report if r["view"] == "book"}
    lab = {Path(r["page"]).stem: r for r in report if r["view"] == "lab"}
    both = sorted(book.keys() & lab.keys())
    if not both:
        pytest.skip("no page was checked in both JupyterLab and the book in this run")
    for name in both:
        for key in ("math", "figures", "solutions"):
            assert lab[name][key] == book[name][key], (
                f"{name}: {key} {lab[name][key]} in JupyterLab, {book[name][key]} in the book"
            )
