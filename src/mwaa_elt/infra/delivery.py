"""CI/CD as code: the stage's CI roles, and the release pipeline in the stack that hosts it.

Enabled by a stack's `delivery:` block. Every document comes from
`mwaa_elt.infra.documents.iam_policies` and the pipeline from
`mwaa_elt.infra.documents.release_pipeline`: this module only wires them to resources.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from mwaa_elt.infra.documents.iam_policies import (
    delivery_roles,
    release_build_policies,
    release_build_trust_policy,
    release_pipeline_policies,
    release_pipeline_trust_policy,
)
from mwaa_elt.infra.documents.release_pipeline import (
    PULL_REQUEST_EVENTS,
    approval_topic_name,
    artifact_bucket_name,
    build_projects,
    connection_name,
    pipeline_definition,
    pipeline_role_name,
)
from mwaa_elt.infra.execution_role import attach_inline_policies
from mwaa_elt.infra.storage import SecureBucket, SecureBucketArgs
from mwaa_elt.stage import GITHUB_OIDC_HOST, Stage

GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
GITHUB_OIDC_AUDIENCE = "sts.amazonaws.com"


@dataclass(frozen=True)
class DeliveryArgs:
    """The stage, every stage (the release chain), and the stage's key (prod) if any."""

    stage: Stage
    stages: Mapping[str, Stage]
    key_arn: pulumi.Input[str] | None = None
    protect: bool = False


