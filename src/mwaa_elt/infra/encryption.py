"""The stage's customer-managed KMS key, for its buckets, Athena results and MWAA's logs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from mwaa_elt.lifecycle.adopt import KEY_IGNORED, kms_key_id
from mwaa_elt.stage import Stage

# What CloudWatch Logs needs to encrypt and read back a log group with a customer key.
_LOGS_ACTIONS = [
    "kms:Decrypt*",
    "kms:Describe*",
    "kms:Encrypt*",
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
]


def key_policy(stage: Stage) -> dict[str, Any]:
    """The key policy: the account administers the key; CloudWatch Logs uses it for MWAA's logs,
    CloudWatch alarms for the alert topics."""
    p, region, account = stage.partition, stage.region, stage.account_id
    log_groups = f"arn:{p}:logs:{region}:{account}:log-group:{stage.log_group_prefix}*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                # Without it no IAM policy could grant use of the key, and it becomes unmanageable.
                "Sid": "AccountAdministersKey",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{p}:iam::{account}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "CloudWatchLogsEncryptsEnvironmentLogs",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.{stage.dns_suffix}"},
                "Action": _LOGS_ACTIONS,
                "Resource": "*",
                "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
            },
            {
                # The alert topics are encrypted with this key; without it CloudWatch alarms of
                # this account could not publish to them (mwaa_elt.infra.monitoring).
                "Sid": "CloudWatchAlarmsPublishToAlertTopics",
                "Effect": "Allow",
                "Principal": {"Service": f"cloudwatch.{stage.dns_suffix}"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            },
        ],
    }


@dataclass(frozen=True)
class EncryptionArgs:
    """The stage, and whether its key is protected against deletion."""

    stage: Stage
    protect: bool = False


class Encryption(pulumi.ComponentResource):
    """A rotating KMS key with the stage's alias."""

    key: aws.kms.Key
    key_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: EncryptionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mwaa-elt:encryption:Encryption", name, None, opts)
        stage = args.stage
        if stage.kms_key_alias is None:
            raise ValueError(f"stage {stage.name} does not use a customer-managed key")
        # An adopted key (`mwaa-elt stage import`) is imported by its id; see
        # mwaa_elt.lifecycle.adopt for what is ignored until `adopt:` is removed.
        adopt = stage.config.adopt
        adopted = adopt.kms_key if adopt is not None else None
        self.key = aws.kms.Key(
            f"{name}-key",
            # The first environment's name, whichever serves the stage: a description changed
            # by retiring blue would update (a security group: replace) this shared resource.
            description=f"MWAA environment {stage.resource_prefix}: S3, Athena, Airflow logs",
            enable_key_rotation=True,
            deletion_window_in_days=stage.config.encryption.key_deletion_window_days,
            policy=json.dumps(key_policy(stage), sort_keys=True),
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                import_=kms_key_id(adopted) if adopted else None,
                ignore_changes=list(KEY_IGNORED) if adopted else None,
                retain_on_delete=True if adopted else None,
            ),
        )
        alias_adopted = adopted is not None and adopt is not None and adopt.kms_key_alias
        aws.kms.Alias(
            f"{name}-alias",
            name=stage.kms_key_alias,
            target_key_id=self.key.key_id,
            opts=pulumi.ResourceOptions(
                parent=self,
                import_=stage.kms_key_alias if alias_adopted else None,
                retain_on_delete=True if alias_adopted else None,
            ),
        )
        self.key_arn = self.key.arn
        self.register_outputs({"key_arn": self.key_arn})
