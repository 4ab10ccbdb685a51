"""Guardrails: each rule fires on a bad resource, passes a good one, and runs in the policy pack."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pulumi
import pytest
from guardrail_checks import every_violation
from pulumi_policy import (
    PolicyProviderResource,
    PolicyResource,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from mwaa_elt.infra.documents import guardrails
from mwaa_elt.infra.documents.guardrails import (
    UNKNOWN,
    StackResource,
    StageInfo,
    aws_type_is_taggable,
    default_tags,
    document_wildcards,
    environment_kms_violations,
    iam_wildcard_violations,
    source_bucket_violations,
    stage_tag_violations,
    webserver_violations,
)
from mwaa_elt.infra.documents.iam_policies import all_role_policies

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "infra" / "policy"
PROD = StageInfo(name="prod", production=True)
DEV = StageInfo(name="dev", production=False)
ENV = "aws:mwaa/environment:Environment"
BUCKET_NAME = "airflow-mwaa-elt-prod-333333333333"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET_NAME}"
KEY_ARN = "arn:aws:kms:eu-central-1:333333333333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def urn(kind: str, name: str) -> str:
    return f"urn:pulumi:prod::mwaa-elt::{kind}::{name}"


# -- rule 1 and 3 (stack): the source bucket --------------------------------------------------


def bucket_stack(
    *,
    versioning: str | None = "Enabled",
    block: dict[str, bool] | None = None,
    sse: str | None = "aws:kms",
    by_reference: bool = True,
) -> list[StackResource]:
    """An environment, its bucket and the bucket's settings, linked by Output or by value."""
    bucket = StackResource(urn("aws:s3/bucket:Bucket", "source"), "aws:s3/bucket:Bucket",
                           {"bucket": BUCKET_NAME})  # fmt: skip
    link = {"bucket": [bucket.urn]} if by_reference else {}
    target = UNKNOWN if by_reference else BUCKET_NAME
    resources = [
        bucket,
        StackResource(
            urn(ENV, "mwaa"),
            ENV,
            {"sourceBucketArn": UNKNOWN if by_reference else BUCKET_ARN, "kmsKey": KEY_ARN},
            {"sourceBucketArn": [bucket.urn]} if by_reference else {},
        ),
        StackResource(
            urn(guardrails.PUBLIC_ACCESS_BLOCK, "source"),
            guardrails.PUBLIC_ACCESS_BLOCK,
            {
                "bucket": target,
                **dict.fromkeys(guardrails.PUBLIC_ACCESS_FLAGS, True),
                **(block or {}),
            },
            link,
        ),
    ]
    if versioning is not None:
        kind = "aws:s3/bucketVersioning:BucketVersioning"
        resources.append(StackResource(
            urn(kind, "source"), kind,
            {"bucket": target, "versioningConfiguration": {"status": versioning}}, link,
        ))  # fmt: skip
    if sse is not None:
        kind = sorted(guardrails.ENCRYPTION_TYPES)[0]
        default = {"sseAlgorithm": sse, **({"kmsMasterKeyId": KEY_ARN} if sse != "AES256" else {})}
        resources.append(StackResource(
            urn(kind, "source"), kind,
            {"bucket": target, "rules": [{"applyServerSideEncryptionByDefault": default}]}, link,
        ))  # fmt: skip
    return resources


@pytest.mark.parametrize("by_reference", [True, False])
def test_protected_source_bucket_passes(by_reference):
    assert source_bucket_violations(bucket_stack(by_reference=by_reference), PROD) == []


@pytest.mark.parametrize("versioning", [None, "Suspended"])
def test_unversioned_source_bucket_is_a_violation(versioning):
    violations = source_bucket_violations(bucket_stack(versioning=versioning), DEV)
    assert violations == [(
        urn("aws:s3/bucket:Bucket", "source"),
        f"MWAA source bucket {BUCKET_NAME} is not versioned; MWAA needs object versions of "
        "requirements.txt, plugins.zip and the startup script: add an aws.s3.BucketVersioning "
        "with status Enabled",
    )]  # fmt: skip


