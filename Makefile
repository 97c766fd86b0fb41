# `make run` and `make test` set everything up themselves on a machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint layers typecheck browser unit clean wrk soak bench bots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/shortener serve

lint: $(STAMP)
	$(BIN)/ruff check shortener tests
	$(BIN)/ruff format --check shortener tests

# The layers of docs/architecture.md, as contracts in pyproject.toml ([tool.importlinter]).
layers: $(STAMP)
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy --strict shortener

# tests/system/test_browser.py opens short links in a real Chromium. Install it where that is possible
# (as root with apt-get, as on CI); elsewhere that test skips itself, so this never fails.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing chromium for the browser test"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
			>/dev/null || echo "note: could not install chromium; the browser test will be skipped"; \
	else echo "note: chromium is not installed; the browser test will be skipped"; fi

unit: $(STAMP) browser
	$(BIN)/python -m pytest

test: lint layers typecheck unit

# The load generator of soak and bench: Debian's wrk, installed here as root when missing.
wrk:
	@if command -v wrk >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing wrk"; \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk 2>/dev/null \
			|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }; \
		} >/dev/null || { echo "error: could not install wrk with apt-get" >&2; exit 1; }; \
	else echo "error: this needs wrk; install it first (as root: apt-get install -y wrk)" >&2; \
		exit 1; fi

# A bounded load test against a real service and Redis, not part of `make test`. Options go in
# SOAK_ARGS, e.g. `make soak SOAK_ARGS="--seconds 300 --connections 128"`.
soak: $(STAMP) wrk
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

# Throughput, latency and memory of the service against minimal reference apps, written to
# bench/results.md; about 13 minutes. `make bench BENCH_SECONDS=1 BENCH_WORKERS_CHECK=0` is a
# quick smoke run; BENCH_ARGS="--only taps" runs one part (and leaves bench/results.md alone).
BENCH_SECONDS ?= 10
BENCH_CONNECTIONS ?= 64
BENCH_WORKERS_CHECK ?= 1
bench: $(STAMP) wrk
	$(BIN)/python bench/bench.py --seconds $(BENCH_SECONDS) --connections $(BENCH_CONNECTIONS) \
		$(if $(filter 1,$(BENCH_WORKERS_CHECK)),--workers-check) $(BENCH_ARGS)

# The corpus of people's and machines' taps (tests/support/corpus.py): how many of each the
# service counts as people.
bots: $(STAMP)
	$(BIN)/python bench/bots.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
