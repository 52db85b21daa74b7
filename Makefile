# Two set-up commands: `make demo` and `make test`. Each bootstraps .venv itself.
PYTHON ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEPS_STAMP := $(VENV)/.deps-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint typecheck pytest compiler chromium wrk bench soak fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(DEPS_STAMP): pyproject.toml | $(BIN)/python compiler
	$(BIN)/python -m pip install -q -e '.[embedded,dev]'
	rm -f $(VENV)/.deps-*
	touch $@

# The optional C extensions are built at install, and the tests build a small
# library of their own (tests/beacon/test_spool.py): a C compiler is installed
# when there is none.
compiler:
	@command -v cc >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq gcc libc6-dev; }

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

wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk; }

# Every benchmarks/bench_*.py, one after the other, then a short soak; about 15 minutes
# on 2 cores. The figures of docs/benchmarks.md use larger sizes, e.g.
# `make bench STATS_EVENTS=10000000 SOAK_MINUTES=10`.
STATS_EVENTS ?= 2000000
SOAK_MINUTES ?= 2
bench: $(DEPS_STAMP) wrk
	@for script in benchmarks/bench_*.py; do \
	  case $$script in \
	    */bench_stats.py) args="--events $(STATS_EVENTS)" ;; \
	    */bench_pixel.py) args="--rounds 3" ;; \
	    *) args="" ;; \
	  esac; \
	  echo "== $$script $$args"; PYTHONPATH=. $(BIN)/python $$script $$args || exit 1; \
	done
	@echo "== benchmarks/soak.py --minutes $(SOAK_MINUTES)"
	@PYTHONPATH=. $(BIN)/python benchmarks/soak.py --minutes $(SOAK_MINUTES)

# MINUTES of mixed traffic at half the measured maximum: RSS growth, losses, 5xx.
MINUTES ?= 10
soak: $(DEPS_STAMP) wrk
	PYTHONPATH=. $(BIN)/python benchmarks/soak.py --minutes $(MINUTES)

# The fuzz suite at 100,000 examples per target (CI runs 10,000).
fuzz: $(DEPS_STAMP)
	HYPOTHESIS_PROFILE=nightly $(BIN)/pytest tests/fuzz -q --timeout=0

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
