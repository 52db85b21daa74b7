# Two set-up commands: `make demo` and `make test`. Each bootstraps .venv itself.
PYTHON ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEPS_STAMP := $(VENV)/.deps-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint typecheck pytest chromium bench fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(DEPS_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[embedded,dev]'
	rm -f $(VENV)/.deps-*
	touch $@

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

demo: $(DEPS_STAMP)
	PYTHONPATH=. $(BIN)/uvicorn examples.starlette_site.app:app --host 127.0.0.1 --port $(PORT)

lint: $(DEPS_STAMP)
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/ruff format --check src tests examples benchmarks

typecheck: $(DEPS_STAMP)
	$(BIN)/mypy

pytest: $(DEPS_STAMP) chromium
	$(BIN)/pytest

test: lint typecheck pytest

# Every benchmarks/bench_*.py, one after the other (figures go to docs/benchmarks.md).
bench: $(DEPS_STAMP)
	@command -v wrk >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk; }
	@for script in benchmarks/bench_*.py; do \
	  echo "== $$script"; PYTHONPATH=. $(BIN)/python $$script || exit 1; \
	done

# The fuzz suite at 100,000 examples per target (CI runs 10,000).
fuzz: $(DEPS_STAMP)
	HYPOTHESIS_PROFILE=nightly $(BIN)/pytest tests/fuzz -q --timeout=0

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
