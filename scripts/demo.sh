#!/usr/bin/env bash
# `make demo`: the main job end to end on the embedded defaults — no AWS account, no Pulumi CLI.
# The analyst's loop first (validate, SQL tests, a local run for real), then the release (promote
# dev → staging → prod into an emulated AWS, status, a change, a rollback), then the platform in
# brief. `make demo DETAILS=1` adds the full infra preview, the IAM policies and every stage's check.
set -euo pipefail
cd "$(dirname "$0")/.."
mwaa=".venv/bin/mwaa-elt"
python=".venv/bin/python"
details="${DETAILS:-}"
export COLUMNS="${COLUMNS:-120}"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# The demo edits a test and a SQL file to show a failure and a change; put both back however we exit.
changed_sql="pipelines/movielens_scifi/sql/create_scifi.sql"
changed_test="pipelines/movielens_scifi/tests/create_scifi.yaml"
saved="$(mktemp -d)"
cp "$changed_sql" "$changed_test" "$saved/"
sandbox_pid=""
cleanup() {
  cp "$saved/$(basename "$changed_sql")" "$changed_sql"
  cp "$saved/$(basename "$changed_test")" "$changed_test"
  rm -rf "$saved"
  if [ -n "$sandbox_pid" ]; then kill "$sandbox_pid" 2>/dev/null || true; wait "$sandbox_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

step "An analyst's pipelines (YAML + SQL): validate every spec against every stage"
$mwaa validate

step "SQL unit tests: each task's query on DuckDB, given rows in, expected rows out"
$mwaa test movielens_scifi

step "A test that expects the wrong average fails with its row diff (exit 1)"
sed -i 's/ratings: 3, avg_rating: 4.5}/ratings: 3, avg_rating: 4.0}/' "$changed_test"
if $mwaa test movielens_scifi 2>&1 | grep -v '^PASS'; then :; fi
cp "$saved/$(basename "$changed_test")" "$changed_test"

step "Run it locally, for real: Airflow's own test runner in MWAA's image, Athena SQL on DuckDB"
$mwaa run movielens_scifi --stage dev --date 2024-03-01

step "The DAG file it becomes for dev, loaded with Airflow's DagBag in MWAA's Airflow 3.0.6 image"
$mwaa render --stage dev
$mwaa check --stage dev
sed -n '1,3p' build/dev/dags/movielens_scifi.py

step "An emulated AWS on loopback: every stage's source bucket, created from the stage model"
port="$($python -c 'from mwaa_elt.promote.sandbox import free_port; print(free_port())')"
ready="$(mktemp -u)"
$mwaa sandbox --port "$port" --ready-file "$ready" >/dev/null &
sandbox_pid=$!
for _ in $(seq 300); do [ -s "$ready" ] && break; sleep 0.1; done
[ -s "$ready" ] || { echo "the sandbox did not start"; exit 1; }
rm -f "$ready"
echo "sandbox on http://127.0.0.1:$port (S3 and STS; MWAA has no emulator, so its gates are skipped)"
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
promote() { $mwaa promote "$@" --skip-mwaa-checks; }

step "Promote the working tree into dev: the plan, then the apply"
promote --to dev --plan
promote --to dev --yes | tail -n 1

step "dev → prod skips staging: refused"
if promote --from dev --to prod --yes; then echo "unexpected: a skipped stage was promoted"; exit 1; fi

step "The versions dev records go to staging, then prod, re-rendered with each stage's names"
promote --from dev --to staging --yes | tail -n 1
promote --from staging --to prod --yes | tail -n 1
$mwaa status --stage prod

step "One SQL file changes: only that pipeline moves, its diff in the plan"
printf '\n-- demo: a change in one SQL file\n' >> "$changed_sql"
promote --to dev --plan --diff
promote --to dev --yes | tail -n 1

step "It was a mistake: roll movielens_scifi back in dev to the version before"
$mwaa rollback movielens_scifi --stage dev --yes --skip-mwaa-checks | tail -n 1
$mwaa status --stage dev

step "The platform: three stages, each described once in stacks/Pulumi.<stage>.yaml"
$mwaa stage list
$mwaa infra preview --stage prod --json | $python -c '
import collections, json, sys
resources = [r for r in json.load(sys.stdin) if r["custom"]]
kinds = collections.Counter(r["type"].split(":")[1].split("/")[0] for r in resources)
print(f"pulumi up --stack prod would create {len(resources)} resources:",
      ", ".join(f"{n} {k}" for k, n in kinds.most_common()))'

if [ -n "$details" ]; then
  step "Details: what 'pulumi up --stack prod' would create (the Pulumi program under Pulumi's mocks)"
  $mwaa infra preview --stage prod
  step "Details: the execution role's least-privilege policies for dev, exactly as deployed"
  $mwaa infra policies --stage dev
  for stage in staging prod; do
    step "Details: the DagBag gate for $stage, in MWAA's image for its Airflow version"
    $mwaa render --stage "$stage" >/dev/null
    $mwaa check --stage "$stage"
  done
fi

step "Done: the sandbox stops and takes its state with it (DETAILS=1 shows infra and IAM in full)"
