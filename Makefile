# leadscore: targets in pipeline order. `make demo` and `make test` set up first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-from-lock
UV_VERSION := 0.13.9

.PHONY: setup demo pipeline serve test test-fast lint lock clean

## setup: create .venv and install the pinned lock file, then leadscore itself
setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

## demo: the whole pipe on the default world, then the scoring service
demo: pipeline serve

pipeline: setup
	$(BIN)/leadscore pipeline

serve: setup
	$(BIN)/leadscore serve

## test: every test suite, integration included (what CI runs)
test: setup
	$(BIN)/pytest

## test-fast: unit tests only
test-fast: setup
	$(BIN)/pytest -m "not integration and not slow"

lint: setup
	$(BIN)/ruff check .

## lock: re-resolve the pinned dependency set after editing pyproject.toml
lock: setup
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu -o requirements.lock

## clean: remove build output (generated world, middle layer, features, MLflow store)
clean:
	rm -rf data mlflow/mlflow.db mlflow/artifacts
