# fmedu: every target sets itself up in a local .venv on a fresh clone.
#   make figures    regenerate every figure in figures/ (the main job)
#   make test       lint and types, then pytest over tests/ plus nbval (strict) over notebooks/
#                   (the GPU kernels run in numba-cuda's simulator: no GPU needed)
#   make test-gpu   on a machine with an NVIDIA GPU: the GPU tests on the GPU, then the smoke
#                   preset with --device cuda (results in $(GPU_OUT))
#   make lint       ruff (lint and format check) and mypy on the package
#   make notebooks  re-execute the notebooks in place with the CI environment
#   make lab        open JupyterLab on the notebooks
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fmedu-installed
# Notebooks to re-execute (default: all); e.g. make notebooks NB=notebooks/01_rendle_reformulation.py
NB ?= $(wildcard notebooks/[0-9][0-9]_*.py)

# The CI environment: one thread, fixed hash seed, no progress bars.
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export FMEDU_THREADS := 1
export PYTHONHASHSEED := 0
export PYDEVD_DISABLE_FILE_VALIDATION := 1
export FMEDU_DATA ?= $(abspath ../shared/data/ml-100k)

GPU_OUT ?= /tmp/fmedu-gpu-smoke

.PHONY: setup figures test test-gpu lint notebooks lab clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

figures: $(STAMP)
	$(PY) -m fmedu figures --out figures

lint: $(STAMP)
	$(VENV)/bin/ruff check fmedu tests notebooks/*.py
	$(VENV)/bin/ruff format --check fmedu tests notebooks/*.py
	$(VENV)/bin/mypy

test: lint
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pytest tests notebooks --nbval \
		--nbval-sanitize-with notebooks/sanitize.cfg --nbval-cell-timeout=1200 -p no:cacheprovider

test-gpu: $(STAMP)
	FMEDU_GPU_TESTS=1 NUMBA_ENABLE_CUDASIM=0 $(PY) -m pytest tests/test_engine_cuda.py tests/test_cuda_ptx.py \
		tests/test_bench.py tests/test_adam.py -p no:cacheprovider -rs
	NUMBA_ENABLE_CUDASIM=0 $(PY) -m fmedu experiment smoke --device cuda --out $(GPU_OUT) --no-progress

notebooks: $(STAMP)
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m fmedu.notebook_tools execute $(NB)

lab: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,lab]'
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m jupyter lab notebooks

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