def test_versioning_of_another_bucket_does_not_count():
    resources = bucket_stack(versioning=None, by_reference=False)
    kind = "aws:s3/bucketVersioningV2:BucketVersioningV2"
    resources.append(StackResource(
        urn(kind, "lake"), kind, {"bucket": "lake", "versioningConfiguration": {"status": "Enabled"}}
    ))  # fmt: skip
    assert next(m for _, m in source_bucket_violations(resources, DEV)).endswith(
        "with status Enabled"
    )


@pytest.mark.parametrize("flag", guardrails.PUBLIC_ACCESS_FLAGS)
def test_any_public_access_flag_off_is_a_violation(flag):
    violations = source_bucket_violations(bucket_stack(block={flag: False}), DEV)
    assert [m for _, m in violations] == [
        f"MWAA source bucket {BUCKET_NAME} is not public-access-blocked; add an "
        "aws.s3.BucketPublicAccessBlock with blockPublicAcls, blockPublicPolicy, "
        "ignorePublicAcls, restrictPublicBuckets all true"
    ]


def test_missing_public_access_block_is_a_violation():
    resources = [r for r in bucket_stack() if r.resource_type != guardrails.PUBLIC_ACCESS_BLOCK]
    assert "not public-access-blocked" in source_bucket_violations(resources, DEV)[0][1]


@pytest.mark.parametrize("sse", [None, "AES256"])
def test_production_source_bucket_without_kms_is_a_violation(sse):
    violations = source_bucket_violations(bucket_stack(sse=sse), PROD)
    assert [m for _, m in violations] == [
        f"MWAA source bucket {BUCKET_NAME} of a production stage is not encrypted with a "
        "customer-managed KMS key; add an aws.s3.BucketServerSideEncryptionConfiguration with "
        "sseAlgorithm aws:kms and the stage's kmsMasterKeyId"
    ]
    assert source_bucket_violations(bucket_stack(sse=sse), DEV) == []


def test_kms_key_not_known_during_preview_counts_as_set():
    resources = bucket_stack()
    sse = resources[-1]
    rules = [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms",
                                                     "kmsMasterKeyId": UNKNOWN}}]  # fmt: skip
    resources[-1] = StackResource(sse.urn, sse.resource_type, {**sse.props, "rules": rules},
                                  sse.property_dependencies)  # fmt: skip
    assert source_bucket_violations(resources, PROD) == []


def bucket_with(props: dict[str, Any]) -> list[StackResource]:
    """The stack without versioning or encryption resources, the bucket's own `props` added."""
    bucket, *others = bucket_stack(versioning=None, sse=None)
    return [StackResource(bucket.urn, bucket.resource_type, {**bucket.props, **props}), *others]


def test_inline_bucket_settings_count_only_when_known():
    inline = {
        "versioning": {"enabled": True},
        "serverSideEncryptionConfiguration": {
            "rule": {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms",
                                                            "kmsMasterKeyId": KEY_ARN}}
        },
    }  # fmt: skip
    assert source_bucket_violations(bucket_with(inline), PROD) == []
    unknown = {"versioning": UNKNOWN, "serverSideEncryptionConfiguration": UNKNOWN}
    problems = [m.split(";")[0] for _, m in source_bucket_violations(bucket_with(unknown), PROD)]
    assert problems == [
        f"MWAA source bucket {BUCKET_NAME} is not versioned",
        f"MWAA source bucket {BUCKET_NAME} of a production stage is not encrypted with a "
        "customer-managed KMS key",
    ]


