# Two commands a new user needs (README quickstart); each installs what it needs first.
#   make verify-example   run the verifier on the example project shipped in the repo
#   make test             run the test suite (lint, types, import contracts, tests against a real PostgreSQL)
# and, for maintainers:
#   make lock-image       pin the image's dependencies again (requirements-image.txt, from pyproject.toml)
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
# PostgreSQL server binaries for the embedded backend (Debian: apt-get install postgresql)
PG_BINARIES = $(firstword $(wildcard /usr/lib/postgresql/*/bin/postgres) $(shell command -v postgres))

.PHONY: verify-example test install postgres lock-image

$(BIN)/alembic-preflight: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/alembic-preflight

postgres:
ifeq ($(PG_BINARIES),)
	@echo "installing PostgreSQL server binaries (apt-get)"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
endif

verify-example: install postgres
	$(BIN)/alembic-preflight verify examples/project

test: install postgres
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -n 2

# requirements-image.txt: pyproject.toml's dependencies resolved against PyPI, every one pinned
lock-image: install
	$(BIN)/python scripts/lock_image_requirements.py
