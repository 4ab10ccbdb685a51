"""Least privilege and cross-stage isolation of the IAM documents the program deploys."""

from __future__ import annotations

import json
import re

import parliament
import pytest
from typer.testing import CliRunner

from mwaa_elt.cli import app
from mwaa_elt.infra.documents.iam_policies import (
    all_role_policies,
    delivery_roles,
    emr_instance_role_trust_policy,
    execution_role_policies,
    execution_role_trust_policy,
)

STAGE_NAMES = ("dev", "staging", "prod")
# Actions AWS offers no resource-level scoping for: the only ones allowed on Resource "*".
UNSCOPABLE = {
    "s3:GetAccountPublicAccessBlock",
    "logs:DescribeLogGroups",
    "cloudwatch:PutMetricData",
    "secretsmanager:ListSecrets",
    "elasticmapreduce:RunJobFlow",
}


def _statements(stage):
    for role, policies in all_role_policies(stage).items():
        for policy in policies:
            for statement in policy.document["Statement"]:
                yield role, policy.name, statement


def _as_list(value):
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_no_wildcard_action_and_star_resources_only_where_unscopable(stages, name):
    for role, policy, statement in _statements(stages[name]):
        assert "NotAction" not in statement, (role, policy)
        actions = _as_list(statement["Action"])
        assert all("*" not in action for action in actions), (role, policy, actions)
        if statement["Effect"] == "Allow" and "*" in _as_list(statement.get("Resource", [])):
            assert set(actions) <= UNSCOPABLE, (role, policy, actions)


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_parliament_finds_nothing(stages, name):
    for role, policies in all_role_policies(stages[name]).items():
        for policy in policies:
            findings = parliament.analyze_policy_string(json.dumps(policy.document)).findings
            assert findings == [], (role, policy.name, [(f.issue, f.detail) for f in findings])


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_no_document_names_another_stage(stages, name):
    stage = stages[name]
    text = json.dumps({r: [p.document for p in ps] for r, ps in all_role_policies(stage).items()})
    for other in (stages[o] for o in STAGE_NAMES if o != name):
        for foreign in (
            other.athena_workgroup_arn,
            other.source_bucket,
            other.data_lake_bucket,
            other.emr_service_role,
            other.emr_instance_role,
            other.secrets_prefix,
            other.environment_name,
            *other.glue_databases.values(),
            f"{other.name}/",
        ):
            assert foreign not in text, (name, foreign)
        assert not re.search(rf'"{other.name}"', text), (name, other.name)


def _execution_statement(stage, policy_name, sid):
    policies = {p.name: p.document for p in execution_role_policies(stage)}
    return next(s for s in policies[policy_name]["Statement"] if s.get("Sid") == sid)


def test_athena_only_on_the_stage_workgroup(stages):
    statement = _execution_statement(stages["dev"], "athena", "QueriesInStageWorkgroup")
    assert statement["Resource"] == stages["dev"].athena_workgroup_arn
    assert "athena:StartQueryExecution" in statement["Action"]


def test_glue_only_on_the_stage_databases_and_tables(stages):
    dev = stages["dev"]
    statement = _execution_statement(dev, "glue-catalog", "WriteStageCatalog")
    resources = set(statement["Resource"]) - {dev.glue_catalog_arn}
    assert resources == {
        f"arn:aws:glue:eu-west-1:111111111111:{kind}/{db}{suffix}"
        for db in ("dev_movielens", "dev_analytics", "dev_ops")
        for kind, suffix in (("database", ""), ("table", "/*"))
    }


def test_s3_reads_configured_prefixes_and_writes_only_stage_prefixes(stages):
    dev = stages["dev"]
    lake = f"arn:aws:s3:::{dev.data_lake_bucket}"
    read = _execution_statement(dev, "data-lake", "ReadPrefixes")
    write = _execution_statement(dev, "data-lake", "WriteStagePrefixes")
    assert set(read["Resource"]) == {f"{lake}/landing/*", f"{lake}/dev/*"}
    assert write["Resource"] == [f"{lake}/dev/*"]
    results = _execution_statement(dev, "athena", "WriteQueryResults")
    assert results["Resource"] == f"arn:aws:s3:::{dev.source_bucket}/athena-results/*"
    # The source bucket (DAGs, requirements) is read-only for the environment.
    for _, _, statement in _statements(dev):
        if statement["Effect"] == "Allow" and "s3:PutObject" in statement["Action"]:
            for resource in _as_list(statement["Resource"]):
                assert (
                    resource.startswith(f"{lake}/dev/")
                    or "/athena-results/" in resource
                    or ("/emr-logs/" in resource)
                ), resource


def test_emr_launch_requires_the_stage_tag_and_cluster_actions_need_it(stages):
    prod = stages["prod"]
    launch = _execution_statement(prod, "emr-clusters", "LaunchStageTaggedClusters")
    assert launch["Condition"] == {
        "StringEquals": {
            "aws:RequestTag/stage": "prod",
            "aws:RequestTag/for-use-with-amazon-emr-managed-policies": "true",
        }
    }
    tag = _execution_statement(prod, "emr-clusters", "TagOnLaunch")
    assert tag["Condition"] == {
        "StringEquals": {"aws:RequestTag/stage": "prod", "aws:ResourceTag/stage": "prod"}
    }
    operate = _execution_statement(prod, "emr-clusters", "OperateStageClusters")
    assert set(operate["Action"]) >= {
        "elasticmapreduce:AddJobFlowSteps",
        "elasticmapreduce:DescribeStep",
        "elasticmapreduce:DescribeCluster",
        "elasticmapreduce:TerminateJobFlows",
        "elasticmapreduce:CancelSteps",
    }
    assert operate["Condition"] == {"StringEquals": {"aws:ResourceTag/stage": "prod"}}


