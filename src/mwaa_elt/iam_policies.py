"""IAM policy documents of a stage: pure functions of the stage model, exactly what Pulumi deploys.

Every statement names this stage's resources. `Resource: "*"` appears only for actions that
AWS offers no resource-level scoping for, and no action contains a wildcard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mwaa_elt.stage import Stage

EMR_SERVICE_MANAGED_POLICY = "service-role/AmazonEMRServicePolicy_v2"
STAGE_TAG = "stage"

Document = dict[str, Any]


@dataclass(frozen=True)
class NamedPolicy:
    """An inline policy: its name on the role and its document."""

    name: str
    document: Document


def _document(*statements: Document) -> Document:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(sid: str, actions: list[str], resources: list[str] | str, **extra: Any) -> Document:
    statement = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    statement.update(extra)
    return statement


def _trust(*services: str) -> Document:
    return _document(
        {
            "Effect": "Allow",
            "Principal": {"Service": sorted(services)},
            "Action": "sts:AssumeRole",
        }
    )


def _object_arns(bucket: str, prefixes: list[str], partition: str) -> list[str]:
    return [f"arn:{partition}:s3:::{bucket}/{prefix}*" for prefix in prefixes]


def _prefix_condition(prefixes: list[str]) -> Document:
    # ListBucket is scoped by the s3:prefix the caller asks for, not by an object ARN.
    return {"StringLike": {"s3:prefix": sorted({*prefixes, *(p + "*" for p in prefixes)})}}


# -- the MWAA execution role ---------------------------------------------------------------


def execution_role_trust_policy(stage: Stage) -> Document:
    return _trust("airflow.amazonaws.com", "airflow-env.amazonaws.com")


def execution_role_policies(stage: Stage) -> list[NamedPolicy]:
    """The execution role's inline policies: MWAA's baseline, Athena, Glue, S3, EMR, secrets."""
    return [
        NamedPolicy("mwaa-baseline", _mwaa_baseline(stage)),
        NamedPolicy("athena", _athena(stage)),
        NamedPolicy("glue-catalog", _glue(stage, write=True)),
        NamedPolicy("data-lake", _data_lake(stage)),
        NamedPolicy("emr-clusters", _emr_clusters(stage)),
        NamedPolicy("secrets", _secrets(stage)),
        NamedPolicy("alerts", _alerts(stage)),
    ]


def _mwaa_baseline(stage: Stage) -> Document:
    p, region, account = stage.partition, stage.region, stage.account_id
    bucket = stage.source_bucket_arn
    statements = [
        _allow("PublishMetrics", ["airflow:PublishMetrics"], stage.environment_arn),
        {
            "Sid": "DenyListAllBuckets",
            "Effect": "Deny",
            "Action": "s3:ListAllMyBuckets",
            "Resource": [bucket, f"{bucket}/*"],
        },
        _allow(
            "ReadSourceBucket",
            [
                "s3:GetBucketLocation",
                "s3:GetBucketPublicAccessBlock",
                "s3:GetBucketVersioning",
                "s3:GetEncryptionConfiguration",
                "s3:GetObject",
                "s3:GetObjectVersion",
                "s3:ListBucket",
                "s3:ListBucketVersions",
            ],
            [bucket, f"{bucket}/*"],
        ),
        _allow("AccountPublicAccessBlock", ["s3:GetAccountPublicAccessBlock"], "*"),  # no ARN
        _allow(
            "EnvironmentLogs",
            [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:GetLogEvents",
                "logs:GetLogGroupFields",
                "logs:GetLogRecord",
                "logs:GetQueryResults",
                "logs:PutLogEvents",
            ],
            f"arn:{p}:logs:{region}:{account}:log-group:{stage.log_group_prefix}*",
        ),
        _allow("DescribeLogGroups", ["logs:DescribeLogGroups"], "*"),  # no resource type
        _allow("PutMetricData", ["cloudwatch:PutMetricData"], "*"),  # no resource type
        _allow(
            "CeleryQueues",
            [
                "sqs:ChangeMessageVisibility",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:ReceiveMessage",
                "sqs:SendMessage",
            ],
            f"arn:{p}:sqs:{region}:*:airflow-celery-*",
        ),
        # With the stage's own key, MWAA also reads the source bucket through S3 with it.
        _kms_statement(stage, services=["sqs", "s3"] if stage.kms_key_alias else ["sqs"]),
    ]
    return _document(*statements)


_KMS_ACTIONS = [
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
]


def _kms_statement(stage: Stage, services: list[str]) -> Document:
    """KMS use only through the named services: the stage's own key, or AWS-owned keys."""
    via = sorted(f"{service}.{stage.region}.{stage.dns_suffix}" for service in services)
    account_keys = f"arn:{stage.partition}:kms:{stage.region}:{stage.account_id}:key/*"
    if stage.kms_key_alias is None:
        return {
            "Sid": "KmsViaServices",
            "Effect": "Allow",
            "Action": _KMS_ACTIONS,
            "NotResource": account_keys,
            "Condition": {"StringLike": {"kms:ViaService": via}},
        }
    return _allow(
        "KmsViaServices",
        _KMS_ACTIONS,
        account_keys,
        Condition={
            "StringLike": {"kms:ViaService": via},
            "StringEquals": {f"aws:ResourceTag/{STAGE_TAG}": stage.name},
        },
    )


