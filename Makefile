# Two set-up commands on a fresh machine: `make demo` and `make test`. Each installs what it needs:
# .venv (the tool, Pulumi, moto, pytest), .venv-airflow2/3 (DagBag checks per Airflow line) and
# tests/iam/evaluator/node_modules (the IAM evaluator, `make evaluator`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test demo lint bench clean

include make/airflow.mk
include make/bench.mk
include make/evaluator.mk

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

test: setup airflow-envs evaluator
	$(BIN)/python -m pytest -n 2 -q

demo: setup airflow-envs
	@bash scripts/demo.sh

LINT_PATHS := src infra tests $(wildcard bench)

lint: setup
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

bench: setup airflow-envs bench-envs
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .venv-* build .pytest_cache .ruff_cache
