"""The stage's buckets: the MWAA source bucket and, when the stage owns it, the data lake."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from mwaa_elt.lifecycle.adopt import BUCKET_IGNORED
from mwaa_elt.stage import Stage


def tls_only_policy(bucket_arn: str) -> dict[str, Any]:
    """A bucket policy that refuses every request not made over TLS, to the bucket and objects."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


@dataclass(frozen=True)
class SecureBucketArgs:
    """A bucket's name, its encryption key (None: SSE-S3) and how long old versions stay."""

    bucket: str
    noncurrent_version_expiration_days: int
    kms_key_arn: pulumi.Input[str] | None = None
    protect: bool = False
    # An existing bucket to adopt (Pulumi's import id: its name); see mwaa_elt.lifecycle.adopt.
    import_id: str | None = None


class SecureBucket(pulumi.ComponentResource):
    """A private, versioned, encrypted, TLS-only bucket whose owner owns every object."""

    bucket: aws.s3.Bucket
    name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mwaa-elt:storage:SecureBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket,
            force_destroy=False,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                import_=args.import_id,
                ignore_changes=list(BUCKET_IGNORED) if args.import_id else None,
                retain_on_delete=True if args.import_id else None,
            ),
        )
        bucket_id = self.bucket.id
        access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket_id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket_id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket_id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        if args.kms_key_arn is None:
            default: dict[str, Any] = {"sse_algorithm": "AES256"}
        else:
            default = {"sse_algorithm": "aws:kms", "kms_master_key_id": args.kms_key_arn}
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket_id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": default,
                    # Bucket keys cut KMS requests (and cost) by orders of magnitude.
                    "bucket_key_enabled": args.kms_key_arn is not None,
                }
            ],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket_id,
            rules=[
                {
                    "id": "expire-noncurrent-versions",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "noncurrent_version_expiration": {
                        "noncurrent_days": args.noncurrent_version_expiration_days
                    },
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
                }
            ],
            # S3 rejects noncurrent-version rules racing the versioning change.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket_id,
            policy=self.bucket.arn.apply(
                lambda arn: json.dumps(tls_only_policy(arn), sort_keys=True)
            ),
            # Concurrent public-access-block and policy writes fail with OperationAborted.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access_block]),
        )
        self.name = self.bucket.bucket
        self.arn = self.bucket.arn
        self.register_outputs({"name": self.name, "arn": self.arn})


@dataclass(frozen=True)
class StorageArgs:
    """The stage, its KMS key (None: SSE-S3), and whether buckets are protected from deletion."""

    stage: Stage
    kms_key_arn: pulumi.Input[str] | None = None
    protect: bool = False


class Storage(pulumi.ComponentResource):
    """The source bucket MWAA reads DAGs, plugins and requirements from; the data lake if owned."""

    source: SecureBucket
    data_lake: SecureBucket | None

    def __init__(
        self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mwaa-elt:storage:Storage", name, None, opts)
        stage = args.stage
        days = stage.config.noncurrent_version_expiration_days
        self.source = SecureBucket(
            f"{name}-source",
            SecureBucketArgs(
                stage.source_bucket,
                days,
                args.kms_key_arn,
                args.protect,
                import_id=stage.config.adopt.bucket if stage.config.adopt is not None else None,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.data_lake = None
        if stage.manages_data_lake_bucket:
            self.data_lake = SecureBucket(
                f"{name}-data-lake",
                SecureBucketArgs(stage.data_lake_bucket, days, args.kms_key_arn, args.protect),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs(
            {
                "source_bucket": self.source.name,
                "data_lake_bucket": self.data_lake.name if self.data_lake else None,
            }
        )
