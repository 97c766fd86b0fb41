# `make run` and `make test` set everything up themselves on a machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck browser unit clean

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

typecheck: $(STAMP)
	$(BIN)/mypy --strict shortener

# tests/test_browser.py opens short links in a real Chromium. Install it where that is possible
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

test: lint typecheck unit

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
