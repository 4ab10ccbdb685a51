"""The Delivery component under Pulumi's mocks: CI roles in every stage with a delivery block,
the release pipeline only where a stack hosts it, wired to the documents of iam_policies and the
definition of release_pipeline."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import botocore.session
import pytest
import yaml
from botocore.validate import ParamValidator

from mwaa_elt.errors import ConfigError
from mwaa_elt.infra.documents.iam_policies import delivery_roles, release_build_policies
from mwaa_elt.infra.documents.release_pipeline import (
    artifact_bucket_name,
    build_projects,
    pipeline_definition,
    promotion_order,
)
from mwaa_elt.infra.preview import PlannedResource, Preview, run_preview
from mwaa_elt.stage import Stage, load_all_stages, load_stage

ROOT = Path(__file__).resolve().parents[2]
STAGES = load_all_stages(ROOT / "stacks")


@cache
def _preview(name: str) -> Preview:
    return run_preview(STAGES[name])


def _of_type(preview: Preview, type_: str) -> list[PlannedResource]:
    return [r for r in preview.resources if r.type == type_]


def _named(preview: Preview, name: str) -> PlannedResource:
    (resource,) = [r for r in preview.resources if r.name == name]
    return resource


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_stage_gets_its_ci_roles_with_the_documents_of_iam_policies(name: str) -> None:
    stage, preview = STAGES[name], _preview(name)
    expected = {role.name: role for role in delivery_roles(stage, STAGES)}
    roles = {
        r.settings["name"]: r
        for r in _of_type(preview, "aws:iam/role:Role")
        if r.parent == "delivery" and r.settings["name"] in expected
    }
    assert set(roles) == set(expected)
    assert (stage.release_reader_role_name in roles) == (name in {"dev", "staging"})
    for role_name, resource in roles.items():
        assert json.loads(resource.settings["assumeRolePolicy"]) == expected[role_name].trust
        for policy in expected[role_name].policies:
            attached = _named(preview, f"{resource.name}-{policy.name}")
            assert json.loads(attached.settings["policy"]) == policy.document
    oidc = _of_type(preview, "aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert [r.settings for r in oidc] == [
        {
            "clientIdLists": ["sts.amazonaws.com"],
            "url": "https://token.actions.githubusercontent.com",
        }
    ]
    assert preview.outputs["ci_roles"][stage.ci_role_name] == stage.role_arn(stage.ci_role_name)


def test_only_the_hosting_stack_declares_the_release_pipeline() -> None:
    for name in ("dev", "staging"):
        assert not _of_type(_preview(name), "aws:codepipeline/pipeline:Pipeline")
        assert not _of_type(_preview(name), "aws:codebuild/project:Project")
    prod = _preview("prod")
    assert len(_of_type(prod, "aws:codepipeline/pipeline:Pipeline")) == 1
    assert prod.outputs["release_pipeline"] == "mwaa-elt-release"


def test_release_pipeline_promotes_in_order_behind_approvals_with_prods_key() -> None:
    prod, preview = STAGES["prod"], _preview("prod")
    pipeline = _one_pipeline(preview)
    stages = pipeline["stages"]
    assert [s["name"] for s in stages] == ["Source", "Validate", "Dev", "Staging", "Prod"]
    source = stages[0]["actions"][0]
    assert source["configuration"]["FullRepositoryId"] == "example-org/mwaa-elt"
    connection = _named(preview, "delivery-github")
    assert connection.settings == {"name": "mwaa-elt-github", "providerType": "GitHub"}
    assert source["configuration"]["ConnectionArn"] == preview.states["delivery-github"]["arn"]
    for stage in stages[3:]:
        approval, promote = sorted(stage["actions"], key=lambda a: a["runOrder"])
        assert (approval["category"], approval["provider"]) == ("Approval", "Manual")
        topic = preview.states["delivery-approvals"]["arn"]
        assert approval["configuration"]["NotificationArn"] == topic
        assert promote["configuration"]["ProjectName"] == "mwaa-elt-promote"
    (store,) = pipeline["artifactStores"]
    assert store["location"] == artifact_bucket_name(prod)
    assert store["encryptionKey"]["id"] == preview.outputs["kms_key_arn"]
    assert pipeline["roleArn"] == preview.states["delivery-pipeline-role"]["arn"]
    assert pipeline["executionMode"] == "SUPERSEDED"


def _one_pipeline(preview: Preview) -> dict:
    (pipeline,) = _of_type(preview, "aws:codepipeline/pipeline:Pipeline")
    return pipeline.settings


def test_build_projects_run_the_buildspecs_as_the_build_role() -> None:
    prod, preview = STAGES["prod"], _preview("prod")
    projects = {
        r.settings["name"]: r.settings for r in _of_type(preview, "aws:codebuild/project:Project")
    }
    assert {n: p["source"]["buildspec"] for n, p in projects.items()} == {
        p.name: p.buildspec for p in build_projects(prod)
    }
    build_role = preview.states["delivery-build-role"]["arn"]
    assert {p["serviceRole"] for p in projects.values()} == {build_role}
    pr = projects["mwaa-elt-pr"]["source"]
    assert pr["type"] == "GITHUB" and pr["auth"]["type"] == "CODECONNECTIONS"
    (webhook,) = _of_type(preview, "aws:codebuild/webhook:Webhook")
    (group,) = webhook.settings["filterGroups"]
    assert {f["type"]: f["pattern"] for f in group["filters"]} == {
        "EVENT": "PULL_REQUEST_CREATED, PULL_REQUEST_UPDATED, PULL_REQUEST_REOPENED",
        "BASE_REF": "^refs/heads/main$",
    }
    # The builds reach a stage only through its CI role.
    (policy,) = release_build_policies(prod, STAGES)
    assume = next(s for s in policy.document["Statement"] if s["Sid"] == "AssumeStageCiRoles")
    assert assume["Resource"] == [s.role_arn(s.ci_role_name) for s in promotion_order(STAGES)]
    for statement in policy.document["Statement"]:
        assert not any(a.startswith(("iam:", "airflow:")) for a in statement["Action"])


def test_pipeline_definition_is_a_valid_create_pipeline_request() -> None:
    request = pipeline_definition(
        STAGES["prod"],
        STAGES,
        role_arn="arn:aws:iam::333333333333:role/mwaa-elt-release-pipeline",
        artifact_bucket="mwaa-elt-release-artifacts-333333333333",
        connection_arn="arn:aws:codeconnections:eu-central-1:333333333333:connection/abc",
        approval_topic_arn="arn:aws:sns:eu-central-1:333333333333:mwaa-elt-release-approvals",
    )
    model = botocore.session.get_session().get_service_model("codepipeline")
    report = ParamValidator().validate(request, model.operation_model("CreatePipeline").input_shape)
    assert not report.has_errors(), report.generate_report()


# -- the stage model's delivery block ----------------------------------------------------------


def _edit(project: Path, stage: str, edit) -> None:
    path = project / "stacks" / f"Pulumi.{stage}.yaml"
    data = yaml.safe_load(path.read_text())
    edit(data["config"])
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _errors(project: Path, stage: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_stage(project / "stacks", stage)
    return "\n".join(caught.value.messages)


def test_a_repository_that_is_not_owner_slash_name_is_refused(scratch_project: Path) -> None:
    _edit(
        scratch_project,
        "dev",
        lambda c: c["mwaa-elt:delivery"].update(repository="https://github.com/x/y.git"),
    )
    message = _errors(scratch_project, "dev")
    assert (
        "mwaa-elt:delivery.repository: 'https://github.com/x/y.git' is not a GitHub repository"
        in message
    )
    assert "owner/name" in message


def test_an_unknown_delivery_key_suggests_the_right_one(scratch_project: Path) -> None:
    _edit(
        scratch_project, "prod", lambda c: c["mwaa-elt:delivery"]["pipeline"].update(brnach="main")
    )
    assert "mwaa-elt:delivery.pipeline.brnach: unknown key; did you mean 'branch'?" in _errors(
        scratch_project, "prod"
    )


def test_two_stacks_hosting_the_pipeline_are_refused(scratch_project: Path) -> None:
    _edit(
        scratch_project,
        "staging",
        lambda c: c["mwaa-elt:delivery"].update(pipeline={"branch": "main"}),
    )
    assert "stack prod hosts the release pipeline too" in _errors(scratch_project, "staging")


def test_a_chain_with_a_stage_missing_its_delivery_block_is_refused(scratch_project: Path) -> None:
    _edit(scratch_project, "dev", lambda c: c.pop("mwaa-elt:delivery"))
    message = _errors(scratch_project, "staging")
    assert "staging promotes from dev, whose stack has no delivery block" in message


def test_a_stack_without_delivery_declares_no_delivery_resources(scratch_project: Path) -> None:
    for name in ("dev", "staging", "prod"):
        _edit(scratch_project, name, lambda c: c.pop("mwaa-elt:delivery"))
    stage: Stage = load_stage(scratch_project / "stacks", "dev")
    environment = ROOT / "infra" / "environment"
    preview = run_preview(stage, environment)
    assert not [r for r in preview.resources if r.name.startswith("delivery")]
    assert "ci_roles" not in preview.outputs


def test_infra_preview_of_prod_shows_the_delivery_resources() -> None:
    from typer.testing import CliRunner

    from mwaa_elt.cli import app

    result = CliRunner().invoke(app, ["infra", "preview", "--stage", "prod", "-C", str(ROOT)])
    assert result.exit_code == 0, result.output
    for shown in (
        "aws:codepipeline/pipeline:Pipeline",
        "aws:codebuild/project:Project",
        "aws:codeconnections/connection:Connection",
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        "mwaa-elt-prod-ci",
        "mwaa-elt-release-artifacts-333333333333",
    ):
        assert shown in result.output, shown
