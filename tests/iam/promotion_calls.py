"""The AWS calls `mwaa-elt promote`, `status` and `rollback` really make, as IAM requests.

The promotion code runs against moto's S3 (and MWAA through botocore's Stubber) while every
botocore API call is recorded — operation, parameters and whether S3 answered 404 — so the
requests below are derived from the code, not written beside it. Each call is attributed to the
principal that makes it in CI: calls on the target stage to its CI promoter role, calls on the
source stage of a promotion to that stage's release reader (assumed from the CI role).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import botocore.client
from botocore.exceptions import ClientError
from iam_evaluator import Request

from mwaa_elt.infra.encryption import key_policy
from mwaa_elt.infra.storage import tls_only_policy
from mwaa_elt.stage import Stage

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
# Calls that need no IAM permission (the caller's own identity).
UNAUTHORIZED_OPERATIONS = {("sts", "GetCallerIdentity")}


@dataclass(frozen=True)
class ApiCall:
    """One botocore call as the code made it."""

    service: str
    operation: str
    params: Mapping[str, Any]
    error_code: str | None  # "404", "NoSuchKey", ... when S3 answered with an error


@contextmanager
def recording() -> Iterator[list[ApiCall]]:
    """Record every botocore API call made inside the block, from any client."""
    calls: list[ApiCall] = []
    original: Callable[..., Any] = botocore.client.BaseClient._make_api_call

    def record(self: Any, operation: str, params: dict[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        try:
            result = original(self, operation, params)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            calls.append(ApiCall(service, operation, dict(params), code))
            raise
        calls.append(ApiCall(service, operation, dict(params), None))
        return result

    botocore.client.BaseClient._make_api_call = record  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]


class UnmappedCall(AssertionError):
    """The promotion made a call this module does not know how to authorize."""


def _key_arn(stage: Stage) -> str:
    return stage.arn("kms", f"key/{KEY_ID}")


def _kms(stage: Stage, principal: str, action: str, why: str) -> Request:
    return Request(
        principal=principal,
        action=action,
        resource=_key_arn(stage),
        resource_account=stage.account_id,
        context={
            "kms:ViaService": f"s3.{stage.region}.{stage.dns_suffix}",
            "aws:ResourceTag/stage": stage.name,
            "aws:SecureTransport": "true",
        },
        resource_policy=key_policy(stage),
        why=why,
    )


def s3_requests(stage: Stage, principal: str, call: ApiCall, why: str) -> list[Request]:
    """The IAM requests S3 authorizes for one call on `stage`'s source bucket."""
    params = call.params
    bucket_arn = stage.source_bucket_arn
    policy = tls_only_policy(bucket_arn)
    secure = {"aws:SecureTransport": "true"}

    def on_bucket(action: str, prefix: str | None) -> Request:
        context = {**secure, **({"s3:prefix": prefix} if prefix is not None else {})}
        return Request(principal, action, bucket_arn, stage.account_id, context, policy, why)

    def on_object(action: str, key: str) -> Request:
        arn = f"{bucket_arn}/{key}"
        return Request(principal, action, arn, stage.account_id, secure, policy, why)

    requests: list[Request] = []
    encrypted = stage.kms_key_alias is not None
    operation = call.operation
    if operation in {"HeadObject", "GetObject"}:
        versioned = "VersionId" in params
        requests.append(
            on_object("s3:GetObjectVersion" if versioned else "s3:GetObject", params["Key"])
        )
        if call.error_code in {"404", "NoSuchKey", "NotFound"}:
            # S3 answers 404 rather than 403 only when ListBucket is allowed.
            requests.append(on_bucket("s3:ListBucket", None))
        elif encrypted and operation == "GetObject":
            requests.append(_kms(stage, principal, "kms:Decrypt", why))
    elif operation == "PutObject":
        requests.append(on_object("s3:PutObject", params["Key"]))
        if encrypted:
            requests.append(_kms(stage, principal, "kms:GenerateDataKey", why))
    elif operation == "DeleteObject":
        versioned = "VersionId" in params
        requests.append(
            on_object("s3:DeleteObjectVersion" if versioned else "s3:DeleteObject", params["Key"])
        )
    elif operation == "ListObjectVersions":
        requests.append(on_bucket("s3:ListBucketVersions", params.get("Prefix")))
    elif operation in {"ListObjectsV2", "ListObjects"}:
        requests.append(on_bucket("s3:ListBucket", params.get("Prefix")))
    elif operation == "CopyObject":
        requests.append(on_object("s3:PutObject", params["Key"]))
        source = str(
            params["CopySource"]
            if isinstance(params["CopySource"], str)
            else params["CopySource"]["Key"]
        )
        requests.append(on_object("s3:GetObject", source.split("/", 1)[-1]))
    else:
        raise UnmappedCall(f"s3:{operation} ({why}): map it in tests/iam/promotion_calls.py")
    return requests


def mwaa_requests(stage: Stage, principal: str, call: ApiCall, why: str) -> list[Request]:
    """The IAM requests of one MWAA API call on `stage`'s environment."""
    secure = {"aws:SecureTransport": "true"}
    if call.operation == "GetEnvironment":
        resource = stage.environment_arn
        action = "airflow:GetEnvironment"
    elif call.operation == "InvokeRestApi":
        # Authorized per Airflow role; reads need Viewer.
        resource = stage.airflow_rbac_role_arn
        action = "airflow:InvokeRestApi"
    elif call.operation == "CreateCliToken":
        resource = stage.environment_arn
        action = "airflow:CreateCliToken"
    else:
        raise UnmappedCall(
            f"airflow:{call.operation} ({why}): map it in tests/iam/promotion_calls.py"
        )
    return [Request(principal, action, resource, stage.account_id, secure, None, why)]


def requests_for(
    calls: list[ApiCall],
    stages: Mapping[str, Stage],
    principal_of: Callable[[Stage], str],
    why: str,
) -> list[Request]:
    """Map recorded calls to requests, each on the stage whose bucket or environment it names."""
    by_bucket = {s.source_bucket: s for s in stages.values()}
    by_environment = {s.environment_name: s for s in stages.values()}
    by_alarm_prefix = {f"{s.resource_prefix}-": s for s in stages.values()}
    requests: list[Request] = []
    for call in calls:
        if (call.service, call.operation) in UNAUTHORIZED_OPERATIONS:
            continue
        if call.service == "s3":
            stage = by_bucket[call.params["Bucket"]]
            requests += s3_requests(stage, principal_of(stage), call, why)
        elif call.service == "mwaa":
            stage = by_environment[call.params["Name"]]
            requests += mwaa_requests(stage, principal_of(stage), call, why)
        elif (call.service, call.operation) == ("cloudwatch", "DescribeAlarms"):
            stage = by_alarm_prefix[call.params["AlarmNamePrefix"]]
            secure = {"aws:SecureTransport": "true"}
            action = "cloudwatch:DescribeAlarms"  # composite alarms need it on "*"
            requests.append(
                Request(principal_of(stage), action, "*", stage.account_id, secure, None, why)
            )
        else:
            raise UnmappedCall(f"{call.service}:{call.operation} ({why})")
    return requests
