# The two commands a fresh machine needs are `make demo` and `make test`; both install what
# they need (venv, Kafka jars, apt packages) and are safe to re-run.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOOLS := .venv-tools
CHECKOV := checkov==3.3.30
PYTEST_ARGS ?=

.PHONY: demo test test-cluster lint unit integration bench venv tools up down status clean help

help:
	@echo "make demo   - install, start the local platform and run the pipeline end to end"
	@echo "make test   - install and run the whole test suite (starts its own broker/warehouse)"
	@echo "make bench  - run the benchmarks and write docs/benchmarks.md"

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@bash scripts/ensure-system.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# checkov (the infrastructure scan in tests/integration/test_infrastructure_scan.py) lives in its own virtualenv:
# its pins (packaging<24, networkx 2) clash with the project's.
tools: $(TOOLS)/.installed

$(TOOLS)/.installed: Makefile
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet '$(CHECKOV)'
	@touch $@

demo: venv
	$(BIN)/billing demo

test: venv tools lint
	@bash scripts/run-tests.sh $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

unit: venv lint
	$(BIN)/python -m pytest -m "not integration" $(PYTEST_ARGS)

integration: venv tools
	$(BIN)/python -m pytest -m integration $(PYTEST_ARGS)

test-cluster: venv
	$(BIN)/python -m pytest -m cluster $(PYTEST_ARGS)

bench: venv
	$(BIN)/python -m bench

up: venv
	$(BIN)/billing up

down:
	@test -x $(BIN)/billing && $(BIN)/billing down || true

status: venv
	$(BIN)/billing status

clean: down
	rm -rf .state
