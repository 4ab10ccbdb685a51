#!/bin/sh
# MWAA startup script: runs on every scheduler, worker and webserver container before Airflow
# starts, on every start, so it stays fast and idempotent. MWAA ignores changes to its reserved
# variables (PATH, PYTHONPATH, AIRFLOW_HOME, ...); stage settings belong in the stack file.
set -e

# Regional STS endpoints keep credential calls in the stage's region (and its NAT or endpoints).
export AWS_STS_REGIONAL_ENDPOINTS=regional

# One line per container in the startup log group, to tell which component a restart came from.
echo "mwaa-elt startup: component=${MWAA_AIRFLOW_COMPONENT:-unknown}"
