# fmedu: every target sets itself up in a local .venv on a fresh clone.
#   make figures    regenerate every figure in figures/ (the main job)
#   make test       lint and types, then pytest over tests/ plus nbval (strict) over notebooks/
#                   (the GPU kernels run in numba-cuda's simulator: no GPU needed)
#   make test-gpu   on a machine with an NVIDIA GPU: the GPU tests on the GPU (they fail, naming
#                   the driver's problem, when it cannot run them), then the smoke preset with
#                   --device cuda (results in $(GPU_OUT))
#   make gpu-run    on a GPU: make test-gpu's steps, then stability-full on the GPU and its
#                   agreement table against the committed CPU rows (tests/gpu_run.sh)
#   make test-pythons  the package installed into fresh Python 3.12 and 3.13 environments
#                   (pyenv's, or PYTHONS="..."), a fast subset of the tests run in each
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

# make test-pythons: the newest 3.12 and 3.13 of pyenv by default; the environments go to PYTHONS_OUT.
# torch comes from the package registry there (the local CPU wheel is for 3.11): its default
# Linux build, several GB (Python 3.12.1 on the 2-core machine, busy: 753 s and 5.6 GB to install,
# 620 s for the subset), so CI does not run this target.
PYENV_ROOT ?= $(HOME)/.pyenv
PYTHONS ?= $(foreach v,3.12 3.13,$(lastword $(sort $(wildcard $(PYENV_ROOT)/versions/$(v).*/bin/python))))
PYTHONS_OUT ?= /tmp/fmedu-pythons
FAST_TESTS ?= tests/test_model.py tests/test_engine.py tests/test_engine_cache.py tests/test_engine_cuda.py

.PHONY: setup figures test test-gpu gpu-run test-pythons test-browser lint notebooks lab book clean student

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

gpu-run: $(STAMP)
	PYTHON=$(abspath $(PY)) bash tests/gpu_run.sh

# Each interpreter gets a fresh environment with the package installed (not editable) and its
# test extra; the tests run from tests/ against the installed copy (pytest's own script, so the
# source tree is not on the path).
test-pythons:
	@test -n "$(strip $(PYTHONS))" || { echo "no Python 3.12 or 3.13 under $(PYENV_ROOT)/versions; name them: make test-pythons PYTHONS='/path/to/python3.12 /path/to/python3.13'"; exit 2; }
	set -e; for py in $(PYTHONS); do \
		version=$$($$py -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])'); \
		env=$(PYTHONS_OUT)/py$$version; rm -rf $$env; $$py -m venv $$env; \
		start=$$(date +%s); \
		$$env/bin/python -m pip install --quiet --upgrade pip; \
		$$env/bin/python -m pip install --quiet '.[test]'; \
		echo "python $$version: installed in $$(( $$(date +%s) - start )) s, $$(du -sh $$env | cut -f1)"; \
		(cd tests && $$env/bin/python -c 'import fmedu, sys; print("fmedu from", fmedu.__file__, "on", sys.version.split()[0])'); \
		$$env/bin/pytest $(FAST_TESTS) -p no:cacheprovider -q; \
	done

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
