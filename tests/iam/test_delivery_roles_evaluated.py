"""The CI promoter and release-reader roles, proven by the IAM evaluator against the calls the
promotion code really makes (recorded while `promote`, `status` and `rollback` run on moto's S3
and MWAA's Stubber), plus what they must never be able to do."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from iam_evaluator import Decision, Request, evaluate_by_principal
from promotion_calls import ApiCall, recording, requests_for
from typer.testing import CliRunner

from mwaa_elt import cli
from mwaa_elt.infra.documents.iam_policies import (
    ci_role_policies,
    ci_role_trust_policy,
    delivery_roles,
    release_build_policies,
    release_reader_policies,
    release_reader_trust_policy,
)
from mwaa_elt.promote import gates
from mwaa_elt.promote.mwaa import MwaaEnvironment
from mwaa_elt.promote.sandbox import create_stage_buckets, sandbox
from mwaa_elt.stage import Stage, load_all_stages

ROOT = Path(__file__).resolve().parents[2]
STAGES = load_all_stages(ROOT / "stacks")
NAMES = [n for n in ("dev", "staging", "prod") if n in STAGES]
FOREIGN_ACCOUNT = "999999999999"


def _ci(stage: Stage) -> str:
    return stage.role_arn(stage.ci_role_name)


def _reader(stage: Stage) -> str:
    return stage.role_arn(stage.release_reader_role_name)


def _run(*args: str) -> None:
    result = CliRunner().invoke(cli.app, list(args))
    assert result.exit_code == 0, (args, result.output, result.exception)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[ApiCall]]]:
    """Every step of a release, run for real against moto, with the calls each step made."""
    project = tmp_path_factory.mktemp("project")
    for item in ("Pulumi.yaml", "stacks", "pipelines", "dag_templates", "infra/environment"):
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, project / item)
        else:
            shutil.copy(source, project / item)
    steps: dict[str, list[ApiCall]] = {}
    with sandbox(STAGES) as running, pytest.MonkeyPatch.context() as patch:
        create_stage_buckets(running.endpoint_url, STAGES)
        patch.setenv("AWS_ENDPOINT_URL", running.endpoint_url)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        patch.delenv("AWS_PROFILE", raising=False)
        patch.chdir(project)
        # The DagBag gate loads DAGs locally (no AWS call); the calls are what matter here.
        patch.setattr(gates, "dagbag_gate", lambda *args, **kwargs: None)
        patch.setattr(gates, "start_dagbag_gate", lambda *args, **kwargs: None)
        no_mwaa = ("--yes", "--skip-mwaa-checks")
        sql = project / "pipelines/movielens_scifi/sql/create_scifi.sql"
        script = [
            ("promote dev", lambda: _run("promote", "--to", "dev", *no_mwaa)),
            ("status dev", lambda: _run("status", "--stage", "dev", "--json")),
            (
                "promote dev again",
                lambda: (
                    sql.write_text(sql.read_text() + "\n-- second\n"),
                    _run("promote", "--to", "dev", *no_mwaa),
                ),
            ),
            (
                "rollback dev",
                lambda: _run("rollback", "movielens_scifi", "--stage", "dev", *no_mwaa),
            ),
            (
                "promote dev to staging",
                lambda: _run("promote", "--from", "dev", "--to", "staging", *no_mwaa),
            ),
            (
                "promote staging to prod",
                lambda: _run("promote", "--from", "staging", "--to", "prod", *no_mwaa),
            ),
            ("status prod", lambda: _run("status", "--stage", "prod", "--json")),
            (
                "prune dev",
                lambda: (
                    shutil.rmtree(project / "pipelines/scifi_quality"),
                    _run("promote", "--to", "dev", "--prune", *no_mwaa),
                ),
            ),
        ]
        for step, action in script:
            with recording() as calls:
                action()
            steps[step] = calls
        for name in NAMES:
            with recording() as calls:
                _mwaa_calls(STAGES[name])
            steps[f"mwaa {name}"] = calls
    yield steps


def _mwaa_calls(stage: Stage) -> None:
    """What promotion asks MWAA: state, import errors, served DAG sources, latest runs."""
    client = boto3.client(
        "mwaa", region_name=stage.region, aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    stubber.add_response(
        "get_environment",
        {"Environment": {"Name": stage.environment_name, "Status": "AVAILABLE"}},
        {"Name": ANY},
    )
    rest: list[dict[str, Any]] = [{"import_errors": [], "total_entries": 0}]
    if stage.airflow.major >= 3:
        rest.append({"content": "# dag"})
    else:
        rest += [{"file_token": "abc"}, {"content": "# dag"}]
    rest.append({"dag_runs": [{"state": "success"}]})
    for body in rest:
        stubber.add_response(
            "invoke_rest_api",
            {"RestApiStatusCode": 200, "RestApiResponse": body},
            {"Name": ANY, "Path": ANY, "Method": "GET", "QueryParameters": ANY}
            if "import_errors" in body or "dag_runs" in body
            else {"Name": ANY, "Path": ANY, "Method": "GET"},
        )
    with stubber:
        environment = MwaaEnvironment(stage, client)
        environment.require_available()
        environment.import_errors()
        environment.dag_source("movielens_scifi")
        environment.latest_run_state("movielens_scifi")


def _principal_for(step: str):
    """Who makes a step's calls in CI: the target's CI role, or the source's release reader."""
    if step.startswith("promote ") and " to " in step:
        source = step.removeprefix("promote ").partition(" to ")[0]

        def principal(stage: Stage) -> str:
            return _reader(stage) if stage.name == source else _ci(stage)

        return principal
    return _ci


