"""mwaa-elt guardrails as a mandatory Pulumi policy pack: a violation blocks preview and update.

Run it with any Pulumi command, from the project root:

    pulumi preview --stack prod --policy-pack infra/policy
    pulumi up --stack prod --policy-pack infra/policy

The rules are pure functions in `mwaa_elt.infra.documents.guardrails` (tested without
Pulumi); this file only adapts the policy SDK's arguments to them. The stage is the stack's name,
and whether it is production comes from its stack file through the stage model, as for the Pulumi
program itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from mwaa_elt.errors import ConfigError
from mwaa_elt.infra.documents import guardrails
from mwaa_elt.infra.documents.guardrails import UNKNOWN, StackResource, StageInfo
from mwaa_elt.stage import load_stage

STACKS_DIR = Path(__file__).resolve().parents[2] / "stacks"
PACK_NAME = "mwaa-elt-guardrails"

ResourceRule = Callable[[str, Mapping[str, Any], StageInfo], list[str]]


@cache
def stage_info(stack: str | None) -> StageInfo:
    """The stage a stack deploys; an unknown or invalid stack is treated as production."""
    if not stack:
        return StageInfo(name=None, production=True)
    try:
        return StageInfo(name=stack, production=load_stage(STACKS_DIR, stack).production)
    except ConfigError:
        # Fail closed: the program refuses such a stack anyway, and the guardrails must not be
        # weaker than the stage it might turn out to be.
        return StageInfo(name=stack, production=True)


def current_stage() -> StageInfo:
    """The stage of the stack being previewed or updated (set by the engine at analysis time)."""
    return stage_info(pulumi.get_stack())


def plain(value: Any) -> Any:
    """A copy of the SDK's properties as dicts and lists, with unknown values as UNKNOWN.

    Reading an unknown value through the SDK raises, which would skip the whole policy.
    """
    if isinstance(value, Mapping):
        return {key: _read(value, key) for key in value}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_read(value, index) for index in range(len(value))]
    return value


def _read(container: Any, key: Any) -> Any:
    try:
        return plain(container[key])
    except UnknownValueError:
        return UNKNOWN


def resource_policy(name: str, description: str, rule: ResourceRule) -> ResourceValidationPolicy:
    """A resource policy reporting each message of `rule` for the resource being validated."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule(args.resource_type, plain(args.props), current_stage()):
            report_violation(message, None)

    return ResourceValidationPolicy(name=name, description=description, validate=validate)


def _stage_tag(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    provider_props = plain(args.provider.props) if args.provider is not None else None
    for message in guardrails.stage_tag_violations(
        args.resource_type,
        plain(args.props),
        current_stage(),
        default_tags=guardrails.default_tags(provider_props),
    ):
        report_violation(message, None)


def _source_bucket(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for urn, message in guardrails.source_bucket_violations(_resources(args), current_stage()):
        report_violation(message, urn)


def _production_alarms(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for urn, message in guardrails.production_alarm_violations(_resources(args), current_stage()):
        report_violation(message, urn)


def _resources(args: StackValidationArgs) -> list[StackResource]:
    return [
        StackResource(
            urn=resource.urn,
            resource_type=resource.resource_type,
            props=plain(resource.props),
            property_dependencies={
                prop: [dependency.urn for dependency in dependencies]
                for prop, dependencies in resource.property_dependencies.items()
            },
        )
        for resource in args.resources
    ]


def policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    """Every guardrail of the pack, each a separate policy so a violation names its rule."""
    return [
        StackValidationPolicy(
            name="mwaa-source-bucket-protected",
            description=(
                "The MWAA source bucket is versioned and public-access-blocked, and in "
                "production encrypted with a customer-managed KMS key."
            ),
            validate=_source_bucket,
        ),
        StackValidationPolicy(
            name="mwaa-alarms-in-production",
            description=(
                "A production MWAA environment has alarms, notifying an SNS topic, on its "
                "scheduler heartbeat, DAG import errors, task failures and queued tasks."
            ),
            validate=_production_alarms,
        ),
        resource_policy(
            "mwaa-webserver-private-in-production",
            "A production stage's Airflow UI is PRIVATE_ONLY.",
            guardrails.webserver_violations,
        ),
        resource_policy(
            "mwaa-customer-managed-key-in-production",
            "A production stage's MWAA environment is encrypted with a customer-managed KMS key.",
            guardrails.environment_kms_violations,
        ),
        resource_policy(
            "iam-no-wildcard-actions",
            "No IAM Allow statement uses a wildcard action or NotAction.",
            lambda resource_type, props, _stage: guardrails.iam_wildcard_violations(
                resource_type, props
            ),
        ),
        ResourceValidationPolicy(
            name="stage-tag-on-every-resource",
            description="Every taggable resource carries the tag stage=<the stack's stage>.",
            validate=_stage_tag,
        ),
    ]


if __name__ == "__main__":
    # PolicyPack serves the engine until it exits, so it only runs when Pulumi runs the pack.
    PolicyPack(
        name=PACK_NAME,
        enforcement_level=EnforcementLevel.MANDATORY,
        description="Guardrails of the mwaa-elt platform; a violation blocks the deployment.",
        policies=policies(),
    )
