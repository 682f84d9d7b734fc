"""Sphinx configuration of the static course book (`make book`).

The book is built from the committed, executed notebooks (never re-executed) with MyST-NB and
the book theme. The source directory is the repository root, so that the notebooks' relative
links (`02_gradient.ipynb`, `../README.md#notation`) resolve to the built pages; only the
course index, the chapters and the README are read. Math is typeset by a copy of MathJax taken
from an installed package and shipped inside the build: the book needs no network.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from docutils import nodes
from sphinx import addnodes

ROOT = Path(__file__).resolve().parents[1]
BOOK = Path(__file__).resolve().parent
NOTEBOOKS = ROOT / "notebooks"
INDEX = "notebooks/00_index"

# The chapters in reading order: notebooks/NN_topic.ipynb, NN >= 01.
CHAPTERS = [f"notebooks/{p.stem}" for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) if not p.name.startswith("00")]
HAS_INDEX = (NOTEBOOKS / "00_index.ipynb").exists()

project = "fmedu: factorization machines, derived and checked"
author = "the fmedu authors"
copyright = "the fmedu authors"
extensions = ["myst_nb"]

# --- sources: the course index, the chapters and the README; nothing else -------------------
root_doc = INDEX if HAS_INDEX else "book/index"
include_patterns = ["README.md", "notebooks/[0-9][0-9]_*.ipynb"] + ([] if HAS_INDEX else ["book/index.md"])
exclude_patterns = [".venv", ".git", "build", "**/.ipynb_checkpoints", "fmedu", "tests", "results", "figures"]

# --- notebooks: stored outputs only -------------------------------------------------------
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3  # `../README.md#notation` resolves to the README's "Notation" section
myst_dmath_double_inline = True
suppress_warnings = ["mystnb.unknown_mime_type"]

# --- math: MathJax 3 from the installed package, copied into the build ----------------------
_MATHJAX_COPY = ROOT / "build" / "book" / "mathjax-static"


def _vendor_mathjax() -> Path:
    """Copy the parts of MathJax the pages load: the TeX-to-CHTML bundle with every TeX package
    (as JupyterLab has, so that both views accept the same LaTeX), its fonts, menu and a11y."""
    import mathjax  # the django-static-mathjax distribution: MathJax 3 as static files

    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (es5 / "tex-chtml-full.js").exists():
        raise RuntimeError(f"MathJax not found at {es5}: install the book extra (pip install -e '.[book]')")
    target = _MATHJAX_COPY / "mathjax"
    bundles = {p.name for p in es5.glob("*.js")} - {"tex-chtml-full.js"}
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(es5, target, ignore=lambda d, names: [n for n in names if Path(d) == es5 and n in bundles])
    return _MATHJAX_COPY


html_static_path = [str(_vendor_mathjax()), str(BOOK / "_static")]
mathjax_path = "mathjax/tex-chtml-full.js"

# --- HTML: the book theme, no launch buttons, no remote assets -------------------------------
html_theme = "sphinx_book_theme"
html_title = "fmedu course"
html_css_files = ["fmedu-book.css"]
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "navigation_with_keys": False,
    "show_navbar_depth": 1,
}


def _add_reading_order(app, doctree):
    """Give the landing page a hidden toctree: the chapters in order, then the README.

    The course index is a notebook that also reads well in JupyterLab and on GitHub, so it
    carries no Sphinx directive; the navigation is added here instead, before Sphinx's own
    toctree collector reads the page (priority < 500).
    """
    if app.env.current_document.docname != root_doc:
        return
    section = next(iter(doctree.findall(nodes.section)), doctree)
    for caption, entries in (("Chapters", CHAPTERS), ("About the project", ["README"])):
        toc = addnodes.toctree(
            parent=root_doc,
            entries=[(None, e) for e in entries],
            includefiles=list(entries),
            maxdepth=1,
            caption=caption,
            rawcaption=caption,
            glob=False,
            hidden=True,
            includehidden=False,
            numbered=0,
            titlesonly=True,
        )
        section += nodes.compound("", toc, classes=["toctree-wrapper"])


def _label_solutions(app, doctree):
    """A collapsed solution cell says so on its toggle."""
    for node in doctree.findall(nodes.container):
        if node.get("nb_element") == "cell_code" and "tag_solution" in node.get("classes", []):
            node["prompt_show"] = "Show solution"
            node["prompt_hide"] = "Hide solution"


def _landing_redirect(app, exception):
    """`index.html` at the top of the build opens the course index."""
    if exception is None and app.builder.format == "html" and root_doc != "index":
        target = app.builder.get_target_uri(root_doc)
        (Path(app.outdir) / "index.html").write_text(
            f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html_title}</title>'
            f'<meta http-equiv="refresh" content="0; url={target}"></head>'
            f'<body><a href="{target}">Open the course</a></body></html>\n'
        )


def _tagged_math_unwrapped(app, doctree):
    """Display math with a hand-written ``\\tag{N.M}`` is passed to MathJax as ``\\[ … \\]``.

    Sphinx wraps every display formula in ``\\begin{split}``, where MathJax refuses ``\\tag``
    ("\\tag not allowed in split environment"); the chapters number their equations by hand,
    e.g. ``$$\\begin{aligned} … \\end{aligned}\\tag{1.3}$$``, as JupyterLab and GitHub render them.
    """
    for node in doctree.findall(nodes.math_block):
        text = node.astext()
        if "\\tag{" in text and not node.get("nowrap"):
            node["nowrap"] = True
            node.children = [nodes.Text("\\[" + text + "\\]")]


def setup(app):
    app.connect("doctree-read", _tagged_math_unwrapped)
    app.connect("doctree-read", _add_reading_order, priority=100)
    app.connect("doctree-read", _label_solutions)
    app.connect("build-finished", _landing_redirect)