@pytest.fixture(scope="module")
def needed(recorded: dict[str, list[ApiCall]]) -> list[Request]:
    requests: list[Request] = []
    for step, calls in recorded.items():
        requests += requests_for(calls, STAGES, _principal_for(step), step)
    # prod's requireSourceRunSuccess gate reads staging's runs through staging's reader.
    requests += requests_for(recorded["mwaa staging"], STAGES, _reader, "source-runs gate")
    # A CI role reaches its source stage only by assuming the source's release reader.
    for stage in STAGES.values():
        source = STAGES.get(stage.promotes_from or "")
        if source is not None:
            requests.append(
                Request(
                    _ci(stage),
                    "sts:AssumeRole",
                    _reader(source),
                    source.account_id,
                    {},
                    release_reader_trust_policy(source, STAGES),
                    f"{stage.name} reads {source.name}",
                )
            )
    unique = {
        (r.principal, r.action, r.resource, json.dumps(dict(r.context), sort_keys=True)): r
        for r in requests
    }
    return list(unique.values())


def _policies() -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for stage in STAGES.values():
        for role in delivery_roles(stage, STAGES):
            found[stage.role_arn(role.name)] = [p.document for p in role.policies]
    return found


def _forbidden(needed: list[Request]) -> list[Request]:
    """What no CI role or release reader may do: other stages, environment and IAM changes,
    Pulumi's files, deleting what releases point at, and anything in a foreign account."""
    denied: list[Request] = []
    for request in needed:
        mine = next(s for s in STAGES.values() if request.principal in (_ci(s), _reader(s)))
        if request.action == "sts:AssumeRole":
            continue
        for other in STAGES.values():
            if other.name == mine.name:
                continue
            moved = request.resource
            for a, b in (
                (mine.source_bucket, other.source_bucket),
                (mine.environment_name, other.environment_name),
                (mine.account_id, other.account_id),
                (mine.region, other.region),
            ):
                moved = moved.replace(a, b)
            context = {
                k: (other.name if k == "aws:ResourceTag/stage" else v)
                for k, v in request.context.items()
            }
            if "kms:ViaService" in context:
                context["kms:ViaService"] = f"s3.{other.region}.amazonaws.com"
            denied.append(
                dataclasses.replace(
                    request,
                    resource=moved,
                    resource_account=other.account_id,
                    context=context,
                    resource_policy=None,
                    why=f"{request.why} [on {other.name}]",
                )
            )
        denied.append(
            dataclasses.replace(
                request,
                resource=request.resource.replace(mine.account_id, FOREIGN_ACCOUNT).replace(
                    mine.source_bucket, mine.source_bucket.replace(mine.account_id, FOREIGN_ACCOUNT)
                ),
                resource_account=FOREIGN_ACCOUNT,
                resource_policy=None,
                why=f"{request.why} [foreign account]",
            )
        )
    for stage in STAGES.values():
        bucket = stage.source_bucket_arn
        for principal in (_ci(stage), _reader(stage)):

            def deny(
                action: str,
                resource: str,
                context: dict[str, Any] | None = None,
                principal: str = principal,
                stage: Stage = stage,
            ) -> None:
                denied.append(
                    Request(
                        principal,
                        action,
                        resource,
                        stage.account_id,
                        {"aws:SecureTransport": "true", **(context or {})},
                        None,
                        "must never",
                    )
                )

            for action in (
                "airflow:UpdateEnvironment",
                "airflow:DeleteEnvironment",
                "airflow:CreateWebLoginToken",
            ):
                deny(action, stage.environment_arn)
            deny("airflow:InvokeRestApi", stage.airflow_rbac_role_arn.replace("/Viewer", "/Admin"))
            deny("airflow:InvokeRestApi", stage.airflow_rbac_role_arn.replace("/Viewer", "/Op"))
            for action in (
                "iam:PutRolePolicy",
                "iam:AttachRolePolicy",
                "iam:UpdateAssumeRolePolicy",
                "iam:PassRole",
            ):
                deny(action, stage.execution_role_arn)
                deny(action, stage.role_arn(stage.ci_role_name))
            deny("iam:CreateRole", stage.role_arn("anything"))
            for key in (stage.paths.requirements, stage.paths.plugins, stage.paths.startup_script):
                deny("s3:PutObject", f"{bucket}/{key}")
            for key in (
                stage.manifest_key,
                f"{stage.bundles_prefix}h.tar.gz",
                f"{stage.scripts_prefix}p/0123abcd/x.py",
            ):
                deny("s3:DeleteObject", f"{bucket}/{key}")
            deny("s3:DeleteObjectVersion", f"{bucket}/{stage.dags_prefix}x.py")
            deny("s3:PutBucketPolicy", bucket)
            deny("s3:ListBucket", bucket, {"s3:prefix": stage.paths.athena_results})
            deny("s3:GetObject", f"{bucket}/{stage.paths.athena_results}q.csv")
        # The reader only reads releases.
        for action, key in (
            ("s3:GetObject", f"{stage.dags_prefix}x.py"),
            ("s3:PutObject", stage.manifest_key),
            ("s3:DeleteObject", stage.lock_key),
        ):
            denied.append(
                Request(
                    _reader(stage),
                    action,
                    f"{bucket}/{key}",
                    stage.account_id,
                    {"aws:SecureTransport": "true"},
                    None,
                    "reader must never",
                )
            )
    # Only the next stage's CI role may assume a release reader.
    for stage in STAGES.values():
        for other in STAGES.values():
            if other.promotes_from == stage.name:
                continue
            denied.append(
                Request(
                    _ci(other),
                    "sts:AssumeRole",
                    _reader(stage),
                    stage.account_id,
                    {},
                    release_reader_trust_policy(stage, STAGES)
                    if any(s.promotes_from == stage.name for s in STAGES.values())
                    else None,
                    f"{other.name} CI assumes {stage.name}'s reader",
                )
            )
    return denied