def _athena(stage: Stage) -> Document:
    p = stage.partition
    results_prefix = stage.paths.athena_results
    statements = [
        _allow(
            "QueriesInStageWorkgroup",
            [
                "athena:BatchGetQueryExecution",
                "athena:GetQueryExecution",
                "athena:GetQueryResults",
                "athena:GetQueryResultsStream",
                "athena:GetWorkGroup",
                "athena:ListQueryExecutions",
                "athena:StartQueryExecution",
                "athena:StopQueryExecution",
            ],
            stage.athena_workgroup_arn,
        ),
        _allow(
            "WriteQueryResults",
            [
                "s3:AbortMultipartUpload",
                "s3:DeleteObject",
                "s3:GetObject",
                "s3:ListMultipartUploadParts",
                "s3:PutObject",
            ],
            f"arn:{p}:s3:::{stage.source_bucket}/{results_prefix}*",
        ),
    ]
    if stage.kms_key_alias is not None:
        statements.append(_kms_statement(stage, services=["s3", "athena"]))
    return _document(*statements)


def _glue(stage: Stage, *, write: bool) -> Document:
    """Glue catalog access to this stage's databases and their tables only."""
    p, region, account = stage.partition, stage.region, stage.account_id
    databases = sorted(stage.glue_databases.values())
    database_arns = [f"arn:{p}:glue:{region}:{account}:database/{name}" for name in databases]
    table_arns = [f"arn:{p}:glue:{region}:{account}:table/{name}/*" for name in databases]
    read = [
        "glue:BatchGetPartition",
        "glue:GetDatabase",
        "glue:GetDatabases",
        "glue:GetPartition",
        "glue:GetPartitions",
        "glue:GetTable",
        "glue:GetTables",
        "glue:GetTableVersions",
    ]
    statements = [
        _allow("ReadStageCatalog", read, [stage.glue_catalog_arn, *database_arns, *table_arns]),
        # Athena resolves unqualified names through the catalog's default database.
        _allow(
            "ReadDefaultDatabase",
            ["glue:GetDatabase"],
            [stage.glue_catalog_arn, f"arn:{p}:glue:{region}:{account}:database/default"],
        ),
    ]
    if write:
        statements.append(
            _allow(
                "WriteStageCatalog",
                [
                    "glue:BatchCreatePartition",
                    "glue:BatchDeletePartition",
                    "glue:CreateDatabase",
                    "glue:CreatePartition",
                    "glue:CreateTable",
                    "glue:DeletePartition",
                    "glue:DeleteTable",
                    "glue:UpdateDatabase",
                    "glue:UpdatePartition",
                    "glue:UpdateTable",
                ],
                [stage.glue_catalog_arn, *database_arns, *table_arns],
            )
        )
    return _document(*statements)


def _data_lake(stage: Stage) -> Document:
    p, lake = stage.partition, stage.data_lake_bucket
    read, write = stage.data_lake_read_prefixes, stage.data_lake_write_prefixes
    return _document(
        _allow("LocateDataLake", ["s3:GetBucketLocation"], f"arn:{p}:s3:::{lake}"),
        _allow(
            "ListReadablePrefixes",
            ["s3:ListBucket"],
            f"arn:{p}:s3:::{lake}",
            Condition=_prefix_condition(read),
        ),
        _allow(
            "ReadPrefixes", ["s3:GetObject", "s3:GetObjectVersion"], _object_arns(lake, read, p)
        ),
        _allow(
            "WriteStagePrefixes",
            [
                "s3:AbortMultipartUpload",
                "s3:DeleteObject",
                "s3:ListMultipartUploadParts",
                "s3:PutObject",
            ],
            _object_arns(lake, write, p),
        ),
    )


