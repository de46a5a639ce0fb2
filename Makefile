# `make demo` and `make test` work on a fresh machine with only Python 3.11+ and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO_DIR ?=

.PHONY: demo test lint typecheck unit install clean mlflow-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps re-run the install whenever pyproject.toml changes.
$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.demo-installed

# MLflow for the export tests, in a venv of its own: its pins clash with ours (docs/export.md).
MLFLOW_VENV ?= .venvs/mlflow
MLFLOW_REQUIREMENT := mlflow>=3,<4
$(MLFLOW_VENV)/.installed:
	$(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MLFLOW_VENV)/bin/python -m pip install --quiet '$(MLFLOW_REQUIREMENT)'
	echo '$(MLFLOW_REQUIREMENT)' > $@

mlflow-venv: $(MLFLOW_VENV)/.installed

install: $(VENV)/.dev-installed

demo: $(VENV)/.demo-installed
	$(BIN)/decisionloop demo $(DEMO_DIR)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

unit: $(VENV)/.dev-installed
	$(BIN)/pytest tests/unit -q

test: lint typecheck $(MLFLOW_VENV)/.installed
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
