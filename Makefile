# The two set-up commands: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: demo test test-3.13 lint typecheck importlint unit bench soak clean browser dvc-venv tools

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) install -q -e '.[matplotlib]'
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(PIP) install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/run_demo.sh

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy
	cd examples/ml && $(CURDIR)/$(BIN)/mypy --strict pipeline.py mlkit

importlint: $(VENV)/.installed-dev
	$(BIN)/lint-imports

PYTEST_ARGS ?=

# Headless Chromium for the HTML page tests (Debian's `chromium`), installed only when missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium; }

# DVC, for the migration tests and benchmarks, in its own venv (never a Pivot dependency); the
# tests find it here or through PIVOT_DVC. benchmarks/run.sh makes the same venv.
DVC_VENV := benchmarks/.venv-dvc

$(DVC_VENV)/bin/dvc:
	python3 -m venv $(DVC_VENV)
	$(DVC_VENV)/bin/python -m pip install -q --upgrade pip
	$(DVC_VENV)/bin/python -m pip install -q dvc

dvc-venv: $(DVC_VENV)/bin/dvc

# tmux for the terminal-display tests, installed only when missing.
tools:
	@command -v tmux >/dev/null 2>&1 || { \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq tmux; }

unit: $(VENV)/.installed-dev browser dvc-venv tools
	PIVOT_DVC="$(CURDIR)/$(DVC_VENV)/bin/dvc" $(BIN)/python -m pytest -n auto -q $(PYTEST_ARGS)

# The unit tests again on Python 3.13 when this machine has it (pyenv), in its own venv.
test-3.13:
	@py="$$(pyenv prefix 3.13.0 2>/dev/null)/bin/python3"; \
	if [ "$$py" != "/bin/python3" ] && [ -x "$$py" ]; then \
		$(MAKE) --no-print-directory unit VENV=.venv313 PYTHON="$$py" PYTEST_ARGS=tests/unit; \
	else echo "no Python 3.13 here (pyenv prefix 3.13.0): the 3.13 run is skipped"; fi

test: lint typecheck importlint unit test-3.13

bench:
	bash benchmarks/run.sh

# Long fault injection (kills and Ctrl-C at hundreds of points) and concurrency trials.
SOAK_TRIALS ?= 200
soak: $(VENV)/.installed-dev
	$(BIN)/python -m tests.e2e.soak $(SOAK_TRIALS)
	PIVOT_SOAK=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e/test_concurrency.py

clean:
	rm -rf $(VENV) .venv313 .pytest_cache .mypy_cache .ruff_cache build
