# The two commands of the README: `make run` and `make test`. Both build .venv first.
# `make test-fast`: the quick loop while working (unit, integration and API tests on SQLite).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export CHAMELEON_DATABASE_URL ?= sqlite:///chameleon.db

.PHONY: install run test test-fast lint typecheck unit clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/chameleon db upgrade
	$(BIN)/chameleon workflow import-examples
	$(BIN)/chameleon keys local-admin
	$(BIN)/chameleon serve --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -q

# No PostgreSQL, no CLI processes or real servers (tests/e2e), no slow tests (schemathesis, browser).
FAST_TESTS := tests/unit tests/integration tests/api

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not postgres and not slow" $(FAST_TESTS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache chameleon.db*
