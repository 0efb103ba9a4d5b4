# The two commands of the README. Both build their own virtualenv from PyPI, so they work
# on a bare machine with Python 3.11+.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-postgres clean postgres chromium

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(STAMP)

run: $(STAMP)  ## API and workers on stockyard.db, with demo data and a demo login
	$(BIN)/stockyard serve --demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

postgres:  ## PostgreSQL's binaries for the tests (Debian's package)
	bash scripts/install-postgres.sh

chromium:  ## Debian's Chromium for the console's browser tests
	bash scripts/install-chromium.sh

test: lint postgres chromium  ## ruff, mypy and the whole test suite, on SQLite and PostgreSQL
	$(BIN)/pytest -q

bench: $(STAMP)  ## the SQLite benchmarks of docs/benchmarks.md (a few minutes)
	$(BIN)/python -m bench.run

bench-postgres: $(STAMP) postgres  ## the PostgreSQL benchmarks, against Procrastinate
	$(BIN)/python -m bench.postgres

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
