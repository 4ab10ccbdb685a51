"""The operator role, proven by the IAM evaluator (conditions, cross-account, trust policies):
Airflow's Op role and the metadata records of its own stage's environments — blue and, during a
cutover, green — and nothing of another stage, no Admin, no environment or IAM change; only the
principals the stack names may assume it, with MFA; and the CI role still only reads (Viewer)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from iam_evaluator import Decision, Request, evaluate_by_principal

from mwaa_elt.infra.documents.iam_policies import (
    ci_role_policies,
    operator_role,
    operator_role_trust_policy,
)
from mwaa_elt.infra.encryption import key_policy
from mwaa_elt.stage import OperatorConfig, Stage, load_all_stages
from mwaa_elt.stage.cutover_config import CutoverConfig
from mwaa_elt.stage.green import environments

ROOT = Path(__file__).resolve().parents[2]
SECURE = {"aws:SecureTransport": "true"}


def _with_operator(stage: Stage, **update: Any) -> Stage:
    engineers = f"arn:aws:iam::{stage.account_id}:role/platform-engineers"
    config = stage.config.model_copy(
        update={"operator": OperatorConfig(principals=[engineers]), **update}
    )
    return replace(stage, config=config)


def _stages() -> dict[str, Stage]:
    stages = {name: _with_operator(s) for name, s in load_all_stages(ROOT / "stacks").items()}
    # staging in the middle of a cutover: its operator works on both environments.
    cutover = CutoverConfig.model_validate({"airflowVersion": "3.0.6", "environmentClass": "mw1.medium"})  # fmt: skip
    stages["staging"] = _with_operator(stages["staging"], cutover=cutover)
    return stages


STAGES = _stages()


def _operator(stage: Stage) -> str:
    return stage.role_arn(stage.operator_role_name)


def _ci(stage: Stage) -> str:
    return stage.role_arn(stage.ci_role_name)


def _kms_context(stage: Stage, tag: str) -> dict[str, str]:
    return {"kms:ViaService": f"s3.{stage.region}.amazonaws.com", "aws:ResourceTag/stage": tag}


def _call(
    principal: str, action: str, resource: str, stage: Stage, why: str, context: Any = None
) -> Request:
    """One request in `stage`'s account, over TLS; a KMS one against the stage's key policy."""
    policy = key_policy(stage) if action.startswith("kms:") else None
    return Request(principal, action, resource, stage.account_id, {**SECURE, **(context or {})}, policy, why)  # fmt: skip


def _own(stage: Stage) -> list[Request]:
    """What backup, restore, upgrade apply and cutover switch/finish do in their own stage."""
    principal, bucket = _operator(stage), stage.source_bucket_arn
    requests = []
    for environment in environments(stage):
        for action in ("airflow:InvokeRestApi", "airflow:CreateWebLoginToken"):
            requests.append(
                _call(principal, action, environment.airflow_operator_role_arn, stage, "Op")
            )
        requests.append(
            _call(principal, "airflow:GetEnvironment", environment.environment_arn, stage, "live")
        )
    for key in (f"{stage.backups_prefix}20261201T220000Z/variables.json", stage.cutover_record_key):
        for action in ("s3:PutObject", "s3:GetObject"):
            requests.append(_call(principal, action, f"{bucket}/{key}", stage, "records"))
    listing = {**SECURE, "s3:prefix": stage.backups_prefix}
    requests.append(_call(principal, "s3:ListBucket", bucket, stage, "backup --list", listing))
    # upgrade apply re-promotes the live pipelines into the stage's environments.
    for environment in environments(stage):
        dag = f"{bucket}/{environment.dags_prefix}x.py"
        requests.append(_call(principal, "s3:PutObject", dag, stage, "re-promote"))
        manifest = f"{bucket}/{environment.manifest_key}"
        requests.append(_call(principal, "s3:GetObject", manifest, stage, "manifest"))
    if stage.kms_key_alias is not None:
        key = stage.arn("kms", "key/0123abcd-0000-0000-0000-000000000000")
        for action in ("kms:GenerateDataKey", "kms:Decrypt", "kms:Encrypt"):
            context = _kms_context(stage, stage.name)
            requests.append(_call(principal, action, key, stage, "SSE-KMS", context))
    return requests


def _never(stage: Stage) -> list[Request]:
    """What the operator role must never do: Airflow's Admin or User, another stage's
    environments and records, environment and IAM changes, anything else of the bucket."""
    principal, bucket = _operator(stage), stage.source_bucket_arn
    requests = []
    for environment in environments(stage):
        for role in ("Admin", "User"):
            arn = environment.airflow_operator_role_arn.replace("/Op", f"/{role}")
            for action in ("airflow:InvokeRestApi", "airflow:CreateWebLoginToken"):
                requests.append(_call(principal, action, arn, stage, role))
        for action in ("airflow:UpdateEnvironment", "airflow:DeleteEnvironment"):
            requests.append(_call(principal, action, environment.environment_arn, stage, "change"))
    for action in ("iam:PassRole", "iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy"):
        requests.append(_call(principal, action, stage.execution_role_arn, stage, "IAM"))
        requests.append(_call(principal, action, _operator(stage), stage, "IAM"))
    for key in (
        stage.paths.requirements,
        stage.paths.plugins,
        stage.paths.startup_script,
        f"{stage.paths.athena_results}q.csv",
        f"{stage.paths.emr_logs}j-1/log.gz",
    ):
        requests.append(_call(principal, "s3:PutObject", f"{bucket}/{key}", stage, "not a record"))
    results = f"{bucket}/{stage.paths.athena_results}q.csv"
    requests.append(_call(principal, "s3:GetObject", results, stage, "query results"))
    backup = f"{bucket}/{stage.backups_prefix}20261201T220000Z/variables.json"
    for action in ("s3:DeleteObject", "s3:DeleteObjectVersion"):
        requests.append(_call(principal, action, backup, stage, "delete a backup"))
    lake = f"arn:aws:s3:::{stage.data_lake_bucket}/{stage.name}/x"
    requests.append(_call(principal, "s3:PutObject", lake, stage, "data lake"))
    if stage.kms_key_alias is not None:
        key = stage.arn("kms", "key/0123abcd-0000-0000-0000-000000000000")
        direct = {"aws:ResourceTag/stage": stage.name}
        requests.append(_call(principal, "kms:Decrypt", key, stage, "not through S3", direct))
        other = _kms_context(stage, "other")
        requests.append(_call(principal, "kms:Decrypt", key, stage, "another stage's key", other))
    # Every call of another stage: its environments' Op, its records, its key.
    for other in STAGES.values():
        if other.name == stage.name:
            continue
        for request in _own(other):
            why = f"{request.why} [of {other.name}]"
            requests.append(replace(request, principal=principal, why=why))
    return requests


def _ci_never(stage: Stage) -> list[Request]:
    """The CI role still reads Airflow as Viewer only, never reads or writes a metadata backup
    (variables, connection fields) and never records a switch."""
    principal, bucket = _ci(stage), stage.source_bucket_arn
    requests = []
    for environment in environments(stage):
        for action in ("airflow:InvokeRestApi", "airflow:CreateWebLoginToken"):
            op = environment.airflow_operator_role_arn
            requests.append(_call(principal, action, op, stage, "CI Op"))
            admin = op.replace("/Op", "/Admin")
            requests.append(_call(principal, action, admin, stage, "CI Admin"))
    backup = f"{bucket}/{stage.backups_prefix}b/variables.json"
    for action in ("s3:PutObject", "s3:GetObject", "s3:GetObjectVersion"):
        requests.append(_call(principal, action, backup, stage, "CI reads a backup"))
    record = f"{bucket}/{stage.cutover_record_key}"
    requests.append(_call(principal, "s3:PutObject", record, stage, "CI records a switch"))
    return requests


def _identity_policies() -> dict[str, list[Any]]:
    policies: dict[str, list[Any]] = {}
    for stage in STAGES.values():
        documents = operator_role(stage)
        assert documents is not None
        policies[_operator(stage)] = [p.document for p in documents.policies]
        if stage.config.delivery is not None:
            policies[_ci(stage)] = [p.document for p in ci_role_policies(stage, STAGES)]
    return policies


def _failures(decisions: list[Decision], allowed: bool) -> str:
    wrong = [d for d in decisions if d.allowed != allowed]
    return "\n".join(f"  {d.decision}: {d.request.principal} {d.request.describe()}" for d in wrong)


@pytest.fixture(scope="module")
def decided() -> dict[str, list[Decision]]:
    own = [r for s in STAGES.values() for r in _own(s)]
    never = [r for s in STAGES.values() for r in _never(s)]
    ci = [r for s in STAGES.values() if s.config.delivery is not None for r in _ci_never(s)]
    answers = evaluate_by_principal(_identity_policies(), [*own, *never, *ci])
    return {
        "own": answers[: len(own)],
        "never": answers[len(own) : len(own) + len(never)],
        "ci": answers[len(own) + len(never) :],
    }


def test_the_operator_may_do_what_the_lifecycle_commands_call_in_its_own_stage(decided) -> None:
    assert len(decided["own"]) >= 3 * 10
    # staging's cutover: green's Op role and DAG folder are the operator's too.
    resources = {d.request.resource for d in decided["own"]}
    assert any(r.endswith("role/mwaa-elt-staging-green/Op") for r in resources)
    assert any(r.endswith("/green/dags/x.py") for r in resources)
    assert _failures(decided["own"], allowed=True) == ""


def test_the_operator_may_not_be_admin_touch_another_stage_or_change_anything_else(
    decided,
) -> None:
    assert len(decided["never"]) > len(decided["own"])
    assert _failures(decided["never"], allowed=False) == ""


def test_the_ci_role_still_reads_airflow_as_viewer_only(decided) -> None:
    assert decided["ci"]
    assert _failures(decided["ci"], allowed=False) == ""


@pytest.mark.parametrize("name", ["dev", "staging", "prod"])
def test_only_the_named_principals_with_mfa_may_assume_the_operator_role(name) -> None:
    stage = STAGES[name]
    trust = operator_role_trust_policy(stage)
    engineers = f"arn:aws:iam::{stage.account_id}:role/platform-engineers"
    someone = f"arn:aws:iam::{stage.account_id}:role/data-analysts"
    foreign = "arn:aws:iam::999999999999:role/platform-engineers"
    mfa = {"aws:MultiFactorAuthPresent": "true"}

    def assume(principal: str, context: dict[str, str], why: str) -> Request:
        account = principal.split(":")[4]
        return Request(principal, "sts:AssumeRole", _operator(stage), stage.account_id,
                       {"aws:PrincipalAccount": account, **context}, trust, why)  # fmt: skip

    # Each caller may call sts:AssumeRole on anything: the role's trust decides.
    anything = [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}]  # fmt: skip
    policies = {p: anything for p in (engineers, someone, foreign)}
    allowed, *denied = evaluate_by_principal(
        policies,
        [
            assume(engineers, mfa, "named, with MFA"),
            assume(engineers, {}, "named, without MFA"),
            assume(engineers, {"aws:MultiFactorAuthPresent": "false"}, "named, MFA false"),
            assume(someone, mfa, "not named"),
            assume(foreign, mfa, "another account"),
        ],
    )
    assert allowed.allowed, allowed
    assert [d.decision for d in denied if d.allowed] == [], [d.request.why for d in denied]
