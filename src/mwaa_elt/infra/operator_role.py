"""The stage's operator role: what platform engineers assume to run `mwaa-elt backup`,
`restore`, `upgrade apply` and `cutover switch` (Airflow's Op role, the metadata records).

Enabled by a stack's `operator:` block. The documents come from
`mwaa_elt.infra.documents.iam_policies`: this module only wires them to resources.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mwaa_elt.infra.documents.iam_policies import operator_role
from mwaa_elt.infra.execution_role import attach_inline_policies
from mwaa_elt.stage import Stage


@dataclass(frozen=True)
class OperatorRoleArgs:
    """The stage, whose stack has an `operator` block."""

    stage: Stage


class OperatorRole(pulumi.ComponentResource):
    """The IAM role, its trust (the stack's principals, MFA) and its inline policies."""

    role: aws.iam.Role
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: OperatorRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mwaa-elt:iam:OperatorRole", name, None, opts)
        documents = operator_role(args.stage)
        if documents is None:
            raise ValueError(f"stage {args.stage.name} has no operator block")
        self.role = aws.iam.Role(
            f"{name}-role",
            name=documents.name,
            description=f"Operator of MWAA stage {args.stage.resource_prefix}: backup, restore, "
            "upgrade, cutover",
            assume_role_policy=json.dumps(documents.trust, sort_keys=True),
            max_session_duration=3600,
            opts=pulumi.ResourceOptions(parent=self),
        )
        attach_inline_policies(f"{name}-role", self.role, documents.policies, self)
        self.arn = self.role.arn
        self.register_outputs({"arn": self.arn})
