"""IAM policy documents of a stage: pure functions of the stage model, exactly what Pulumi deploys.

Every statement names this stage's resources. `Resource: "*"` appears only for actions that
AWS offers no resource-level scoping for, and no action contains a wildcard.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mwaa_elt.stage import EMR_MANAGED_POLICIES_TAG, GITHUB_OIDC_HOST, Stage
from mwaa_elt.stage.green import environments

EMR_SERVICE_MANAGED_POLICY = "service-role/AmazonEMRServicePolicy_v2"
STAGE_TAG = "stage"

Document = dict[str, Any]


@dataclass(frozen=True)
class NamedPolicy:
    """An inline policy: its name on the role and its document."""

    name: str
    document: Document


def _one_or_list(values: list[str]) -> str | list[str]:
    """One value as itself (documents without a cutover stay as they were), more as a list."""
    return values[0] if len(values) == 1 else values


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
    """MWAA may assume the role only for this stage's environment (confused-deputy guidance)."""
    trust = _trust("airflow.amazonaws.com", "airflow-env.amazonaws.com")
    trust["Statement"][0]["Condition"] = {
        "StringEquals": {"aws:SourceAccount": stage.account_id},
        # With a cutover, the green environment assumes the same role (`mwaa_elt.stage.green`).
        "ArnLike": {
            "aws:SourceArn": _one_or_list([e.environment_arn for e in environments(stage)])
        },
    }
    return trust


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
        _allow(
            "PublishMetrics",
            ["airflow:PublishMetrics"],
            _one_or_list([e.environment_arn for e in environments(stage)]),
        ),
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
        *_metadata_backups(stage),
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
            _one_or_list(
                [
                    f"arn:{p}:logs:{region}:{account}:log-group:{e.log_group_prefix}*"
                    for e in environments(stage)
                ]
            ),
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


def _metadata_backups(stage: Stage) -> list[Document]:
    """Metadata backups (`mwaa-elt backup`) hold variables and connection fields: no DAG running
    under this role reads or writes them (docs/upgrades.md). On Airflow 2, mwaa-dr's backup and
    restore DAGs run under this role and need their work area, `<backups>/mwaa-dr/`: the deny
    then names every backup id instead (each starts with its UTC year, a digit), and the role
    may write the work area alone."""
    bucket = stage.source_bucket_arn
    backups = f"{bucket}/{stage.backups_prefix}"
    actions = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"]
    if stage.airflow.major != 2:
        return [
            {
                "Sid": "DenyMetadataBackups",
                "Effect": "Deny",
                "Action": actions,
                "Resource": f"{backups}*",
            }
        ]
    return [
        {
            "Sid": "DenyMetadataBackups",
            "Effect": "Deny",
            "Action": actions,
            "Resource": [f"{backups}{digit}*" for digit in "0123456789"],
        },
        # mwaa-dr streams each table with smart_open: multipart uploads for large ones.
        _allow(
            "MwaaDrWorkArea",
            ["s3:AbortMultipartUpload", "s3:PutObject"],
            f"{bucket}/{stage.paths.mwaa_dr}*",
        ),
    ]


_KMS_ACTIONS = [
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
]