def test_pass_role_only_for_stage_emr_roles_to_emr_and_ec2(stages):
    staging = stages["staging"]
    statement = _execution_statement(staging, "emr-clusters", "PassStageEmrRoles")
    assert statement["Resource"] == [
        "arn:aws:iam::222222222222:role/mwaa-elt-staging-emr-service",
        "arn:aws:iam::222222222222:role/mwaa-elt-staging-emr-ec2",
    ]
    assert statement["Condition"]["StringEquals"]["iam:PassedToService"] == [
        "ec2.amazonaws.com",
        "elasticmapreduce.amazonaws.com",
    ]


def test_secrets_only_under_the_stage_prefix(stages):
    statement = _execution_statement(stages["dev"], "secrets", "ReadStageSecrets")
    assert statement["Resource"] == (
        "arn:aws:secretsmanager:eu-west-1:111111111111:secret:mwaa-elt/dev/*"
    )


def test_mwaa_baseline(stages):
    dev, prod = stages["dev"], stages["prod"]
    metrics = _execution_statement(dev, "mwaa-baseline", "PublishMetrics")
    assert metrics["Resource"] == dev.environment_arn
    deny = _execution_statement(dev, "mwaa-baseline", "DenyListAllBuckets")
    assert deny["Effect"] == "Deny" and deny["Action"] == "s3:ListAllMyBuckets"
    logs = _execution_statement(dev, "mwaa-baseline", "EnvironmentLogs")
    assert logs["Resource"].endswith(":log-group:airflow-mwaa-elt-dev-*")
    sqs = _execution_statement(dev, "mwaa-baseline", "CeleryQueues")
    assert sqs["Resource"] == "arn:aws:sqs:eu-west-1:*:airflow-celery-*"
    # Without a customer key: AWS-owned keys only, through SQS.
    kms_dev = _execution_statement(dev, "mwaa-baseline", "KmsViaServices")
    assert kms_dev["NotResource"] == "arn:aws:kms:eu-west-1:111111111111:key/*"
    assert kms_dev["Condition"] == {
        "StringLike": {"kms:ViaService": ["sqs.eu-west-1.amazonaws.com"]}
    }
    # With the stage's key: only keys tagged with the stage, through SQS and S3.
    kms_prod = _execution_statement(prod, "mwaa-baseline", "KmsViaServices")
    assert kms_prod["Resource"] == "arn:aws:kms:eu-central-1:333333333333:key/*"
    assert kms_prod["Condition"]["StringEquals"] == {"aws:ResourceTag/stage": "prod"}
    assert set(kms_prod["Condition"]["StringLike"]["kms:ViaService"]) == {
        "sqs.eu-central-1.amazonaws.com",
        "s3.eu-central-1.amazonaws.com",
    }


def test_trust_policies(stages):
    trust = execution_role_trust_policy(stages["dev"])["Statement"][0]
    assert trust["Principal"]["Service"] == ["airflow-env.amazonaws.com", "airflow.amazonaws.com"]
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "111111111111"},
        "ArnLike": {
            "aws:SourceArn": "arn:aws:airflow:eu-west-1:111111111111:environment/mwaa-elt-dev"
        },
    }
    ec2 = emr_instance_role_trust_policy(stages["dev"])["Statement"][0]
    assert ec2["Principal"]["Service"] == ["ec2.amazonaws.com"]


def test_infra_policies_json_is_exactly_the_deployed_documents(project_root, stages):
    result = CliRunner().invoke(
        app, ["infra", "policies", "--stage", "prod", "--json", "-C", str(project_root)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["role"] == "mwaa-elt-prod-mwaa-execution"
    assert data["policies"] == [
        {"name": p.name, "document": p.document} for p in execution_role_policies(stages["prod"])
    ]


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_parliament_finds_nothing_in_the_ci_roles(stages, name):
    for role in delivery_roles(stages[name], stages):
        for policy in role.policies:
            findings = parliament.analyze_policy_string(json.dumps(policy.document)).findings
            assert findings == [], (role.name, policy.name, [(f.issue, f.detail) for f in findings])


def test_infra_policies_shows_every_role_of_the_stage(project_root, stages):
    result = CliRunner().invoke(
        app, ["infra", "policies", "--stage", "staging", "--json", "-C", str(project_root)]
    )
    assert result.exit_code == 0, result.output
    roles = {role["name"]: role for role in json.loads(result.stdout)["roles"]}
    staging = stages["staging"]
    assert list(roles) == [
        staging.execution_role_name,
        staging.emr_instance_role,
        staging.ci_role_name,
        staging.release_reader_role_name,
    ]
    (ci,) = [r for r in delivery_roles(staging, stages) if r.name == staging.ci_role_name]
    assert roles[ci.name]["trust"] == ci.trust
    assert roles[ci.name]["policies"] == [
        {"name": p.name, "document": p.document} for p in ci.policies
    ]
    text = CliRunner().invoke(
        app, ["infra", "policies", "--stage", "prod", "-C", str(project_root)], terminal_width=200
    )
    assert text.exit_code == 0, text.output
    for role in ("mwaa-elt-prod-ci", "mwaa-elt-release-build", "mwaa-elt-release-pipeline"):
        assert f"role {role}" in text.output
