"""The release pipeline as data: CodePipeline stages and CodeBuild projects from the stage model.

Pure functions: the Pulumi component (`mwaa_elt.infra.delivery`) deploys exactly these, and the
tests validate them against botocore's CreatePipeline model. The pipeline follows each stage's
`promotesFrom`: the stage nothing promotes from gets the working tree, every later stage waits for
a manual approval and promotes exactly what the previous stage's manifest records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mwaa_elt.stage import Stage

VALIDATE_BUILDSPEC = "ci/codebuild/buildspec-validate.yml"
PROMOTE_BUILDSPEC = "ci/codebuild/buildspec-promote.yml"
# A push touching only these paths starts a release.
RELEASE_PATHS = [
    "pipelines/**",
    "dag_templates/**",
    "src/**",
    "stacks/**",
    "requirements/**",
    "pyproject.toml",
    "Makefile",
    "make/**",
    "ci/codebuild/**",
]
PULL_REQUEST_EVENTS = "PULL_REQUEST_CREATED, PULL_REQUEST_UPDATED, PULL_REQUEST_REOPENED"


@dataclass(frozen=True)
class BuildProject:
    """One CodeBuild project of the release: its name, buildspec and how it is triggered."""

    name: str
    buildspec: str
    source: str  # CODEPIPELINE, or GITHUB for the pull-request gate
    description: str


def promotion_order(stages: Mapping[str, Stage]) -> list[Stage]:
    """Stages with a delivery block, each after the stage it promotes from."""
    order: list[Stage] = []
    pending = {n: s for n, s in stages.items() if s.config.delivery is not None}
    while pending:
        done = {s.name for s in order}
        ready = sorted(
            n for n, s in pending.items() if s.promotes_from is None or s.promotes_from in done
        )
        if not ready:
            raise ValueError(f"promotesFrom forms a cycle among {sorted(pending)}")
        for name in ready:
            order.append(pending.pop(name))
    return order


def artifact_bucket_name(host: Stage) -> str:
    return f"{host.config.name_prefix}-release-artifacts-{host.account_id}"


def connection_name(host: Stage) -> str:
    return f"{host.config.name_prefix}-github"


def approval_topic_name(host: Stage) -> str:
    return f"{host.config.name_prefix}-release-approvals"


def pipeline_role_name(host: Stage) -> str:
    return f"{host.config.name_prefix}-release-pipeline"


def build_projects(host: Stage) -> list[BuildProject]:
    """The pull-request gate, the pipeline's validate build, and the promotion build."""
    prefix = host.config.name_prefix
    return [
        BuildProject(
            f"{prefix}-pr", VALIDATE_BUILDSPEC, "GITHUB", "Validate and check every pull request"
        ),
        BuildProject(
            f"{prefix}-validate",
            VALIDATE_BUILDSPEC,
            "CODEPIPELINE",
            "The release's gate: the same checks on the merged commit",
        ),
        BuildProject(
            f"{prefix}-promote",
            PROMOTE_BUILDSPEC,
            "CODEPIPELINE",
            "One promotion (TARGET_STAGE, SOURCE_STAGE from the pipeline action)",
        ),
    ]


def _variables(**values: str) -> str:
    return json.dumps(
        [{"name": k, "value": v, "type": "PLAINTEXT"} for k, v in values.items()],
        separators=(",", ":"),
    )


def pipeline_definition(
    host: Stage,
    stages: Mapping[str, Stage],
    *,
    role_arn: str,
    artifact_bucket: str,
    connection_arn: str,
    approval_topic_arn: str,
) -> dict[str, Any]:
    """The pipeline as a CodePipeline CreatePipeline request (`{"pipeline": {...}}`)."""
    delivery = host.config.delivery
    assert delivery is not None and delivery.pipeline is not None
    branch = delivery.pipeline.branch
    _, validate, promote = build_projects(host)
    pipeline_stages: list[dict[str, Any]] = [
        {
            "name": "Source",
            "actions": [
                {
                    "name": "Source",
                    "actionTypeId": _action_type("Source", "CodeStarSourceConnection"),
                    "configuration": {
                        "ConnectionArn": connection_arn,
                        "FullRepositoryId": delivery.repository,
                        "BranchName": branch,
                        # A full clone, so the manifest records the commit.
                        "OutputArtifactFormat": "CODEBUILD_CLONE_REF",
                    },
                    "outputArtifacts": [{"name": "Source"}],
                }
            ],
        },
        {
            "name": "Validate",
            "actions": [
                {
                    "name": "ValidateAndCheck",
                    "actionTypeId": _action_type("Test", "CodeBuild"),
                    "configuration": {"ProjectName": validate.name},
                    "inputArtifacts": [{"name": "Source"}],
                }
            ],
        },
    ]
    for stage in promotion_order(stages):
        title = stage.name.capitalize()
        promote_action = {
            "name": f"PromoteTo{title}",
            "actionTypeId": _action_type("Build", "CodeBuild"),
            "configuration": {
                "ProjectName": promote.name,
                "EnvironmentVariables": (
                    _variables(SOURCE_STAGE=stage.promotes_from, TARGET_STAGE=stage.name)
                    if stage.promotes_from
                    else _variables(TARGET_STAGE=stage.name)
                ),
            },
            "inputArtifacts": [{"name": "Source"}],
            "outputArtifacts": [{"name": f"{title}Promotion"}],
        }
        actions = [promote_action]
        if stage.promotes_from:
            source = stage.promotes_from
            approval = {
                "name": f"Approve{title}",
                "runOrder": 1,
                "actionTypeId": _action_type("Approval", "Manual"),
                "configuration": {
                    "NotificationArn": approval_topic_arn,
                    "CustomData": (
                        f"Promote to {stage.name} exactly what {source} records now. Review the "
                        f"{source.capitalize()} build's log (plan, then what is live in {source}) "
                        f"before approving; mwaa-elt status --stage {source} shows the same."
                    ),
                },
            }
            promote_action["runOrder"] = 2
            actions = [approval, promote_action]
        pipeline_stages.append({"name": title, "actions": actions})
    return {
        "pipeline": {
            "name": host.release_pipeline_name,
            "roleArn": role_arn,
            "artifactStore": {"type": "S3", "location": artifact_bucket},
            "pipelineType": "V2",
            # One execution per stage at a time; a newer release waiting for approval replaces
            # an older one.
            "executionMode": "SUPERSEDED",
            "triggers": [
                {
                    "providerType": "CodeStarSourceConnection",
                    "gitConfiguration": {
                        "sourceActionName": "Source",
                        "push": [
                            {
                                "branches": {"includes": [branch]},
                                "filePaths": {"includes": list(RELEASE_PATHS)},
                            }
                        ],
                    },
                }
            ],
            "stages": pipeline_stages,
        }
    }


def _action_type(category: str, provider: str) -> dict[str, str]:
    return {"category": category, "owner": "AWS", "provider": provider, "version": "1"}