class Delivery(pulumi.ComponentResource):
    """GitHub's OIDC provider, the CI promoter and release-reader roles, and, in the hosting
    stack, the CodePipeline with its CodeBuild projects, artifact bucket and connection."""

    roles: dict[str, aws.iam.Role]
    pipeline: aws.codepipeline.Pipeline | None

    def __init__(
        self, name: str, args: DeliveryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mwaa-elt:delivery:Delivery", name, None, opts)
        stage, stages = args.stage, args.stages
        delivery = stage.config.delivery
        if delivery is None:
            raise ValueError(f"stage {stage.name} has no delivery block")
        child = pulumi.ResourceOptions(parent=self)
        if delivery.github_actions and delivery.github_oidc_provider == "create":
            aws.iam.OpenIdConnectProvider(
                f"{name}-github-oidc",
                url=GITHUB_OIDC_URL,
                client_id_lists=[GITHUB_OIDC_AUDIENCE],
                opts=child,
            )
        self.roles = {}
        for role in delivery_roles(stage, stages):
            resource = aws.iam.Role(
                f"{name}-{role.name}",
                name=role.name,
                assume_role_policy=json.dumps(role.trust, sort_keys=True),
                max_session_duration=3600,
                opts=child,
            )
            attach_inline_policies(f"{name}-{role.name}", resource, role.policies, self)
            self.roles[role.name] = resource
        self.pipeline = None
        if delivery.pipeline is not None:
            self.pipeline = self._release_pipeline(name, args)
        outputs: dict[str, Any] = {f"{n}_arn": r.arn for n, r in self.roles.items()}
        if self.pipeline is not None:
            outputs["pipeline_arn"] = self.pipeline.arn
        self.register_outputs(outputs)

    def _release_pipeline(self, name: str, args: DeliveryArgs) -> aws.codepipeline.Pipeline:
        host, stages = args.stage, args.stages
        assert host.config.delivery is not None and host.config.delivery.pipeline is not None
        settings = host.config.delivery.pipeline
        child = pulumi.ResourceOptions(parent=self)
        artifacts = SecureBucket(
            f"{name}-artifacts",
            SecureBucketArgs(
                artifact_bucket_name(host),
                settings.artifact_expiration_days,
                args.key_arn,
                args.protect,
            ),
            child,
        )
        # Created PENDING: a person authorizes it once in the console (docs/ci-cd.md).
        connection = aws.codeconnections.Connection(
            f"{name}-github", name=connection_name(host), provider_type="GitHub", opts=child
        )
        topic = aws.sns.Topic(
            f"{name}-approvals",
            name=approval_topic_name(host),
            kms_master_key_id=args.key_arn or "alias/aws/sns",
            opts=child,
        )
        build_role = aws.iam.Role(
            f"{name}-build-role",
            name=host.release_build_role_name,
            assume_role_policy=json.dumps(release_build_trust_policy(host), sort_keys=True),
            opts=child,
        )
        attach_inline_policies(
            f"{name}-build-role", build_role, release_build_policies(host, stages), self
        )
        pipeline_role = aws.iam.Role(
            f"{name}-pipeline-role",
            name=pipeline_role_name(host),
            assume_role_policy=json.dumps(release_pipeline_trust_policy(host), sort_keys=True),
            opts=child,
        )
        attach_inline_policies(
            f"{name}-pipeline-role", pipeline_role, release_pipeline_policies(host), self
        )
        projects = {}
        for project in build_projects(host):
            source: dict[str, Any] = {"type": project.source, "buildspec": project.buildspec}
            if project.source == "GITHUB":
                source |= {
                    "location": f"https://github.com/{host.config.delivery.repository}.git",
                    "git_clone_depth": 0,
                    "report_build_status": True,
                    "auth": {"type": "CODECONNECTIONS", "resource": connection.arn},
                }
            projects[project.name] = aws.codebuild.Project(
                f"{name}-{project.name}",
                name=project.name,
                description=project.description,
                service_role=build_role.arn,
                source=source,
                artifacts={
                    "type": "CODEPIPELINE" if project.source == "CODEPIPELINE" else "NO_ARTIFACTS"
                },
                environment={
                    "type": "LINUX_CONTAINER",
                    "image": settings.build_image,
                    "compute_type": settings.build_compute_type,
                },
                cache={"type": "LOCAL", "modes": ["LOCAL_CUSTOM_CACHE"]},
                encryption_key=args.key_arn,
                build_timeout=120,
                opts=child,
            )
            if project.source == "GITHUB":
                aws.codebuild.Webhook(
                    f"{name}-{project.name}-webhook",
                    project_name=projects[project.name].name,
                    filter_groups=[
                        {
                            "filters": [
                                {"type": "EVENT", "pattern": PULL_REQUEST_EVENTS},
                                {"type": "BASE_REF", "pattern": f"^refs/heads/{settings.branch}$"},
                            ]
                        }
                    ],
                    opts=child,
                )
        definition = pulumi.Output.all(
            pipeline_role.arn, artifacts.name, connection.arn, topic.arn
        ).apply(
            lambda values: pipeline_definition(
                host,
                stages,
                role_arn=values[0],
                artifact_bucket=values[1],
                connection_arn=values[2],
                approval_topic_arn=values[3],
            )["pipeline"]
        )
        return aws.codepipeline.Pipeline(
            f"{name}-pipeline",
            name=host.release_pipeline_name,
            role_arn=pipeline_role.arn,
            pipeline_type="V2",
            execution_mode="SUPERSEDED",
            artifact_stores=[
                {
                    "type": "S3",
                    "location": artifacts.name,
                    **(
                        {"encryption_key": {"id": args.key_arn, "type": "KMS"}}
                        if args.key_arn is not None
                        else {}
                    ),
                }
            ],
            stages=definition.apply(lambda d: [_stage_args(s) for s in d["stages"]]),
            triggers=definition.apply(lambda d: [_trigger_args(t) for t in d["triggers"]]),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*projects.values(), build_role, pipeline_role]
            ),
        )


def _stage_args(stage: dict[str, Any]) -> dict[str, Any]:
    """A CreatePipeline stage in pulumi-aws's argument shape."""
    actions = []
    for action in stage["actions"]:
        kind = action["actionTypeId"]
        converted: dict[str, Any] = {
            "name": action["name"],
            "category": kind["category"],
            "owner": kind["owner"],
            "provider": kind["provider"],
            "version": kind["version"],
            "configuration": action.get("configuration", {}),
        }
        if "runOrder" in action:
            converted["run_order"] = action["runOrder"]
        if action.get("inputArtifacts"):
            converted["input_artifacts"] = [a["name"] for a in action["inputArtifacts"]]
        if action.get("outputArtifacts"):
            converted["output_artifacts"] = [a["name"] for a in action["outputArtifacts"]]
        actions.append(converted)
    return {"name": stage["name"], "actions": actions}


def _trigger_args(trigger: dict[str, Any]) -> dict[str, Any]:
    git = trigger["gitConfiguration"]
    return {
        "provider_type": trigger["providerType"],
        "git_configuration": {
            "source_action_name": git["sourceActionName"],
            "pushes": [
                {
                    "branches": {"includes": push["branches"]["includes"]},
                    "file_paths": {"includes": push["filePaths"]["includes"]},
                }
                for push in git["push"]
            ],
        },
    }
