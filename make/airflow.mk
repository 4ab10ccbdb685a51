# Airflow venvs for `mwaa-elt check`: one per Airflow major line MWAA runs, kept out of .venv
# because Airflow's pins conflict with ours. Include from the main Makefile.
#
#   make airflow-envs   build .venv-airflow2 and .venv-airflow3 (a no-op when up to date)
#   make airflow-lock   re-freeze requirements/airflow{2,3}.txt from the .in files
#
# A venv is rebuilt from scratch whenever its frozen requirements file changes, so it never
# carries packages the file no longer lists.

AIRFLOW2_PYTHON ?= python3
AIRFLOW3_PYTHON ?= python3
AIRFLOW_PIP_FLAGS ?= --quiet --disable-pip-version-check
# A recent pip installs these ~150 pinned wheels in about half the time of the venv's bundled one.
AIRFLOW_PIP ?= pip==26.3

.PHONY: airflow-envs airflow-lock

airflow-envs: .venv-airflow2/.installed .venv-airflow3/.installed

.venv-airflow2/.installed: requirements/airflow2.txt
	@rm -rf .venv-airflow2
	$(AIRFLOW2_PYTHON) -m venv .venv-airflow2
	.venv-airflow2/bin/python -m pip install $(AIRFLOW_PIP_FLAGS) '$(AIRFLOW_PIP)'
	.venv-airflow2/bin/python -m pip install $(AIRFLOW_PIP_FLAGS) -r requirements/airflow2.txt
	.venv-airflow2/bin/python -m pip check
	@touch $@

.venv-airflow3/.installed: requirements/airflow3.txt
	@rm -rf .venv-airflow3
	$(AIRFLOW3_PYTHON) -m venv .venv-airflow3
	.venv-airflow3/bin/python -m pip install $(AIRFLOW_PIP_FLAGS) '$(AIRFLOW_PIP)'
	.venv-airflow3/bin/python -m pip install $(AIRFLOW_PIP_FLAGS) -r requirements/airflow3.txt
	.venv-airflow3/bin/python -m pip check
	@touch $@

# Resolves the direct pins without constraints in a throw-away venv and freezes the result.
airflow-lock:
	@for v in 2 3; do \
	  py=$$(if [ $$v = 2 ]; then echo "$(AIRFLOW2_PYTHON)"; else echo "$(AIRFLOW3_PYTHON)"; fi); \
	  tmp=$$(mktemp -d) && \
	  $$py -m venv $$tmp/venv && \
	  $$tmp/venv/bin/python -m pip install $(AIRFLOW_PIP_FLAGS) '$(AIRFLOW_PIP)' && \
	  $$tmp/venv/bin/python -m pip install $(AIRFLOW_PIP_FLAGS) -r requirements/airflow$$v.in && \
	  { echo "# Frozen from requirements/airflow$$v.in by \`make airflow-lock\` (pip freeze of a clean venv, Python 3.11)."; \
	    echo "# Do not edit by hand: edit airflow$$v.in and re-lock."; \
	    $$tmp/venv/bin/python -m pip freeze; } > requirements/airflow$$v.txt && \
	  rm -rf $$tmp || exit 1; \
	done