@pytest.fixture(scope="module")
def decisions(needed: list[Request]) -> dict[str, list[Decision]]:
    forbidden = _forbidden(needed)
    answers = evaluate_by_principal(_policies(), [*needed, *forbidden])
    return {"needed": answers[: len(needed)], "forbidden": answers[len(needed) :]}


def _report(decisions: list[Decision]) -> str:
    return "\n".join(
        f"  {d.decision}: {d.request.principal} {d.request.describe()}" for d in decisions
    )


def test_the_release_makes_the_calls_the_roles_are_built_for(recorded, needed) -> None:
    """The recording is not empty: writes, deletes, version reads and MWAA calls all happen."""
    actions = {(r.principal.rsplit("/", 1)[1], r.action) for r in needed}
    for name in NAMES:
        ci = STAGES[name].ci_role_name
        assert {
            (ci, "s3:PutObject"),
            (ci, "s3:GetObject"),
            (ci, "s3:ListBucket"),
            (ci, "airflow:GetEnvironment"),
            (ci, "airflow:InvokeRestApi"),
        } <= actions, name
    assert ("mwaa-elt-dev-ci", "s3:DeleteObject") in actions  # prune and the lock
    assert ("mwaa-elt-dev-ci", "s3:GetObjectVersion") in actions  # rollback
    # status and promote list dags/ by content (ListObjectsV2: s3:ListBucket, above); only
    # records written before ETags were recorded are listed by version (s3:ListBucketVersions).
    assert ("mwaa-elt-dev-release-reader", "s3:GetObject") in actions
    assert ("mwaa-elt-prod-ci", "kms:GenerateDataKey") in actions  # prod's key


