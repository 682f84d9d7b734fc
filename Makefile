# fmedu: every target sets itself up in a local .venv on a fresh clone.
#   make figures    regenerate every figure in figures/ (the main job)
#   make test       lint and types, then pytest over tests/ plus nbval (strict) over notebooks/
#                   (the GPU kernels run in numba-cuda's simulator: no GPU needed)
#   make test-gpu   on a machine with an NVIDIA GPU: the GPU tests on the GPU, then the smoke
#                   preset with --device cuda (results in $(GPU_OUT))
#   make lint       ruff (lint and format check) and mypy on the package
#   make notebooks  re-execute the notebooks in place with the CI environment
#   make student    the student edition (no worked solutions, outputs cleared) in build/student/
#   make lab        open JupyterLab on the course index (notebooks/00_index.ipynb)
#   make book       build the static HTML course into build/book/html (no re-execution)
#   make test-browser  open every notebook in JupyterLab and every book page in headless Chromium
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fmedu-installed
# The extras for reading the course and checking it in a browser (lab, book, browser).
COURSE := $(VENV)/.fmedu-course-installed
BOOK_OUT := build/book/html
# JupyterLab opens the course index, or the notebooks folder until there is one.
LAB_OPEN := --LabApp.default_url=/lab/tree/notebooks$(if $(wildcard notebooks/00_index.ipynb),/00_index.ipynb,)
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
# More JupyterLab options, e.g. make lab LAB_ARGS="--port=8890 --no-browser"
LAB_ARGS ?=
# Notebooks to re-execute (default: all); e.g. make notebooks NB=notebooks/01_rendle_reformulation.py
NB ?= $(wildcard notebooks/[0-9][0-9]_*.py)

# The CI environment: one thread, fixed hash seed, no progress bars.
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export FMEDU_THREADS := 1
export PYTHONHASHSEED := 0
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# MovieLens: a local copy beside the project when there is one; otherwise fmedu downloads it
# once into the user cache (FMEDU_MOVIELENS_URL names a mirror), see README "Data".
ifneq ($(wildcard ../shared/data/ml-100k/u.data),)
export FMEDU_DATA ?= $(abspath ../shared/data/ml-100k)
endif

GPU_OUT ?= /tmp/fmedu-gpu-smoke

.PHONY: setup figures test test-gpu test-browser lint notebooks lab book clean student

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,peers]'
	touch $(STAMP)

$(COURSE): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,lab,book,browser]'
	touch $(COURSE)

setup: $(STAMP)

figures: $(STAMP)
	$(PY) -m fmedu figures --out figures

lint: $(STAMP)
	$(VENV)/bin/ruff check fmedu tests book notebooks/*.py
	$(VENV)/bin/ruff format --check fmedu tests book notebooks/*.py
	$(VENV)/bin/mypy

# The browser test (tests/test_browser.py) runs here too; it skips with a message when no
# Chromium is installed, except under CI (FMEDU_REQUIRE_BROWSER=1), where .ci/run installs one.
test: lint $(COURSE)
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pytest tests notebooks --nbval \
		--nbval-sanitize-with notebooks/sanitize.cfg --nbval-cell-timeout=1200 -p no:cacheprovider

test-gpu: $(STAMP)
	FMEDU_GPU_TESTS=1 NUMBA_ENABLE_CUDASIM=0 $(PY) -m pytest tests/test_engine_cuda.py tests/test_cuda_ptx.py \
		tests/test_bench.py tests/test_adam.py -p no:cacheprovider -rs
	NUMBA_ENABLE_CUDASIM=0 $(PY) -m fmedu experiment smoke --device cuda --out $(GPU_OUT) --no-progress

notebooks: $(STAMP)
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m fmedu.notebook_tools execute $(NB)

student: $(STAMP)
	$(PY) -m fmedu.student --out build/student

test-browser: $(COURSE)
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pytest tests/test_browser.py -p no:cacheprovider
	@echo "Screenshots: build/browser/ (report: build/browser/report.md)"

lab: $(COURSE)
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m jupyter lab $(LAB_ROOT) $(LAB_ARGS) $(LAB_OPEN)

# Built from the committed, executed notebooks; warnings (a broken link, say) are errors.
book: $(COURSE)
	$(PY) -m sphinx -b html -W -q -c book -d build/book/doctrees . $(BOOK_OUT)
	@echo "The book is in $(BOOK_OUT)/: open $(abspath $(BOOK_OUT))/index.html"

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build/book build/browser
