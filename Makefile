# The two commands of the README. Both build their own virtualenv from PyPI, so they work
# on a bare machine with Python 3.11+.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
PORT ?= 8000

.PHONY: run test check lint bench bench-postgres bench-peers clean postgres chromium axe shopify-schema magento-openapi redis systems demo-erp-shop

# Running needs only the package itself; the tests and benchmarks add their tools.
$(RUN_STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(STAMP) $(RUN_STAMP)

run: $(RUN_STAMP)  ## API and workers on stockyard.db, with demo data and a demo login (PORT=8000)
	$(BIN)/stockyard serve --demo --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench systems
	$(BIN)/mypy

postgres:  ## PostgreSQL's binaries for the tests (Debian's package)
	bash scripts/install-postgres.sh

redis:  ## Debian's redis-server, for the Dramatiq column of the peer benchmark
	bash scripts/install-redis.sh

chromium:  ## Debian's Chromium for the console's browser tests
	bash scripts/install-chromium.sh

axe:  ## axe-core, pinned and checked, for the console's accessibility tests (outside the repo)
	bash scripts/install-axe.sh

shopify-schema:  ## Shopify's Admin GraphQL schema (@shopify/dev-mcp), pinned and checked (outside the repo)
	bash scripts/install-shopify-schema.sh

magento-openapi:  ## Adobe's Magento 2.4.7 admin REST OpenAPI document (@graphcommerce/magento-graphql-rest), pinned and checked (outside the repo)
	bash scripts/install-magento-openapi.sh

systems:  ## Tryton, Vendure and Oscar (the trade store), pinned, for the ERP-to-shop demo and tests
	bash scripts/install-tryton.sh
	bash scripts/install-vendure.sh
	bash scripts/install-oscar.sh

demo-erp-shop: $(STAMP) systems  ## Tryton and Vendure on 127.0.0.1 with Stockyard between them
	$(BIN)/python -m systems.launch

test: lint postgres chromium axe shopify-schema magento-openapi systems  ## ruff, mypy and the whole test suite, on SQLite and PostgreSQL
	$(BIN)/pytest -q

check: lint  ## ruff, mypy and the fast tier: SQLite, in-process; no PostgreSQL, Chromium or ERP
	$(BIN)/pytest -q -m "not backends and not chaos and not real"

bench: $(STAMP)  ## the SQLite benchmarks of docs/benchmarks.md (a few minutes)
	$(BIN)/python -m bench.run

bench-postgres: $(STAMP) postgres  ## the PostgreSQL benchmarks, against Procrastinate
	$(BIN)/python -m bench.postgres

bench-peers: $(STAMP) postgres redis  ## the peer table of docs/benchmarks.md (Huey, Procrastinate, Dramatiq, raw loops)
	$(BIN)/python -m bench.peers

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
