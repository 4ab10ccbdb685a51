# Two set-up commands on a fresh machine: `make demo` and `make test`. Each installs what it needs:
# .venv (the tool, Pulumi, moto, pytest) from requirements/tool.lock, the MWAA environments
# (.venv-airflow-<version>) that DAG checks and local runs use, and tests/iam/evaluator/node_modules
# (the IAM evaluator, `make evaluator`). Everything installs from lock files with exact versions
# and hashes (uv, npm); re-running skips what is done.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed

.PHONY: setup lock test demo lint bench golden clean

include make/airflow.mk
include make/bench.mk
include make/evaluator.mk

# src/ is compiled on every run (only what changed since): an editable install leaves it to
# the interpreter, which does not write bytecode where PYTHONDONTWRITEBYTECODE is set.
setup: $(STAMP)
	@$(BIN)/python -m compileall -q src

# uv is bootstrapped by pip from its own hashed pin, then installs the lock exactly (sync removes
# anything the lock does not list) and the project itself, built with a pinned setuptools.
# Byte-compiled at install, as pip does by default and uv does not: where PYTHONDONTWRITEBYTECODE
# is set (CI images, containers) every `mwaa-elt` command would otherwise compile what it imports
# again — 1 s of a no-change promotion's 1.75 s at 1,000 pipelines (docs/performance.md).
$(STAMP): Makefile pyproject.toml requirements/tool.lock requirements/uv.txt requirements/build.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(BIN)/python -m pip install --quiet --disable-pip-version-check \
	  --require-hashes --no-deps -r requirements/uv.txt
	$(UV) pip sync --quiet --python $(BIN)/python --require-hashes --compile-bytecode \
	  requirements/tool.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --compile-bytecode \
	  --build-constraints requirements/build.txt -e .
	@touch $(STAMP)

# Re-resolves the locks from pyproject.toml and requirements/*.in (needs .venv for uv).
LOCK := $(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock"
lock: setup
	$(LOCK) pyproject.toml --extra dev -o requirements/tool.lock
	$(LOCK) requirements/uv.in -o requirements/uv.txt
	$(LOCK) requirements/build.in -o requirements/build.txt
	$(BIN)/mwaa-elt airflow-envs lock --all

test: setup airflow-envs evaluator
	$(BIN)/python -m pytest -n 2 -q

demo: setup airflow-envs
	@DETAILS=$(DETAILS) bash scripts/demo.sh

LINT_PATHS := src infra tests $(wildcard bench)

lint: setup
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

bench: setup airflow-envs bench-envs
	$(BIN)/python -m bench

# After a deliberate change to templates or examples: re-render the golden DAG files the tests
# compare against (tests/render/golden/<stage>/), then review `git diff` like code.
golden: setup
	@for stage in dev staging prod; do \
	  out=$$(mktemp -d) && $(BIN)/mwaa-elt render --stage $$stage --out $$out --force --json >/dev/null && \
	  rm -f tests/render/golden/$$stage/*.py && cp $$out/dags/*.py tests/render/golden/$$stage/ && \
	  rm -rf $$out || exit 1; \
	done
	@git status --short tests/render/golden

clean:
	rm -rf $(VENV) .venv-* build .pytest_cache .ruff_cache
