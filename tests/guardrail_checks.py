"""Every guardrail of the policy pack over one stack's planned resources, as the tests apply it.

The policy pack (infra/policy) runs the same rules inside `pulumi preview`; the tests run them
over the Pulumi program under mocks (`mwaa_elt.infra.preview`).
"""

from __future__ import annotations

from collections.abc import Sequence

from mwaa_elt.infra.documents.guardrails import (
    StackResource,
    StageInfo,
    default_tags,
    environment_kms_violations,
    iam_wildcard_violations,
    production_alarm_violations,
    source_bucket_violations,
    stage_tag_violations,
    webserver_violations,
)
from mwaa_elt.infra.preview import PlannedResource


def every_violation(planned: Sequence[PlannedResource], info: StageInfo) -> list[str]:
    """What any rule refuses in `planned`, stack rules first, then resource by resource."""
    providers = {r.name: r.settings for r in planned if r.type.startswith("pulumi:providers:")}
    resources = [StackResource(r.name, r.type, r.settings) for r in planned]
    found = [str(m) for _, m in source_bucket_violations(resources, info)]
    found += [str(m) for _, m in production_alarm_violations(resources, info)]
    for r in planned:
        tags = default_tags(providers.get(r.provider)) if r.provider else None
        found += webserver_violations(r.type, r.settings, info)
        found += environment_kms_violations(r.type, r.settings, info)
        found += iam_wildcard_violations(r.type, r.settings)
        found += [f"{r.name}: {m}" for m in stage_tag_violations(r.type, r.settings, info, tags)]
    return found