def test_source_bucket_outside_the_stack_is_a_violation():
    environment = StackResource(urn(ENV, "mwaa"), ENV, {"sourceBucketArn": BUCKET_ARN})
    assert source_bucket_violations([environment], DEV) == [(
        environment.urn,
        f"source bucket {BUCKET_ARN} is not managed by this stack, so its versioning and public "
        "access block cannot be verified; create it in the stack",
    )]  # fmt: skip


def test_buckets_no_environment_uses_are_not_checked():
    lake = StackResource(
        urn("aws:s3/bucket:Bucket", "lake"), "aws:s3/bucket:Bucket", {"bucket": "x"}
    )
    assert source_bucket_violations([lake], PROD) == []


# -- rule 2 and 3 (resource): the production environment --------------------------------------


def test_public_webserver_in_production_is_a_violation():
    props = {"webserverAccessMode": "PUBLIC_ONLY", "kmsKey": KEY_ARN}
    assert webserver_violations(ENV, props, PROD) == [
        "webserverAccessMode is PUBLIC_ONLY in production stage 'prod'; a production stage's "
        "Airflow UI must be PRIVATE_ONLY"
    ]


@pytest.mark.parametrize(
    ("props", "stage"),
    [
        ({"webserverAccessMode": "PRIVATE_ONLY"}, PROD),
        ({}, PROD),  # AWS's default is PRIVATE_ONLY
        ({"webserverAccessMode": UNKNOWN}, PROD),
        ({"webserverAccessMode": "PUBLIC_ONLY"}, DEV),
    ],
)
def test_private_or_non_production_webserver_passes(props, stage):
    assert webserver_violations(ENV, props, stage) == []


def test_webserver_rule_ignores_other_types():
    assert webserver_violations("aws:s3/bucket:Bucket", {"webserverAccessMode": "x"}, PROD) == []


@pytest.mark.parametrize("props", [{}, {"kmsKey": ""}, {"kmsKey": None}])
def test_production_environment_without_kms_key_is_a_violation(props):
    assert environment_kms_violations(ENV, props, PROD) == [
        "kmsKey is not set in production stage 'prod'; a production environment must be "
        "encrypted with the stage's customer-managed KMS key, not an AWS-owned one"
    ]


@pytest.mark.parametrize(
    ("props", "stage"), [({"kmsKey": KEY_ARN}, PROD), ({"kmsKey": UNKNOWN}, PROD), ({}, DEV)]
)
def test_environment_with_key_or_outside_production_passes(props, stage):
    assert environment_kms_violations(ENV, props, stage) == []


