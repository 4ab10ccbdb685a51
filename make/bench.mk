# The benchmarks' own venvs, kept apart from the DagBag check venvs so nothing they add (dag-factory)
# can change what `mwaa-elt check` sees. Include from the main Makefile.
#
#   make bench-envs   build .venv-bench-dagfactory (a no-op when up to date)
#
# The venv is rebuilt from scratch whenever its requirements (or the airflow3 pins they include)
# change, so it never carries packages the files no longer list.

BENCH_PYTHON ?= python3

.PHONY: bench-envs

bench-envs: .venv-bench-dagfactory/.installed

.venv-bench-dagfactory/.installed: requirements/bench-dagfactory.txt requirements/airflow3.txt
	@rm -rf .venv-bench-dagfactory
	$(BENCH_PYTHON) -m venv .venv-bench-dagfactory
	.venv-bench-dagfactory/bin/python -m pip install $(AIRFLOW_PIP_FLAGS) '$(AIRFLOW_PIP)'
	.venv-bench-dagfactory/bin/python -m pip install $(AIRFLOW_PIP_FLAGS) -r requirements/bench-dagfactory.txt
	.venv-bench-dagfactory/bin/python -m pip check
	@touch $@
