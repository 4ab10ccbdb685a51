# The MWAA environments: one per Airflow version the stages run, built from MWAA's own image for
# that version (requirements/mwaa/<version>/, copied from aws/amazon-mwaa-docker-images) on the
# image's Python, into .venv-airflow-<version>. DAG checks, local runs and rehearsals use them.
# Include from the main Makefile.
#
#   make airflow-envs   build every stage's environment from its lock (a no-op when current)
#   make lock           also re-resolves requirements/mwaa/<version>/environment.lock
#
# `mwaa-elt airflow-envs build` rebuilds an environment from scratch whenever its lock changes,
# so it never carries packages the lock no longer lists.

.PHONY: airflow-envs

airflow-envs: setup
	@$(BIN)/mwaa-elt airflow-envs build