# -- rule 4: IAM ------------------------------------------------------------------------------


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
EXACT = {"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}


@pytest.mark.parametrize("action", ["*", "s3:*", "s3:Get*", ["s3:GetObject", "glue:Get?able"]])
def test_wildcard_allow_action_is_a_violation(action):
    policy = document({"Sid": "Broad", "Effect": "Allow", "Action": action, "Resource": "*"})
    violations = iam_wildcard_violations(ROLE_POLICY, {"policy": policy})
    assert len(violations) == 1
    assert violations[0].startswith("policy: statement Broad allows wildcard action ")
    assert violations[0].endswith("; list each action it needs")


def test_not_action_on_allow_is_a_violation():
    policy = document({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert iam_wildcard_violations("aws:iam/policy:Policy", {"policy": policy}) == [
        "policy: statement Statement[0] allows NotAction, which grants every other action, "
        "including ones AWS adds later; list the actions it allows"
    ]


def test_exact_actions_and_wildcard_denies_pass():
    deny = {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"x": "y"}}}
    deny_not = {"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"}
    policy = document(EXACT, deny, deny_not)
    assert iam_wildcard_violations(ROLE_POLICY, {"policy": policy}) == []
    # A wildcard in Resource is not a wildcard action.
    assert iam_wildcard_violations(ROLE_POLICY, {"policy": document(EXACT)}) == []


def test_role_inline_policies_are_checked_by_name():
    props = {
        "inlinePolicies": [
            {"name": "fine", "policy": document(EXACT)},
            {"name": "broad", "policy": document({"Effect": "Allow", "Action": "glue:*"})},
        ]
    }
    assert iam_wildcard_violations("aws:iam/role:Role", props) == [
        "inlinePolicies[broad]: statement Statement[0] allows wildcard action glue:*; "
        "list each action it needs"
    ]


def test_statement_without_effect_is_treated_as_allow():
    assert document_wildcards({"Statement": {"Action": "s3:*"}}) == [
        "statement Statement[0] allows wildcard action s3:*; list each action it needs"
    ]


def test_unknown_or_unreadable_documents():
    assert iam_wildcard_violations(ROLE_POLICY, {"policy": UNKNOWN}) == []
    assert iam_wildcard_violations(ROLE_POLICY, {"policy": "{not json"})[0].startswith(
        "policy: not a JSON policy document ("
    )
    assert iam_wildcard_violations("aws:s3/bucket:Bucket", {"policy": document(
        {"Effect": "Allow", "Action": "s3:*"})}) == []  # fmt: skip


def test_the_projects_own_iam_documents_pass(stages):
    for stage in stages.values():
        for role, named in all_role_policies(stage).items():
            for policy in named:
                assert document_wildcards(policy.document) == [], (stage.name, role, policy.name)


# -- rule 5: the stage tag --------------------------------------------------------------------

BUCKET = "aws:s3/bucket:Bucket"


def test_taggable_resource_without_stage_tag_is_a_violation():
    assert stage_tag_violations(BUCKET, {"tags": {"owner": "x"}}, PROD) == [
        "no 'stage' tag; tag the resource (or set the provider's defaultTags) with stage=prod"
    ]
    assert stage_tag_violations(BUCKET, {}, PROD) != []


@pytest.mark.parametrize(
    ("props", "provider_tags"),
    [
        ({"tags": {"stage": "prod"}}, None),
        ({"tagsAll": {"stage": "prod", "owner": "x"}}, None),
        ({}, {"stage": "prod"}),
        ({"tags": {"stage": UNKNOWN}}, None),
    ],
)
def test_stage_tag_from_tags_tags_all_or_default_tags_passes(props, provider_tags):
    assert stage_tag_violations(BUCKET, props, PROD, default_tags=provider_tags) == []


def test_stage_tag_of_another_stage_is_a_violation():
    assert stage_tag_violations(BUCKET, {"tags": {"stage": "dev"}}, PROD) == [
        "'stage' tag is dev but this stack deploys stage 'prod'; set stage=prod"
    ]


def test_resources_without_tags_are_exempt():
    kind = "aws:s3/bucketVersioning:BucketVersioning"
    assert stage_tag_violations(kind, {"bucket": "b"}, PROD) == []
    assert stage_tag_violations("pulumi:providers:aws", {}, PROD) == []
    assert stage_tag_violations("mwaa-elt:storage:Storage", {}, PROD) == []


def test_tags_not_known_during_preview_are_not_judged():
    assert stage_tag_violations(BUCKET, {"tags": {}, "tagsAll": UNKNOWN}, PROD) == []


def test_taggability_comes_from_the_installed_pulumi_aws():
    assert aws_type_is_taggable("aws:mwaa/environment:Environment") is True
    assert aws_type_is_taggable("aws:lambda/function:Function") is True  # module lambda_
    assert aws_type_is_taggable("aws:iam/rolePolicy:RolePolicy") is False
    assert aws_type_is_taggable("aws:nosuch/thing:Thing") is None


def test_unknown_aws_type_is_taggable_when_it_has_tags():
    def unknown(_: str) -> None:
        return None

    assert stage_tag_violations("aws:new/x:X", {"tags": {}}, PROD, taggable=unknown) != []
    assert stage_tag_violations("aws:new/x:X", {}, PROD, taggable=unknown) == []


def test_default_tags_from_provider_settings():
    tags = {"tags": {"stage": "prod"}}
    assert default_tags({"defaultTags": json.dumps(tags)}) == {"stage": "prod"}
    assert default_tags({"defaultTags": tags}) == {"stage": "prod"}
    assert default_tags({"region": "eu-central-1"}) == {}
    assert default_tags(None) == {}


# -- the policy pack --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pack() -> ModuleType:
    """infra/policy/__main__.py imported under another name, so it does not serve the engine."""
    spec = importlib.util.spec_from_file_location("mwaa_elt_policy_pack", PACK / "__main__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def on_stack(monkeypatch):
    def set_stack(name: str | None) -> None:
        monkeypatch.setattr(pulumi, "get_stack", lambda: name)

    return set_stack


def policy(pack: ModuleType, name: str) -> Any:
    return {p.name: p for p in pack.policies()}[name]


def run_resource_policy(
    pack: ModuleType, name: str, kind: str, props: dict[str, Any], provider: dict | None = None
) -> list[str]:
    reported: list[str] = []
    args = ResourceValidationArgs(
        kind,
        unknown_checking_proxy(props),
        urn(kind, "r"),
        "r",
        None,  # type: ignore[arg-type]  # the rules read no resource options
        PolicyProviderResource(
            "pulumi:providers:aws", unknown_checking_proxy(provider or {}), "urn:p", "default"
        ),
    )
    policy(pack, name).validate(args, lambda message, _urn=None: reported.append(message))
    return reported


def test_pack_has_one_policy_per_rule(pack):
    names = [p.name for p in pack.policies()]
    assert names == [
        "mwaa-source-bucket-protected",
        "mwaa-alarms-in-production",
        "mwaa-webserver-private-in-production",
        "mwaa-customer-managed-key-in-production",
        "iam-no-wildcard-actions",
        "stage-tag-on-every-resource",
    ]


def test_stage_comes_from_the_stack_file(pack):
    assert pack.stage_info("prod") == StageInfo("prod", production=True)
    assert pack.stage_info("staging") == StageInfo("staging", production=False)
    # An unknown stack fails closed: it is held to production's rules.
    assert pack.stage_info("nosuch") == StageInfo("nosuch", production=True)
    assert pack.stage_info(None).production


def test_pack_blocks_public_webserver_on_prod_only(pack, on_stack):
    props = {"webserverAccessMode": "PUBLIC_ONLY", "kmsKey": KEY_ARN}
    on_stack("prod")
    assert run_resource_policy(pack, "mwaa-webserver-private-in-production", ENV, props) == [
        "webserverAccessMode is PUBLIC_ONLY in production stage 'prod'; a production stage's "
        "Airflow UI must be PRIVATE_ONLY"
    ]
    on_stack("dev")
    assert run_resource_policy(pack, "mwaa-webserver-private-in-production", ENV, props) == []


def test_pack_tolerates_values_unknown_during_preview(pack, on_stack):
    on_stack("prod")
    props = {"kmsKey": UNKNOWN_STRING_VALUE, "tags": {"stage": "prod"}}
    assert run_resource_policy(pack, "mwaa-customer-managed-key-in-production", ENV, props) == []
    assert run_resource_policy(pack, "mwaa-customer-managed-key-in-production", ENV, {}) != []


def test_pack_reads_default_tags_from_the_provider(pack, on_stack):
    on_stack("prod")
    name, provider = "stage-tag-on-every-resource", {"defaultTags": '{"tags":{"stage":"prod"}}'}
    assert run_resource_policy(pack, name, BUCKET, {"bucket": "b"}, provider) == []
    assert run_resource_policy(pack, name, BUCKET, {"bucket": "b"}) == [
        "no 'stage' tag; tag the resource (or set the provider's defaultTags) with stage=prod"
    ]


def test_pack_checks_iam_documents(pack, on_stack):
    on_stack("dev")
    props = {"policy": document({"Effect": "Allow", "Action": "*", "Resource": "*"})}
    assert run_resource_policy(pack, "iam-no-wildcard-actions", ROLE_POLICY, props) == [
        "policy: statement Statement[0] allows wildcard action *; list each action it needs"
    ]


def test_pack_stack_policy_follows_output_dependencies(pack, on_stack):
    on_stack("prod")
    bucket = PolicyResource(BUCKET, unknown_checking_proxy({"bucket": BUCKET_NAME}),
                            urn(BUCKET, "source"), "source", None, None, None, [], {})  # fmt: skip
    environment = PolicyResource(
        ENV, unknown_checking_proxy({"sourceBucketArn": UNKNOWN_STRING_VALUE, "kmsKey": KEY_ARN}),
        urn(ENV, "mwaa"), "mwaa", None, None, None, [bucket], {"sourceBucketArn": [bucket]},
    )  # fmt: skip
    reported: list[tuple[str, str | None]] = []
    policy(pack, "mwaa-source-bucket-protected").validate(
        StackValidationArgs([bucket, environment]),
        lambda message, urn=None: reported.append((message, urn)),
    )
    assert [(m.split(";")[0], u) for m, u in reported] == [
        (f"MWAA source bucket {BUCKET_NAME} is not versioned", bucket.urn),
        (f"MWAA source bucket {BUCKET_NAME} is not public-access-blocked", bucket.urn),
        (
            f"MWAA source bucket {BUCKET_NAME} of a production stage is not encrypted with a "
            "customer-managed KMS key",
            bucket.urn,
        ),
    ]


def test_pack_refuses_a_production_environment_without_alarms(pack, on_stack):
    environment = PolicyResource(ENV, unknown_checking_proxy({"name": "mwaa-elt-prod"}),
                                 urn(ENV, "mwaa"), "mwaa", None, None, None, [], {})  # fmt: skip
    alarm = PolicyResource(
        guardrails.METRIC_ALARM,
        unknown_checking_proxy({
            "namespace": "AmazonMWAA", "metricName": "SchedulerHeartbeat",
            "dimensions": {"Function": "Scheduler", "Environment": "mwaa-elt-prod"},
            "alarmActions": [UNKNOWN_STRING_VALUE],
        }),
        urn(guardrails.METRIC_ALARM, "heartbeat"), "heartbeat", None, None, None, [], {},
    )  # fmt: skip
    reported: list[tuple[str, str | None]] = []
    for stack in ("prod", "dev"):
        on_stack(stack)
        policy(pack, "mwaa-alarms-in-production").validate(
            StackValidationArgs([environment, alarm]),
            lambda message, urn=None: reported.append((message, urn)),
        )
    # Only prod is judged; the heartbeat alarm (its topic still unknown in a preview) counts.
    assert reported == [
        (
            "production MWAA environment mwaa-elt-prod has no alarm notifying an SNS topic on "
            "DAG import errors, task failures, tasks queued with no free worker; declare the "
            "stage's alarms (mwaa_elt.infra.monitoring) with alarmActions set",
            environment.urn,
        )
    ]


def test_pack_starts_and_serves_the_engine():
    """Run as Pulumi runs it, the pack builds its PolicyPack and prints the port it serves on."""
    process = subprocess.Popen(
        [sys.executable, str(PACK / "__main__.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        assert port.isdigit(), process.stderr.read() if process.poll() is not None else port
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize("name", ["dev", "staging", "prod"])
def test_the_projects_program_passes_every_guardrail(stages, name):
    """The Pulumi program under mocks (mwaa_elt.infra.preview) deploys nothing a rule refuses."""
    from mwaa_elt.infra.preview import run_preview

    stage = stages[name]
    info = StageInfo(name, stage.production)
    planned = run_preview(stage).resources
    assert [r for r in planned if r.type == ENV]  # the rules had something to check
    assert every_violation(planned, info) == []