def _emr_clusters(stage: Stage) -> Document:
    p, account = stage.partition, stage.account_id
    stage_tag = {f"aws:RequestTag/{STAGE_TAG}": stage.name}
    return _document(
        _allow(
            "LaunchStageTaggedClusters",
            ["elasticmapreduce:RunJobFlow"],
            "*",  # RunJobFlow has no resource type; the stage tag on the request scopes it
            Condition={"StringEquals": stage_tag},
        ),
        _allow(
            "TagOnLaunch",
            ["elasticmapreduce:AddTags"],
            stage.emr_cluster_arn_pattern,
            Condition={"StringEquals": stage_tag},
        ),
        _allow(
            "OperateStageClusters",
            [
                "elasticmapreduce:AddJobFlowSteps",
                "elasticmapreduce:CancelSteps",
                "elasticmapreduce:DescribeCluster",
                "elasticmapreduce:DescribeStep",
                "elasticmapreduce:ListSteps",
                "elasticmapreduce:TerminateJobFlows",
            ],
            stage.emr_cluster_arn_pattern,
            Condition={"StringEquals": {f"aws:ResourceTag/{STAGE_TAG}": stage.name}},
        ),
        _allow(
            "PassStageEmrRoles",
            ["iam:PassRole"],
            [
                f"arn:{p}:iam::{account}:role/{stage.emr_service_role}",
                f"arn:{p}:iam::{account}:role/{stage.emr_instance_role}",
            ],
            Condition={
                "StringEquals": {
                    "iam:PassedToService": sorted(
                        [f"elasticmapreduce.{stage.dns_suffix}", f"ec2.{stage.dns_suffix}"]
                    )
                }
            },
        ),
    )


def _secrets(stage: Stage) -> Document:
    return _document(
        _allow(
            "ReadStageSecrets",
            [
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetResourcePolicy",
                "secretsmanager:GetSecretValue",
                "secretsmanager:ListSecretVersionIds",
            ],
            stage.secrets_arn_pattern,
        ),
        _allow("ListSecrets", ["secretsmanager:ListSecrets"], "*"),  # no resource type
    )


def _alerts(stage: Stage) -> Document:
    topics = [stage.sns_topic_arn(topic) for topic in stage.config.alert_topics]
    statements = [_allow("PublishStageAlerts", ["sns:Publish"], topics)]
    if stage.kms_key_alias is not None:
        statements.append(_kms_statement(stage, services=["sns"]))
    return _document(*statements)


# -- EMR roles -----------------------------------------------------------------------------


def emr_service_role_trust_policy(stage: Stage) -> Document:
    return _trust(f"elasticmapreduce.{stage.dns_suffix}")


def emr_instance_role_trust_policy(stage: Stage) -> Document:
    return _trust(f"ec2.{stage.dns_suffix}")


def emr_instance_role_policies(stage: Stage) -> list[NamedPolicy]:
    """What cluster nodes may do: read scripts, read and write the stage's lake, write logs."""
    p, bucket = stage.partition, stage.source_bucket
    source = _document(
        _allow(
            "ReadScripts",
            ["s3:GetObject", "s3:GetObjectVersion"],
            f"arn:{p}:s3:::{bucket}/{stage.scripts_prefix}*",
        ),
        _allow(
            "WriteClusterLogs",
            ["s3:GetObject", "s3:PutObject"],
            f"arn:{p}:s3:::{bucket}/{stage.paths.emr_logs}*",
        ),
        _allow("LocateSourceBucket", ["s3:GetBucketLocation"], stage.source_bucket_arn),
        _allow(
            "ListScriptsAndLogs",
            ["s3:ListBucket"],
            stage.source_bucket_arn,
            Condition=_prefix_condition([stage.scripts_prefix, stage.paths.emr_logs]),
        ),
    )
    policies = [
        NamedPolicy("source-bucket", source),
        NamedPolicy("data-lake", _data_lake(stage)),
        NamedPolicy("glue-catalog", _glue(stage, write=True)),
    ]
    if stage.kms_key_alias is not None:
        policies.append(NamedPolicy("kms", _document(_kms_statement(stage, services=["s3"]))))
    return policies


def all_role_policies(stage: Stage) -> dict[str, list[NamedPolicy]]:
    """Every inline policy the stage deploys, by role name."""
    return {
        stage.execution_role_name: execution_role_policies(stage),
        stage.emr_instance_role: emr_instance_role_policies(stage),
    }
