# The benchmarks' own venvs, kept apart from the DagBag check venvs so nothing they add (dag-factory)
# can change what `mwaa-elt check` sees. Include from the main Makefile.
#
#   make bench-envs   build .venv-bench-dagfactory and .venv-bench-awscli (no-ops when up to date)
#
# The venv is rebuilt from scratch whenever its requirements (or the 3.0.6 MWAA lock it starts from)
# change, so it never carries packages the files no longer list.

BENCH_PYTHON ?= python3

.PHONY: bench-envs

bench-envs: .venv-bench-dagfactory/.installed .venv-bench-awscli/.installed

.venv-bench-dagfactory/.installed: requirements/bench-dagfactory.txt requirements/mwaa/3.0.6/environment.lock | airflow-envs
	@rm -rf .venv-bench-dagfactory
	$(UV) venv --quiet --python "$$(readlink -f .venv-airflow-3.0.6/bin/python)" .venv-bench-dagfactory
	$(UV) pip sync --quiet --python .venv-bench-dagfactory/bin/python --require-hashes \
	  requirements/mwaa/3.0.6/environment.lock
	$(UV) pip install --quiet --python .venv-bench-dagfactory/bin/python \
	  --constraint requirements/mwaa/3.0.6/environment.lock -r requirements/bench-dagfactory.txt
	$(UV) pip check --python .venv-bench-dagfactory/bin/python
	@touch $@

# `aws s3 sync` for the promotion benchmark (bench/promotion.py): awscli from PyPI, which vendors
# its own botocore, so it stays out of .venv.
.venv-bench-awscli/.installed: requirements/bench-awscli.txt
	@rm -rf .venv-bench-awscli
	$(BENCH_PYTHON) -m venv .venv-bench-awscli
	.venv-bench-awscli/bin/python -m pip install $(AIRFLOW_PIP_FLAGS) -r requirements/bench-awscli.txt
	.venv-bench-awscli/bin/python -m pip check
	@touch $@
