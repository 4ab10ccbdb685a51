#!/bin/sh
# MWAA startup script: runs on every scheduler, worker and webserver container before Airflow
# starts, on every start, so it stays fast and idempotent. MWAA ignores changes to its reserved
# variables (PATH, PYTHONPATH, AIRFLOW_HOME, ...); stage settings belong in the stack file.
set -e

# Private stages reach STS through a VPC interface endpoint; the global endpoint is unreachable.
export AWS_STS_REGIONAL_ENDPOINTS=regional

# One line per container in the startup log group, to tell which component a restart came from.
echo "mwaa-elt startup: component=${MWAA_AIRFLOW_COMPONENT:-unknown}"
