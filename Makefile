# leadscore: targets in pipeline order. `make demo` and `make test` set up first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-from-lock
UV_VERSION := 0.13.9

.PHONY: setup bytecode demo pipeline serve test test-fast lint lint-imports typecheck imports-mirror lock clean

# Where PYTHONDONTWRITEBYTECODE=1 is set (many container images, these machines), Python
# never caches compiled modules and every process compiles all it imports (about half of
# the service's start). So the dependencies are installed with their bytecode, and the
# project's own folders are compiled before each command that runs them (quick when
# nothing changed).
OWN_CODE := leadscore synth identity features training serving segments live monitoring benchmarks marketing

## setup: create .venv and install the pinned lock file (compiled), then leadscore itself
setup: $(STAMP) bytecode

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --python $(BIN)/python --compile-bytecode -r requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q $(wildcard $(OWN_CODE))

## demo: the whole pipe on the default world, then the scoring service
demo: pipeline serve

pipeline: setup
	$(BIN)/leadscore pipeline

# `make demo PORT=3101` serves on another port than serving.port (config/leadscore.yaml); only
# a PORT given on make's command line counts (many environments export one of their own)
serve: setup
	$(BIN)/leadscore serve $(if $(filter command line,$(origin PORT)),--port $(PORT))

## test: the layers between the stages and the types, then every test suite, integration included (what CI runs)
# Two workers (pytest-xdist), a test file to each at a time (its module fixtures built once):
# half the suite's time waits on servers, browsers and subprocesses, so two cores keep busy.
# Each worker builds its own session world, Spark session and Redis; more workers cost that
# much more memory. `make test TEST_WORKERS=0` runs in one process.
TEST_WORKERS ?= 2
test: setup lint-imports typecheck
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

## lint-imports: the import contracts in pyproject.toml (which stage may import which)
# import-linter (and mypy) read a package from one folder, while the stages are top-level
# folders mapped into `leadscore` (pyproject's package-dir). So they read a mirror:
# build/imports/ holds a `leadscore` folder of links to leadscore/'s files and to each stage
# folder (mypy keeps its cache beside it, in build/imports/.mypy_cache).
IMPORTS_MIRROR := build/imports/leadscore
STAGES := synth identity features training serving segments live monitoring benchmarks marketing
imports-mirror: setup
	@rm -rf $(IMPORTS_MIRROR) && mkdir -p $(IMPORTS_MIRROR)
	@ln -s $(CURDIR)/leadscore/* $(IMPORTS_MIRROR)/
	@for stage in $(wildcard $(STAGES)); do ln -s $(CURDIR)/$$stage $(IMPORTS_MIRROR)/$$stage; done

lint-imports: imports-mirror
	cd build/imports && $(CURDIR)/$(BIN)/lint-imports --no-cache $(CURDIR)/pyproject.toml

## typecheck: mypy on the mirror, as pyproject.toml's [tool.mypy] says
typecheck: imports-mirror
	cd build/imports && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml -p leadscore

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
