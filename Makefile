# The two commands: `make run` (the Dagster UI on the embedded PostgreSQL) and `make test`.
# Each creates .venv and installs what it needs on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test bench lint format clean chromium settings-docs mutations

$(BIN)/.installed-run: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(BIN)/.installed-test: pyproject.toml $(BIN)/.installed-run
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

run: $(BIN)/.installed-run
	$(BIN)/coinmarket dev

test: $(BIN)/.installed-test chromium lint
	$(BIN)/python -m pytest

# The UI test drives Debian's chromium through Playwright (never `playwright install`).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Performance targets against their baselines, measured in one run; writes BENCHMARKS.md.
bench: $(BIN)/.installed-test
	$(BIN)/python -m benchmarks

lint: $(BIN)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# docs/settings.md and the deploy variants' environment lists, regenerated from the settings.
settings-docs: $(BIN)/.installed-run
	$(BIN)/python -m coinmarket_assets.settings_docs --write

# Each deliberate mutation of a definition (lookbacks, periods, tie-breaks) must fail a test.
mutations: $(BIN)/.installed-test
	$(BIN)/python -m benchmarks.mutations
