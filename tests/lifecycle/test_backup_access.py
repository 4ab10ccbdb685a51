"""No role the platform deploys may write a stage's metadata backups but the operator role (what
a platform engineer assumes to run `mwaa-elt backup`), and neither the execution role (every
DAG) nor the CI role may read them."""

from __future__ import annotations

from dataclasses import replace
from fnmatch import fnmatchcase
from typing import Any

import pytest

from mwaa_elt.infra.documents.iam_policies import stage_roles
from mwaa_elt.lifecycle.metadata import backups_prefix
from mwaa_elt.stage import OperatorConfig, Stage


def _matches(patterns: Any, value: str) -> bool:
    return any(
        fnmatchcase(value, p) for p in ([patterns] if isinstance(patterns, str) else patterns)
    )


def _decision(statements: list[dict[str, Any]], action: str, resource: str) -> str:
    """IAM's answer for one action on one resource: an explicit deny wins over any allow."""
    allowed = False
    for statement in statements:
        if "NotAction" in statement or "NotResource" in statement:
            continue
        if _matches(statement.get("Action", []), action) and _matches(statement.get("Resource", []), resource):  # fmt: skip
            if statement["Effect"] == "Deny":
                return "denied"
            allowed = True
    return "allowed" if allowed else "implicitly denied"


@pytest.mark.parametrize("name", ["dev", "staging", "prod"])
def test_backups_are_written_by_no_deployed_role_and_read_by_no_dag(
    stages: dict[str, Stage], name: str
) -> None:
    engineers = f"arn:aws:iam::{stages[name].account_id}:role/platform-engineers"
    operator = OperatorConfig(principals=[engineers])
    stage = replace(stages[name], config=stages[name].config.model_copy(update={"operator": operator}))  # fmt: skip
    key = f"{stage.source_bucket_arn}/{backups_prefix(stage)}20261201T220000Z/variables.json"
    roles = stage_roles(stage, stages)
    assert stage.operator_role_name in [role.name for role in roles]
    for role in roles:
        statements = [s for policy in role.policies for s in policy.document["Statement"]]
        if role.name == stage.operator_role_name:
            assert _decision(statements, "s3:PutObject", key) == "allowed"
            assert _decision(statements, "s3:GetObject", key) == "allowed"
            continue
        assert _decision(statements, "s3:PutObject", key) != "allowed", role.name
        if role.name in (stage.execution_role_name, stage.ci_role_name):
            assert _decision(statements, "s3:GetObject", key) == "denied"
            dag = f"{stage.source_bucket_arn}/{stage.dags_prefix}movielens_scifi.py"
            # (The CI role reads DAG files too: the explicit deny is what keeps backups out.)
            assert _decision(statements, "s3:GetObject", dag) == "allowed"
