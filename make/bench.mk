# The benchmarks' own venvs, kept apart from the DagBag check venvs so nothing they add (dag-factory)
# can change what `mwaa-elt check` sees. Include from the main Makefile.
#
#   make bench-envs   build .venv-bench-dagfactory and .venv-bench-awscli (no-ops when up to date)
#
# The venv is rebuilt from scratch whenever its requirements (or the airflow3 pins they include)
# change, so it never carries packages the files no longer list.

BENCH_PYTHON ?= python3

.PHONY: bench-envs

bench-envs: .venv-bench-dagfactory/.installed .venv-bench-awscli/.installed

.venv-bench-dagfactory/.installed: requirements/bench-dagfactory.txt requirements/airflow3.txt
	@rm -rf .venv-bench-dagfactory
	$(BENCH_PYTHON) -m venv .venv-bench-dagfactory
	.venv-bench-dagfactory/bin/python -m pip install $(AIRFLOW_PIP_FLAGS) '$(AIRFLOW_PIP)'
	.venv-bench-dagfactory/bin/python -m pip install $(AIRFLOW_PIP_FLAGS) -r requirements/bench-dagfactory.txt
	.venv-bench-dagfactory/bin/python -m pip check
	@touch $@

# `aws s3 sync` for the promotion benchmark (bench/promotion.py): awscli from PyPI, which vendors
# its own botocore, so it stays out of .venv.
.venv-bench-awscli/.installed: requirements/bench-awscli.txt
	@rm -rf .venv-bench-awscli
	$(BENCH_PYTHON) -m venv .venv-bench-awscli
	.venv-bench-awscli/bin/python -m pip install $(AIRFLOW_PIP_FLAGS) -r requirements/bench-awscli.txt
	.venv-bench-awscli/bin/python -m pip check
	@touch $@
