"""The MWAA execution role: its trust and inline policies come from
`mwaa_elt.infra.documents.iam_policies`."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mwaa_elt.infra.documents.iam_policies import (
    NamedPolicy,
    execution_role_policies,
    execution_role_trust_policy,
)
from mwaa_elt.lifecycle.adopt import ROLE_IGNORED
from mwaa_elt.stage import Stage


def attach_inline_policies(
    name: str, role: aws.iam.Role, policies: list[NamedPolicy], parent: pulumi.Resource
) -> list[aws.iam.RolePolicy]:
    """One inline `RolePolicy` per document, named as the document names itself."""
    return [
        aws.iam.RolePolicy(
            f"{name}-{policy.name}",
            name=policy.name,
            role=role.id,
            policy=json.dumps(policy.document, sort_keys=True),
            opts=pulumi.ResourceOptions(parent=parent),
        )
        for policy in policies
    ]


@dataclass(frozen=True)
class ExecutionRoleArgs:
    """The stage whose environment assumes the role."""

    stage: Stage


class ExecutionRole(pulumi.ComponentResource):
    """The role MWAA's scheduler, workers and webserver act as."""

    role: aws.iam.Role
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ExecutionRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mwaa-elt:iam:ExecutionRole", name, None, opts)
        stage = args.stage
        # An adopted role is imported by name (see mwaa_elt.lifecycle.adopt).
        adopt = stage.config.adopt
        adopted = adopt.execution_role if adopt is not None else None
        self.role = aws.iam.Role(
            f"{name}-role",
            name=stage.execution_role_name,
            # The first environment's name, whichever serves the stage: a description changed
            # by retiring blue would update (a security group: replace) this shared resource.
            description=f"Execution role of MWAA environment {stage.resource_prefix}",
            assume_role_policy=json.dumps(execution_role_trust_policy(stage), sort_keys=True),
            opts=pulumi.ResourceOptions(
                parent=self,
                import_=adopted,
                ignore_changes=list(ROLE_IGNORED) if adopted else None,
                retain_on_delete=True if adopted else None,
            ),
        )
        attach_inline_policies(name, self.role, execution_role_policies(stage), self)
        self.arn = self.role.arn
        self.register_outputs({"arn": self.arn})