def _kms_statement(stage: Stage, services: list[str], actions: list[str] | None = None) -> Document:
    """KMS use only through the named services: the stage's own key, or AWS-owned keys."""
    actions = sorted(actions or _KMS_ACTIONS)
    via = sorted(f"{service}.{stage.region}.{stage.dns_suffix}" for service in services)
    account_keys = f"arn:{stage.partition}:kms:{stage.region}:{stage.account_id}:key/*"
    if stage.kms_key_alias is None:
        return {
            "Sid": "KmsViaServices",
            "Effect": "Allow",
            "Action": actions,
            "NotResource": account_keys,
            "Condition": {"StringLike": {"kms:ViaService": via}},
        }
    return _allow(
        "KmsViaServices",
        actions,
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
        # A listing names a readable prefix. HeadObject on a missing key is checked against
        # ListBucket without any s3:prefix: allowed, S3 answers 404 (the key sensor waits);
        # refused, 403 (the sensor fails). Hence IfExists.
        _allow(
            "ListReadablePrefixes",
            ["s3:ListBucket"],
            f"arn:{p}:s3:::{lake}",
            Condition={"StringLikeIfExists": _prefix_condition(read)["StringLike"]},
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
    managed_key, managed_value = EMR_MANAGED_POLICIES_TAG
    return _document(
        _allow(
            "LaunchStageTaggedClusters",
            ["elasticmapreduce:RunJobFlow"],
            "*",  # RunJobFlow has no resource type; the tags on the request scope it
            # Without the managed-policies tag, AmazonEMRServicePolicy_v2 cannot run the cluster.
            Condition={
                "StringEquals": {**stage_tag, f"aws:RequestTag/{managed_key}": managed_value}
            },
        ),
        # Tags are written on launch; the resource tag keeps the role from re-tagging a cluster
        # of another stage (or an untagged one) into its own (AWS's EMR tag-based access pattern).
        _allow(
            "TagOnLaunch",
            ["elasticmapreduce:AddTags"],
            stage.emr_cluster_arn_pattern,
            Condition={"StringEquals": {**stage_tag, f"aws:ResourceTag/{STAGE_TAG}": stage.name}},
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
    statements = [
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
    ]
    if stage.kms_key_alias is not None:
        # Secrets of a stage with its own key are encrypted with it; Secrets Manager decrypts
        # them on the role's behalf (Airflow's secrets backend reads emr_subnet_id this way).
        statements.append(
            _kms_statement(stage, services=["secretsmanager"], actions=["kms:Decrypt"])
        )
    return _document(*statements)


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


# -- delivery: the CI promoter and release-reader roles --------------------------------------
#
# What `mwaa-elt promote`, `status` and `rollback` call (src/mwaa_elt/promote/): on the stage's
# source bucket HeadObject/GetObject (also by version) and PutObject (conditional writes too)
# under dags/, scripts/ and .mwaa-elt/; DeleteObject of DAG files (prune) and of the lock;
# ListObjectVersions of dags/ (status, drift); on MWAA GetEnvironment and InvokeRestApi (import
# errors, DAG sources, runs: Airflow's Viewer role); the previous stage is read through its
# release reader. tests/iam/test_delivery_roles_evaluated.py proves it against recorded calls.


def _stage_or_none(stages: Mapping[str, Stage], name: str | None) -> Stage | None:
    return stages.get(name) if name is not None else None


def _readers_of(stage: Stage, stages: Mapping[str, Stage]) -> list[Stage]:
    """The stages whose promotions read `stage` (they promote from it), with delivery on."""
    return [
        s
        for s in stages.values()
        if s.promotes_from == stage.name and s.config.delivery is not None
    ]


def release_pipeline_host(stages: Mapping[str, Stage]) -> Stage | None:
    """The stage whose stack hosts the release pipeline, if one does."""
    hosts = [
        s for s in stages.values() if s.config.delivery and s.config.delivery.pipeline is not None
    ]
    return hosts[0] if hosts else None


def _tool_state_listing(stage: Stage, prefixes: list[str]) -> Document:
    # A listing names one of `prefixes`; a HEAD or GET of a missing key is checked against
    # ListBucket without any s3:prefix, and only with it does S3 answer 404 (the tool's "not
    # there yet": no manifest, no lock) rather than 403. Hence IfExists.
    return _allow(
        "ListStageBucket",
        ["s3:ListBucket"],
        stage.source_bucket_arn,
        Condition={"StringLikeIfExists": _prefix_condition(prefixes)["StringLike"]},
    )


def ci_role_trust_policy(stage: Stage, stages: Mapping[str, Stage]) -> Document:
    """GitHub Actions jobs of this repository in this stage's GitHub Environment, and the
    release pipeline's builds, may assume the stage's CI role; nobody else."""
    delivery = stage.config.delivery
    assert delivery is not None, f"stage {stage.name} has no delivery block"
    statements: list[Document] = []
    if delivery.github_actions:
        statements.append(
            {
                "Sid": "GitHubActionsInTheStageEnvironment",
                "Effect": "Allow",
                "Principal": {"Federated": stage.github_oidc_provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{GITHUB_OIDC_HOST}:aud": "sts.amazonaws.com",
                        f"{GITHUB_OIDC_HOST}:sub": (
                            f"repo:{delivery.repository}:environment:{stage.name}"
                        ),
                    }
                },
            }
        )
    host = release_pipeline_host(stages)
    if host is not None:
        statements.append(
            {
                "Sid": "ReleasePipelineBuilds",
                "Effect": "Allow",
                "Principal": {"AWS": host.role_arn(host.release_build_role_name)},
                "Action": "sts:AssumeRole",
            }
        )
    return _document(*statements)


def _ci_statements(stage: Stage, bucket: str, state: str, suffix: str = "") -> list[Document]:
    """What promote, status and rollback need of one environment's DAG folder and state.

    `suffix` names a cutover's green environment (`mwaa_elt.stage.green`), whose scripts are the
    stage's own (content-addressed, shared)."""
    scripts = [] if suffix else [stage.scripts_prefix]
    statements = [
        _tool_state_listing(stage, [stage.dags_prefix, *scripts, state]),
        _allow(
            "ListDagVersions",  # status: what is live and whether it drifted
            ["s3:ListBucketVersions"],
            bucket,
            Condition=_prefix_condition([stage.dags_prefix]),
        ),
        _allow(
            "ReadDagsScriptsAndReleaseState",
            ["s3:GetObject", "s3:GetObjectVersion"],
            [
                f"{bucket}/{stage.dags_prefix}*",
                *(f"{bucket}/{p}*" for p in scripts),
                f"{bucket}/{state}*",
            ],
        ),
        _allow(
            "WriteDagsScriptsAndReleaseState",
            ["s3:PutObject"],
            [
                f"{bucket}/{stage.dags_prefix}*",
                *(f"{bucket}/{p}*" for p in scripts),
                f"{bucket}/{stage.bundles_prefix}*",
                f"{bucket}/{stage.templates_prefix}*",
                f"{bucket}/{stage.manifest_key}",
                f"{bucket}/{stage.history_prefix}*",
                f"{bucket}/{stage.lock_key}",
            ],
        ),
        # Prune removes DAG files; the lock is released by deleting it. Scripts, bundles and the
        # manifest are never deleted: recorded releases point at them.
        _allow(
            "RemoveDagsAndReleaseTheLock",
            ["s3:DeleteObject"],
            [f"{bucket}/{stage.dags_prefix}*", f"{bucket}/{stage.lock_key}"],
        ),
        _allow("ReadEnvironment", ["airflow:GetEnvironment"], stage.environment_arn),
        _allow("ReadAirflowRestApi", ["airflow:InvokeRestApi"], stage.airflow_rbac_role_arn),
    ]
    for statement in statements:
        statement["Sid"] += suffix
    return statements


def ci_role_policies(stage: Stage, stages: Mapping[str, Stage]) -> list[NamedPolicy]:
    """The CI promoter role: exactly what promote, status and rollback of this stage need."""
    bucket = stage.source_bucket_arn
    state = stage.paths.tool_state
    statements = [
        *_ci_statements(stage, bucket, state),
        *(
            # Promotion writes every pipeline to a cutover's green environment too.
            statement
            for green in environments(stage)[1:]
            for statement in _ci_statements(green, bucket, green.paths.tool_state, "Green")
        ),
    ]
    statements.append(
        # The release state under .mwaa-elt/ is the CI role's, but not the metadata backups
        # (variables, connection fields): those are the operator role's alone.
        {
            "Sid": "DenyMetadataBackups",
            "Effect": "Deny",
            "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
            "Resource": f"{bucket}/{stage.backups_prefix}*",
        }
    )
    statements.append(
        # status: the stage's metric alarms in ALARM (composite ones would need "*"); a green
        # environment's alarms (`<prefix>-<stage>-green-…`) share the prefix.
        _allow(
            "ReadAlarmStates",
            ["cloudwatch:DescribeAlarms"],
            f"arn:aws:cloudwatch:{stage.region}:{stage.account_id}:alarm:{stage.resource_prefix}-*",
        )
    )
    if stage.kms_key_alias is not None:
        statements.append(
            _kms_statement(stage, services=["s3"], actions=["kms:Decrypt", "kms:GenerateDataKey"])
        )
    source = _stage_or_none(stages, stage.promotes_from)
    if source is not None and source.config.delivery is not None:
        statements.append(
            _allow(
                "ReadSourceStageThroughItsReleaseReader",
                ["sts:AssumeRole"],
                source.role_arn(source.release_reader_role_name),
            )
        )
    return [NamedPolicy("promote", _document(*statements))]


def release_reader_trust_policy(stage: Stage, stages: Mapping[str, Stage]) -> Document:
    """Only the CI roles of the stages that promote from this one may read its releases."""
    readers = sorted(r.role_arn(r.ci_role_name) for r in _readers_of(stage, stages))
    return _document(
        {
            "Sid": "NextStagePromotionReadsReleases",
            "Effect": "Allow",
            "Principal": {"AWS": readers if len(readers) > 1 else readers[0]},
            "Action": "sts:AssumeRole",
        }
    )


def release_reader_policies(stage: Stage) -> list[NamedPolicy]:
    """Read this stage's releases (manifest, bundles, template snapshots) and its Airflow's
    view (latest runs, for the next stage's requireSourceRunSuccess gate); nothing else."""
    bucket = stage.source_bucket_arn
    statements = [
        _tool_state_listing(stage, [stage.paths.tool_state]),
        _allow(
            "ReadReleases",
            ["s3:GetObject"],
            [
                f"{bucket}/{stage.manifest_key}",
                f"{bucket}/{stage.bundles_prefix}*",
                f"{bucket}/{stage.templates_prefix}*",
            ],
        ),
        _allow("ReadEnvironment", ["airflow:GetEnvironment"], stage.environment_arn),
        _allow("ReadAirflowRestApi", ["airflow:InvokeRestApi"], stage.airflow_rbac_role_arn),
    ]
    if stage.kms_key_alias is not None:
        statements.append(_kms_statement(stage, services=["s3"], actions=["kms:Decrypt"]))
    return [NamedPolicy("read-releases", _document(*statements))]


@dataclass(frozen=True)
class RoleDocuments:
    """One role of the stage: its name, trust policy and inline policies."""

    name: str
    trust: Document
    policies: list[NamedPolicy]


# -- the operator role: backup, restore, upgrade apply, cutover switch ------------------------
#
# What `mwaa-elt backup`, `restore`, `upgrade apply` and `cutover switch/finish` call
# (src/mwaa_elt/lifecycle/): MWAA GetEnvironment and InvokeRestApi as Airflow's Op role
# (variables, connections, pools, pauses) on each environment of the stage; S3 Get/PutObject on
# the metadata backups and the cutover record (ListBucket of the backups, SSE-KMS with the
# stage's key); `upgrade apply` re-promotes every live pipeline, so the promotion statements of
# the CI role for the stage's own environments too (not the previous stage's release reader).
# tests/iam/test_operator_role_evaluated.py proves it.


def operator_role_trust_policy(stage: Stage) -> Document:
    """The principals the stack names (in the stage's account), with MFA unless turned off."""
    operator = stage.config.operator
    assert operator is not None, f"stage {stage.name} has no operator block"
    condition: Document = {"StringEquals": {"aws:PrincipalAccount": stage.account_id}}
    if operator.require_mfa:
        condition["Bool"] = {"aws:MultiFactorAuthPresent": "true"}
    return _document(
        {
            "Sid": "PlatformEngineers",
            "Effect": "Allow",
            "Principal": {"AWS": _one_or_list(sorted(operator.principals))},
            "Action": "sts:AssumeRole",
            "Condition": condition,
        }
    )


def operator_role_policies(stage: Stage) -> list[NamedPolicy]:
    """Airflow's Op role and the metadata records of the stage's environments; promotion into
    them for `upgrade apply`."""
    bucket = stage.source_bucket_arn
    backups = stage.backups_prefix
    records = [f"{bucket}/{backups}*", f"{bucket}/{stage.cutover_record_key}"]
    environments_of = environments(stage)
    operate = [
        _allow(
            "AirflowOpRole",
            ["airflow:CreateWebLoginToken", "airflow:InvokeRestApi"],
            _one_or_list([e.airflow_operator_role_arn for e in environments_of]),
        ),
        _allow(
            "ReadEnvironments",
            ["airflow:GetEnvironment"],
            _one_or_list([e.environment_arn for e in environments_of]),
        ),
        _allow(
            "ListBackups",
            ["s3:ListBucket"],
            bucket,
            # A GET of a missing record is checked against ListBucket without a prefix: IfExists.
            Condition={"StringLikeIfExists": _prefix_condition([backups])["StringLike"]},
        ),
        _allow("MetadataBackupsAndCutoverRecord", ["s3:GetObject", "s3:PutObject"], records),
    ]
    if stage.kms_key_alias is not None:
        actions = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
        operate.append(_kms_statement(stage, services=["s3"], actions=actions))
    promote = [
        *_ci_statements(stage, bucket, stage.paths.tool_state),
        *(
            statement
            for green in environments_of[1:]
            for statement in _ci_statements(green, bucket, green.paths.tool_state, "Green")
        ),
    ]
    return [
        NamedPolicy("operate", _document(*operate)),
        NamedPolicy("promote", _document(*promote)),
    ]


def operator_role(stage: Stage) -> RoleDocuments | None:
    """The stage's operator role, when its stack has an `operator` block."""
    if stage.config.operator is None:
        return None
    return RoleDocuments(
        stage.operator_role_name, operator_role_trust_policy(stage), operator_role_policies(stage)
    )


def delivery_roles(stage: Stage, stages: Mapping[str, Stage]) -> list[RoleDocuments]:
    """The stage's CI promoter role and, when a later stage promotes from it, its release
    reader; none without a `delivery` block."""
    if stage.config.delivery is None:
        return []
    roles = [
        RoleDocuments(
            stage.ci_role_name, ci_role_trust_policy(stage, stages), ci_role_policies(stage, stages)
        )
    ]
    if _readers_of(stage, stages):
        roles.append(
            RoleDocuments(
                stage.release_reader_role_name,
                release_reader_trust_policy(stage, stages),
                release_reader_policies(stage),
            )
        )
    return roles


# -- the release pipeline (in the hosting stage's account) -----------------------------------


def _service_trust(service: str, stage: Stage) -> Document:
    trust = _trust(f"{service}.{stage.dns_suffix}")
    trust["Statement"][0]["Condition"] = {"StringEquals": {"aws:SourceAccount": stage.account_id}}
    return trust


def _release_artifacts_arn(host: Stage) -> str:
    from mwaa_elt.infra.documents.release_pipeline import artifact_bucket_name

    return f"arn:{host.partition}:s3:::{artifact_bucket_name(host)}"


def _connections_arn(host: Stage) -> str:
    return host.arn("codeconnections", "connection/*")


def release_build_trust_policy(host: Stage) -> Document:
    return _service_trust("codebuild", host)


def release_build_policies(host: Stage, stages: Mapping[str, Stage]) -> list[NamedPolicy]:
    """The release's CodeBuild projects: their logs, artifacts and reports, the GitHub
    connection, and assuming each stage's CI role — every AWS change goes through those."""
    from mwaa_elt.infra.documents.release_pipeline import promotion_order

    prefix = host.config.name_prefix
    artifacts = _release_artifacts_arn(host)
    statements = [
        _allow(
            "BuildLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            host.arn("logs", f"log-group:/aws/codebuild/{prefix}-*"),
        ),
        _allow(
            "PipelineArtifacts",
            ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
            f"{artifacts}/*",
        ),
        _allow("LocateArtifacts", ["s3:GetBucketLocation"], artifacts),
        _allow(
            "CloneThroughTheConnection",
            ["codeconnections:GetConnectionToken", "codeconnections:UseConnection"],
            _connections_arn(host),
        ),
        _allow(
            "TestReports",
            [
                "codebuild:BatchPutTestCases",
                "codebuild:CreateReport",
                "codebuild:CreateReportGroup",
                "codebuild:UpdateReport",
            ],
            host.arn("codebuild", f"report-group/{prefix}-*"),
        ),
        _allow(
            "AssumeStageCiRoles",
            ["sts:AssumeRole"],
            [s.role_arn(s.ci_role_name) for s in promotion_order(stages)],
        ),
    ]
    if host.kms_key_alias is not None:
        statements.append(
            _kms_statement(
                host, services=["s3", "logs"], actions=["kms:Decrypt", "kms:GenerateDataKey"]
            )
        )
    return [NamedPolicy("release-build", _document(*statements))]


def release_pipeline_trust_policy(host: Stage) -> Document:
    return _service_trust("codepipeline", host)


def release_pipeline_policies(host: Stage) -> list[NamedPolicy]:
    """The pipeline itself: start its builds, read the source through the connection, keep
    artifacts, and notify approvers."""
    from mwaa_elt.infra.documents.release_pipeline import approval_topic_name, build_projects

    artifacts = _release_artifacts_arn(host)
    projects = [host.arn("codebuild", f"project/{p.name}") for p in build_projects(host)[1:]]
    statements = [
        _allow("RunBuilds", ["codebuild:BatchGetBuilds", "codebuild:StartBuild"], projects),
        _allow(
            "SourceThroughTheConnection", ["codeconnections:UseConnection"], _connections_arn(host)
        ),
        _allow(
            "PipelineArtifacts",
            ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
            f"{artifacts}/*",
        ),
        _allow("ArtifactBucket", ["s3:GetBucketLocation", "s3:GetBucketVersioning"], artifacts),
        _allow("NotifyApprovers", ["sns:Publish"], host.arn("sns", approval_topic_name(host))),
    ]
    if host.kms_key_alias is not None:
        statements.append(
            _kms_statement(
                host, services=["s3", "sns"], actions=["kms:Decrypt", "kms:GenerateDataKey"]
            )
        )
    return [NamedPolicy("release-pipeline", _document(*statements))]


def stage_roles(stage: Stage, stages: Mapping[str, Stage]) -> list[RoleDocuments]:
    """Every role the stage's program deploys with its trust and inline policies, in the order
    `mwaa-elt infra policies` shows them: execution role, EMR instance role, delivery roles,
    operator role, release pipeline roles."""
    roles = [
        RoleDocuments(
            stage.execution_role_name,
            execution_role_trust_policy(stage),
            execution_role_policies(stage),
        ),
        RoleDocuments(
            stage.emr_instance_role,
            emr_instance_role_trust_policy(stage),
            emr_instance_role_policies(stage),
        ),
        *delivery_roles(stage, stages),
    ]
    operator = operator_role(stage)
    if operator is not None:
        roles.append(operator)
    delivery = stage.config.delivery
    if delivery is not None and delivery.pipeline is not None:
        from mwaa_elt.infra.documents.release_pipeline import pipeline_role_name

        roles += [
            RoleDocuments(
                stage.release_build_role_name,
                release_build_trust_policy(stage),
                release_build_policies(stage, stages),
            ),
            RoleDocuments(
                pipeline_role_name(stage),
                release_pipeline_trust_policy(stage),
                release_pipeline_policies(stage),
            ),
        ]
    return roles
