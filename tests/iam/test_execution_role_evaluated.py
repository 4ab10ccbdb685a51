"""The execution role proven by a real IAM evaluator against the calls the rendered DAGs make.

For each stage, every example pipeline is rendered for that stage; the calls its operators make
(tests/iam/iam_calls.py) and MWAA's baseline must all be allowed, and the same calls against every
other stage's resources, untagged or foreign-tagged clusters and foreign accounts must be denied.
"""

from __future__ import annotations

from collections import Counter
from functools import cache
from pathlib import Path

import pytest
from iam_calls import as_principal, execution_role_requests, in_foreign_account, on_other_clusters
from iam_evaluator import Decision, Request, evaluate, evaluate_by_principal

from mwaa_elt.infra.documents.iam_policies import (
    execution_role_policies,
    execution_role_trust_policy,
)
from mwaa_elt.infra.storage import tls_only_policy
from mwaa_elt.render import render_pipelines
from mwaa_elt.spec import discover_specs, validate_paths
from mwaa_elt.stage import Stage, load_all_stages

ROOT = Path(__file__).resolve().parents[2]
STAGES = load_all_stages(ROOT / "stacks")
NAMES = sorted(STAGES)


@cache
def _dag_files(name: str) -> dict[str, str]:
    """Every example pipeline rendered for stage `name`: pipeline → DAG file text."""
    stage = STAGES[name]
    report = validate_paths(discover_specs(ROOT / "pipelines"), STAGES)
    assert report.ok, report.problems
    result = render_pipelines(report.pipelines, stage, ROOT / "dag_templates", project_root=ROOT)
    return {p: result.files[r.dag_path].decode() for p, r in result.pipelines.items()}


@cache
def _requests(name: str) -> tuple[Request, ...]:
    return tuple(execution_role_requests(STAGES[name], _dag_files(name)))


def _documents(stage: Stage) -> list[dict]:
    return [p.document for p in execution_role_policies(stage)]


@cache
def _all_decisions() -> dict[str, dict[str, list[Decision]]]:
    """One evaluator run for the module: per stage the needed calls, then every variant that
    must be denied (other stages' calls, untagged and re-tagged clusters, foreign accounts)."""
    batches: dict[str, tuple[list[Request], list[Request]]] = {}
    for name in NAMES:
        stage = STAGES[name]
        needed = list(_requests(name))
        denied: list[Request] = []
        for other in (STAGES[o] for o in NAMES if o != name):
            foreign = as_principal(_requests(other.name), stage.execution_role_arn)
            denied += [r for r in foreign if r.scoped]
            denied += on_other_clusters(needed, other.name)
        denied += in_foreign_account(stage, needed)
        batches[name] = (needed, denied)
    everything = [r for needed, denied in batches.values() for r in (*needed, *denied)]
    answers = iter(
        evaluate_by_principal(
            {STAGES[n].execution_role_arn: _documents(STAGES[n]) for n in NAMES}, everything
        )
    )
    return {
        name: {
            "needed": [next(answers) for _ in needed],
            "denied": [next(answers) for _ in denied],
        }
        for name, (needed, denied) in batches.items()
    }


def _decisions(name: str) -> dict[str, list[Decision]]:
    return _all_decisions()[name]


def _report(decisions: list[Decision]) -> str:
    return "\n".join(f"  {d.decision}: {d.request.describe()}" for d in decisions)


@pytest.mark.parametrize("name", NAMES)
def test_every_call_the_rendered_dags_and_mwaa_make_is_allowed(name: str) -> None:
    decisions = _decisions(name)["needed"]
    refused = [d for d in decisions if not d.allowed]
    assert not refused, f"{name}: the execution role refuses calls its DAGs make:\n" + _report(
        refused
    )
    # The mapping covers what the examples use: EMR, Athena, Glue, S3, SNS, secrets, MWAA.
    services = Counter(d.request.action.split(":")[0] for d in decisions)
    assert {"elasticmapreduce", "athena", "glue", "s3", "secretsmanager", "airflow", "iam"} <= set(
        services
    ), services


@pytest.mark.parametrize("name", NAMES)
def test_no_context_key_the_mapping_sends_is_ignored_by_the_evaluator(name: str) -> None:
    """A key the evaluator drops as irrelevant to the action would make a condition vacuous."""
    ignored = {
        (d.request.action, key)
        for d in _decisions(name)["needed"]
        for key in d.ignored_context_keys
        if key != "aws:SecureTransport"
    }
    assert not ignored, ignored


@pytest.mark.parametrize("name", NAMES)
def test_other_stages_untagged_clusters_and_foreign_accounts_are_denied(name: str) -> None:
    decisions = _decisions(name)["denied"]
    allowed = [d for d in decisions if d.allowed]
    assert not allowed, f"{name}: the execution role reaches beyond its stage:\n" + _report(allowed)
    kinds = {d.request.why.rsplit("[", 1)[-1] for d in decisions if "[" in d.request.why}
    assert {"untagged]", "foreign account]"} <= kinds


