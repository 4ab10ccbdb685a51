#!/usr/bin/env bash
# `make demo`: the main job end to end on the embedded defaults — no AWS account, no Pulumi CLI.
# Stages, infra preview and policies offline; then the life of a pipeline across three emulated
# stages: validate, render, check, promote dev → staging → prod, status, a change, a rollback.
set -euo pipefail
cd "$(dirname "$0")/.."
mwaa=".venv/bin/mwaa-elt"
python=".venv/bin/python"
export COLUMNS="${COLUMNS:-140}"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# The demo edits one SQL file to show a change moving through; put it back however we exit.
changed_sql="pipelines/movielens_scifi/sql/create_scifi.sql"
original_sql="$(mktemp)"
cp "$changed_sql" "$original_sql"
sandbox_pid=""
cleanup() {
  cp "$original_sql" "$changed_sql" && rm -f "$original_sql"
  if [ -n "$sandbox_pid" ]; then kill "$sandbox_pid" 2>/dev/null || true; wait "$sandbox_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

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

step "An emulated AWS on loopback: every stage's source bucket, created from the stage model"
port="$($python -c 'from mwaa_elt.promote.sandbox import free_port; print(free_port())')"
ready="$(mktemp -u)"
$mwaa sandbox --port "$port" --ready-file "$ready" &
sandbox_pid=$!
for _ in $(seq 300); do [ -s "$ready" ] && break; sleep 0.1; done
[ -s "$ready" ] || { echo "the sandbox did not start"; exit 1; }
rm -f "$ready"
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
# The sandbox emulates S3 and STS; MWAA has no emulator, so its gates are skipped here.
promote() { $mwaa promote "$@" --skip-mwaa-checks; }

step "Promote the working tree into dev: the plan first (nothing is written)"
promote --to dev --plan

step "Apply it: scripts and source bundles, then DAG files, then the manifest"
promote --to dev --yes

step "Promote again with nothing changed: nothing is written"
promote --to dev --yes

step "dev → prod skips staging: refused"
if promote --from dev --to prod --yes; then echo "unexpected: a skipped stage was promoted"; exit 1; fi

step "Promote dev's recorded versions to staging, re-rendered with staging's names"
promote --from dev --to staging --yes

step "Promote staging to prod (production: --yes, or an interactive confirmation)"
promote --from staging --to prod --yes

for stage in dev staging prod; do
  step "What is live in $stage"
  $mwaa status --stage "$stage"
done

step "An analyst changes one SQL file: only that pipeline moves (plan with its diff)"
printf '\n-- demo: a change in one SQL file\n' >> "$changed_sql"
promote --to dev --plan --diff
promote --to dev --yes --json

step "It was a mistake: roll movielens_scifi back in dev to the version before"
$mwaa rollback movielens_scifi --stage dev --yes --skip-mwaa-checks
$mwaa status --stage dev

step "Done: the sandbox stops and takes its state with it"
