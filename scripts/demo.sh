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