def test_every_call_of_promote_status_and_rollback_is_allowed(decisions) -> None:
    refused = [d for d in decisions["needed"] if not d.allowed]
    assert not refused, "the CI roles refuse calls the promotion makes:\n" + _report(refused)


def test_nothing_of_another_stage_no_environment_or_iam_change_is_allowed(decisions) -> None:
    allowed = [d for d in decisions["forbidden"] if d.allowed]
    assert not allowed, "the CI roles reach beyond their stage:\n" + _report(allowed)
    assert len(decisions["forbidden"]) > 100


def test_ci_roles_trust_only_this_repository_in_the_stage_environment() -> None:
    """GitHub's token keys (…:sub, …:aud) are unknown to the simulator's IAM data, which drops
    them; the evaluator proves who may assume, the exact `sub` condition is asserted as data."""
    host = next(s for s in STAGES.values() if s.config.delivery.pipeline is not None)
    build_role = host.role_arn(host.release_build_role_name)
    requests, expected = [], []
    for stage in STAGES.values():
        trust = ci_role_trust_policy(stage, STAGES)
        (github,) = [s for s in trust["Statement"] if "Federated" in s["Principal"]]
        assert github["Principal"] == {"Federated": stage.github_oidc_provider_arn}
        assert github["Condition"] == {
            "StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": (
                    f"repo:{stage.config.delivery.repository}:environment:{stage.name}"
                ),
            }
        }
        others = [o for o in STAGES.values() if o.name != stage.name]
        for principal, action, ok in (
            (build_role, "sts:AssumeRole", True),
            (stage.execution_role_arn, "sts:AssumeRole", False),
            *((_ci(o), "sts:AssumeRole", False) for o in others),
            *((o.github_oidc_provider_arn, "sts:AssumeRoleWithWebIdentity", False) for o in others),
        ):
            requests.append(
                Request(principal, action, _ci(stage), stage.account_id, {}, trust, principal)
            )
            expected.append(ok)
    # Across accounts both sides must allow: the build role's own policy names every CI role.
    build_policies = [p.document for p in release_build_policies(host, STAGES)]
    decisions = evaluate_by_principal({build_role: build_policies, **_policies()}, requests)
    assert [d.allowed for d in decisions] == expected, _report(decisions)


def test_ci_policies_carry_no_wildcard_action_and_no_star_resource() -> None:
    for stage in STAGES.values():
        for policy in [*ci_role_policies(stage, STAGES), *release_reader_policies(stage)]:
            for statement in policy.document["Statement"]:
                actions = (
                    statement["Action"]
                    if isinstance(statement["Action"], list)
                    else [statement["Action"]]
                )
                assert all("*" not in a for a in actions), statement
                assert statement.get("Resource") != "*", statement
