"""The roles the stage's transient EMR clusters run with."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mwaa_elt.infra.documents.iam_policies import (
    EMR_SERVICE_MANAGED_POLICY,
    emr_instance_role_policies,
    emr_instance_role_trust_policy,
    emr_service_role_trust_policy,
)
from mwaa_elt.infra.execution_role import attach_inline_policies
from mwaa_elt.stage import Stage


@dataclass(frozen=True)
class EmrRolesArgs:
    """The stage whose DAGs launch the clusters."""

    stage: Stage


class EmrRoles(pulumi.ComponentResource):
    """EMR's service role (AWS's managed v2 policy) and the cluster nodes' role and profile."""

    service_role: aws.iam.Role
    instance_role: aws.iam.Role
    instance_profile: aws.iam.InstanceProfile

    def __init__(
        self, name: str, args: EmrRolesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mwaa-elt:emr:EmrRoles", name, None, opts)
        stage = args.stage
        child = pulumi.ResourceOptions(parent=self)
        self.service_role = aws.iam.Role(
            f"{name}-service-role",
            name=stage.emr_service_role,
            description=f"EMR service role of stage {stage.name}",
            assume_role_policy=json.dumps(emr_service_role_trust_policy(stage), sort_keys=True),
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-service-policy",
            role=self.service_role.name,
            policy_arn=f"arn:{stage.partition}:iam::aws:policy/{EMR_SERVICE_MANAGED_POLICY}",
            opts=child,
        )
        self.instance_role = aws.iam.Role(
            f"{name}-instance-role",
            name=stage.emr_instance_role,
            description=f"Role of EMR cluster nodes of stage {stage.name}",
            assume_role_policy=json.dumps(emr_instance_role_trust_policy(stage), sort_keys=True),
            opts=child,
        )
        attach_inline_policies(
            f"{name}-instance", self.instance_role, emr_instance_role_policies(stage), self
        )
        self.instance_profile = aws.iam.InstanceProfile(
            f"{name}-instance-profile",
            name=stage.emr_instance_profile,
            role=self.instance_role.name,
            opts=child,
        )
        self.register_outputs(
            {
                "service_role": self.service_role.name,
                "instance_profile": self.instance_profile.name,
            }
        )
