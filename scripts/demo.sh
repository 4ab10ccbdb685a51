#!/usr/bin/env bash
# `make demo`: the main job end to end on the embedded defaults — no AWS account, no Pulumi CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
mwaa=".venv/bin/mwaa-elt"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "The project's stages (stacks/Pulumi.<stage>.yaml, validated by the stage model)"
$mwaa stage list

step "Every name of the dev stage, derived in one place"
$mwaa stage show dev

step "What 'pulumi up --stack prod' would create (the Pulumi program under Pulumi's mocks)"
$mwaa infra preview --stage prod

step "The execution role's least-privilege policies for dev, exactly as deployed"
$mwaa infra policies --stage dev

step "Analysts' pipelines: validate every spec (YAML + SQL + scripts) against every stage"
$mwaa validate

for stage in dev staging prod; do
  step "Render the pipelines for $stage into build/$stage/ (plain Airflow DAG files)"
  $mwaa render --stage "$stage"
  step "Integrity gate for $stage: load every DAG with Airflow's DagBag under $stage's Airflow"
  $mwaa check --stage "$stage"
done

step "The same SQL, per stage: the CTAS of movielens_scifi in dev and in prod"
grep -n "_movielens\|_analytics" build/dev/dags/movielens_scifi.py | head -3
grep -n "_movielens\|_analytics" build/prod/dags/movielens_scifi.py | head -3