def test_prod_reads_the_emr_subnet_variable_through_secrets_manager_with_its_key() -> None:
    """The regression of issue 9: prod's EMR pipeline could not read emr_subnet_id."""
    prod = STAGES["prod"]
    decryptions = [
        d
        for d in _decisions("prod")["needed"]
        if d.request.action == "kms:Decrypt"
        and d.request.context.get("kms:ViaService") == f"secretsmanager.{prod.region}.amazonaws.com"
    ]
    assert decryptions and all(d.allowed for d in decryptions)
    # ... only through Secrets Manager: the same decryption asked directly is refused.
    direct = [
        Request(
            principal=prod.execution_role_arn,
            action="kms:Decrypt",
            resource=decryptions[0].request.resource,
            resource_account=prod.account_id,
            context={"aws:ResourceTag/stage": "prod", "aws:SecureTransport": "true"},
            resource_policy=decryptions[0].request.resource_policy,
        )
    ]
    assert not evaluate(_documents(prod), direct)[0].allowed


def test_a_single_key_sensor_gets_404_for_a_missing_key() -> None:
    """S3 answers 404 (the sensor waits) only with ListBucket; prod's EMR pipeline waits on a key."""
    checks = [
        d
        for d in _decisions("prod")["needed"]
        if d.request.action == "s3:ListBucket" and "404" in d.request.why
    ]
    assert checks and all(d.allowed for d in checks)


def test_a_request_without_tls_is_denied_by_the_bucket_policy() -> None:
    dev = STAGES["dev"]
    reads = [r for r in _requests("dev") if r.action == "s3:GetObject" and r.resource_policy]
    insecure = [
        Request(**{**r.__dict__, "context": {**r.context, "aws:SecureTransport": "false"}})
        for r in reads[:3]
    ]
    decisions = evaluate(_documents(dev), insecure)
    assert [d.decision for d in decisions] == ["ExplicitlyDenied"] * len(insecure)


@pytest.mark.parametrize("name", NAMES)
def test_only_this_stages_environment_may_assume_the_role(name: str) -> None:
    stage = STAGES[name]
    trust = execution_role_trust_policy(stage)

    def assume(source_account: str, source_arn: str) -> Request:
        return Request(
            principal="airflow-env.amazonaws.com",
            action="sts:AssumeRole",
            resource=stage.execution_role_arn,
            resource_account=stage.account_id,
            context={"aws:SourceAccount": source_account, "aws:SourceArn": source_arn},
            resource_policy=trust,
        )

    others = [STAGES[o] for o in NAMES if o != name]
    requests = [
        assume(stage.account_id, stage.environment_arn),
        *(assume(o.account_id, o.environment_arn) for o in others),
        assume(stage.account_id, stage.environment_arn.replace(stage.environment_name, "other")),
    ]
    decisions = evaluate([], requests)
    assert [d.allowed for d in decisions] == [True] + [False] * (len(requests) - 1), _report(
        decisions
    )


@pytest.mark.parametrize("name", NAMES)
def test_mwaa_dr_dags_write_their_own_stages_work_area_and_no_backup(name: str) -> None:
    """On Airflow 2, mwaa-dr's DAGs stream tables to `.mwaa-elt/backups/mwaa-dr/` of the stage's
    bucket and read them back; the backups `mwaa-elt backup` files under their ids, and every
    other stage's bucket, stay out of reach. A 3.x stage (no mwaa-dr) may not write there."""
    stage = STAGES[name]

    def s3(action: str, owner: Stage, key: str) -> Request:
        bucket = f"arn:{owner.partition}:s3:::{owner.source_bucket}"
        return Request(
            principal=stage.execution_role_arn,
            action=action,
            resource=f"{bucket}/{key}",
            resource_account=owner.account_id,
            context={"aws:SecureTransport": "true"},
            resource_policy=tls_only_policy(bucket),
            why=f"{action} {owner.name}:{key}",
        )

    work = f"{stage.paths.mwaa_dr}task_instance.csv"
    backup = f"{stage.backups_prefix}20261201T220000Z/task_instance.csv"
    own = [s3("s3:PutObject", stage, work), s3("s3:GetObject", stage, work)]
    refused = [
        s3("s3:PutObject", stage, backup),
        s3("s3:GetObject", stage, backup),
        s3("s3:PutObject", stage, f"{stage.backups_prefix}20261201T220000Z-x/a.csv"),
        s3("s3:PutObject", stage, f"{stage.paths.tool_state}manifest.json"),
        s3("s3:PutObject", stage, f"{stage.backups_prefix}mwaa-dr.csv"),
        s3("s3:PutObject", stage, f"{stage.backups_prefix}other/variable.csv"),
    ]
    for other in (STAGES[o] for o in NAMES if o != name):
        refused.append(s3("s3:PutObject", other, f"{other.paths.mwaa_dr}task_instance.csv"))
    decisions = evaluate(_documents(stage), [*own, *refused])
    # A 3.x stage neither writes nor reads it (what an earlier 2.x environment left is denied).
    on_line_2 = stage.airflow.major == 2
    assert [d.allowed for d in decisions[:2]] == [on_line_2, on_line_2], _report(decisions[:2])
    wrongly = [d for d in decisions[2:] if d.allowed]
    assert not wrongly, _report(wrongly)
