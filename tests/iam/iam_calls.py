"""The AWS authorizations a stage's principals need, derived from what they really run.

The execution role: every rendered DAG file is parsed (Python's `ast`, no Airflow import) and
each operator, sensor, hook and notifier in it is mapped to the IAM requests the Amazon provider
makes for it — with concrete ARNs and the context keys IAM sees (request and resource tags,
kms:ViaService, s3:prefix, iam:PassedToService). MWAA's documented baseline for an execution role
(the user guide's "Amazon MWAA execution role" page) is added: the environment reads its source
bucket, writes its logs and metrics, and works its Celery queue.

The mapping, operator by operator (Amazon provider 8.x/9.x behaviour):

- AthenaOperator / a data-quality check through AthenaHook: StartQueryExecution, then
  GetQueryExecution polls (deferred or not), GetQueryResults for checks, StopQueryExecution on
  kill — on the workgroup. Athena acts with the caller's credentials on Glue and S3: it writes
  results under output_location (with the stage key through S3 where the workgroup has one),
  reads each table's database and table (GetDatabase, GetTable), creates or drops what DDL and
  CTAS name (CreateDatabase, CreateTable, DeleteTable), lists and reads LOCATION prefixes, and
  writes CTAS external_location, INSERT targets and UNLOAD destinations. SQL is read with
  regular expressions over the statement kinds the generator emits (documented below), not a
  full parser: enough to name every database, table and location the examples touch.
- S3KeySensor: a wildcard key lists the prefix before the first `*` (ListBucket, s3:prefix);
  a single key is a HeadObject (s3:GetObject), and for a key not there yet S3 decides 404 versus
  403 by s3:ListBucket on the bucket without any prefix.
- S3DeleteObjectsOperator: lists the prefix, then DeleteObjects (s3:DeleteObject per key).
- EmrCreateJobFlowOperator: RunJobFlow ("*", tags on the request), AddTags on the new cluster
  (tag on create: request and resource tags are the launch tags), iam:PassRole of the service
  role to EMR and of the instance role to EC2; the Airflow variable in Ec2SubnetId is read by
  MWAA's Secrets Manager backend (GetSecretValue, and kms:Decrypt through Secrets Manager when
  the stage has its own key).
- EmrAddStepsOperator, EmrStepSensor, EmrTerminateJobFlowOperator: AddJobFlowSteps,
  DescribeStep, TerminateJobFlows (+ DescribeCluster when deferred) on the cluster, which carries
  the tags it was launched with.
- SnsNotifier: sns:Publish on the topic (+ the stage key through SNS when it has one).
- SmtpNotifier: no AWS call.
- Every task resolves its connection `aws_default` through the secrets backend first.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Iterable, Iterator
from typing import Any

from iam_evaluator import Request

from mwaa_elt.infra.encryption import key_policy
from mwaa_elt.infra.storage import tls_only_policy
from mwaa_elt.stage import Stage

FOREIGN_ACCOUNT = "999999999999"
# MWAA's Celery queues live in an account AWS owns, per region.
MWAA_SERVICE_ACCOUNT = "888888888888"
NEW_CLUSTER_ID = "j-2AXXXXXXGAPLF"
QUERY_ID = "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"
AWS_CONN_ID = "aws_default"
# Sample values for the Jinja expressions a rendered DAG leaves to Airflow.
JINJA_SAMPLES = {"ds": "2024-01-01", "ts_nodash": "20240101T000000"}

_JINJA = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_S3_URI = re.compile(r"^s3://([^/]+)/?(.*)$")
_Q = r"`?(\w+)`?"
_CREATE_DATABASE = re.compile(
    rf"\bCREATE\s+(?:DATABASE|SCHEMA)\s+(?:IF\s+NOT\s+EXISTS\s+)?{_Q}", re.I
)
_CREATE_TABLE = re.compile(
    rf"\bCREATE\s+(?:EXTERNAL\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_Q}\.{_Q}", re.I
)
_DROP_TABLE = re.compile(rf"\bDROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?{_Q}\.{_Q}", re.I)
_INSERT = re.compile(rf"\bINSERT\s+(?:INTO|OVERWRITE)\s+(?:TABLE\s+)?{_Q}\.{_Q}", re.I)
_READ = re.compile(rf"\b(?:FROM|JOIN)\s+{_Q}\.{_Q}", re.I)
_LOCATION = re.compile(r"\bLOCATION\s+'(s3://[^']+)'", re.I)
_EXTERNAL_LOCATION = re.compile(r"\bexternal_location\s*=\s*'(s3://[^']+)'", re.I)
_UNLOAD_TO = re.compile(r"\bUNLOAD\b.*?\)\s*TO\s+'(s3://[^']+)'", re.I | re.S)


# -- helpers ---------------------------------------------------------------------------------


def _jinja(text: str) -> str:
    """Replace what Airflow renders at run time by sample values."""
    return _JINJA.sub(lambda m: JINJA_SAMPLES.get(m.group(1), "x"), text)


def _split_s3(uri: str) -> tuple[str, str]:
    match = _S3_URI.match(uri)
    assert match, uri
    return match.group(1), match.group(2)


class _Calls:
    """Collects the requests of one stage's execution role, with the stage's resource policies."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.principal = stage.execution_role_arn
        self.requests: list[Request] = []
        self.key_arn = (
            f"arn:{stage.partition}:kms:{stage.region}:{stage.account_id}:key/"
            "1234abcd-12ab-34cd-56ef-1234567890ab"
            if stage.kms_key_alias
            else None
        )

    def add(
        self,
        why: str,
        action: str,
        resource: str,
        context: dict[str, Any] | None = None,
        *,
        account: str | None = None,
        policy: Any = None,
        scoped: bool = True,
    ) -> None:
        self.requests.append(
            Request(
                principal=self.principal,
                action=action,
                resource=resource,
                resource_account=account or self.stage.account_id,
                context={"aws:SecureTransport": "true", **(context or {})},
                resource_policy=policy,
                why=why,
                scoped=scoped,
            )
        )

    # -- resources with policies ---------------------------------------------------------
    def bucket_policy(self, bucket: str) -> Any:
        stage = self.stage
        owned = {stage.source_bucket}
        if stage.manages_data_lake_bucket:
            owned.add(stage.data_lake_bucket)
        return tls_only_policy(f"arn:{stage.partition}:s3:::{bucket}") if bucket in owned else None

    def s3_object(self, why: str, action: str, bucket: str, key: str) -> None:
        arn = f"arn:{self.stage.partition}:s3:::{bucket}/{key}"
        self.add(why, action, arn, policy=self.bucket_policy(bucket))

    def s3_list(self, why: str, bucket: str, prefix: str | None) -> None:
        context = {} if prefix is None else {"s3:prefix": prefix}
        arn = f"arn:{self.stage.partition}:s3:::{bucket}"
        self.add(why, "s3:ListBucket", arn, context, policy=self.bucket_policy(bucket))

    def kms(self, why: str, service: str, actions: Iterable[str]) -> None:
        """Use of the stage's own key through `service`; nothing when the stage has none."""
        if self.key_arn is None:
            return
        via = f"{service}.{self.stage.region}.{self.stage.dns_suffix}"
        for action in actions:
            self.add(
                why,
                action,
                self.key_arn,
                {"kms:ViaService": via, "aws:ResourceTag/stage": self.stage.name},
                policy=key_policy(self.stage),
            )

    def secret(self, why: str, name: str) -> None:
        stage = self.stage
        arn = f"arn:{stage.partition}:secretsmanager:{stage.region}:{stage.account_id}:secret:{name}-AbCdEf"
        self.add(why, "secretsmanager:GetSecretValue", arn)
        self.kms(why, "secretsmanager", ["kms:Decrypt"])

    def glue(self, why: str, action: str, database: str, table: str | None = None) -> None:
        stage = self.stage
        base = f"arn:{stage.partition}:glue:{stage.region}:{stage.account_id}"
        self.add(why, action, f"{base}:catalog")
        self.add(why, action, f"{base}:database/{database}")
        if table is not None:
            self.add(why, action, f"{base}:table/{database}/{table}")


# -- MWAA's baseline ---------------------------------------------------------------------------


def _service_owned_policy(stage: Stage) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{stage.partition}:iam::{stage.account_id}:root"},
                "Action": ["sqs:*", "kms:*"],
                "Resource": "*",
            }
        ],
    }


def _baseline(calls: _Calls, dag_keys: list[str]) -> None:
    stage = calls.stage
    p, region, account = stage.partition, stage.region, stage.account_id
    why = "MWAA baseline"
    calls.add(why, "airflow:PublishMetrics", stage.environment_arn)
    bucket = stage.source_bucket
    for key in [
        *dag_keys,
        stage.paths.requirements,
        stage.paths.plugins,
        stage.paths.startup_script,
    ]:
        calls.s3_object(why, "s3:GetObject", bucket, key)
        calls.s3_object(why, "s3:GetObjectVersion", bucket, key)
    calls.s3_list(why, bucket, stage.dags_prefix)
    for action in (
        "s3:GetBucketLocation",
        "s3:GetBucketVersioning",
        "s3:GetEncryptionConfiguration",
        "s3:GetBucketPublicAccessBlock",
    ):
        calls.add(why, action, stage.source_bucket_arn, policy=calls.bucket_policy(bucket))
    calls.add(why, "s3:GetAccountPublicAccessBlock", "*", scoped=False)
    for log_type in ("DAGProcessing", "Scheduler", "Task", "WebServer", "Worker"):
        group = f"arn:{p}:logs:{region}:{account}:log-group:{stage.log_group_prefix}{log_type}"
        calls.add(why, "logs:CreateLogGroup", group)
        for action in ("logs:CreateLogStream", "logs:PutLogEvents", "logs:GetLogEvents"):
            calls.add(why, action, f"{group}:log-stream:scheduler_1")
    calls.add(why, "logs:DescribeLogGroups", "*", scoped=False)
    calls.add(why, "cloudwatch:PutMetricData", "*", scoped=False)
    # The queue and its AWS-owned key belong to MWAA's account, whose policies admit the
    # environment's account; modelled so, the evaluation decides on the role's side.
    service_owned = _service_owned_policy(stage)
    queue = f"arn:{p}:sqs:{region}:{MWAA_SERVICE_ACCOUNT}:airflow-celery-0a1b2c3d"
    for action in (
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:ReceiveMessage",
        "sqs:SendMessage",
    ):
        calls.add(
            why, action, queue, account=MWAA_SERVICE_ACCOUNT, policy=service_owned, scoped=False
        )
    sqs_via = {"kms:ViaService": f"sqs.{region}.{stage.dns_suffix}"}
    if calls.key_arn is None:  # the queue's AWS-owned key
        key = (
            f"arn:{p}:kms:{region}:{MWAA_SERVICE_ACCOUNT}:key/0000aaaa-0000-0000-0000-000000000000"
        )
        for action in ("kms:Decrypt", "kms:GenerateDataKey"):
            calls.add(
                why,
                action,
                key,
                sqs_via,
                account=MWAA_SERVICE_ACCOUNT,
                policy=service_owned,
                scoped=False,
            )
    else:
        calls.kms(why, "sqs", ["kms:Decrypt", "kms:GenerateDataKey"])
        calls.kms(why, "s3", ["kms:Decrypt"])  # the source bucket, read with the stage key


# -- operators ---------------------------------------------------------------------------------


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _kwargs(call: ast.Call) -> dict[str, Any]:
    return {k.arg: _literal(k.value) for k in call.keywords if k.arg is not None}


def _callee(call: ast.Call) -> str | None:
    return call.func.id if isinstance(call.func, ast.Name) else None


class _Dag:
    """One rendered DAG file's AWS calls."""

    def __init__(self, calls: _Calls, name: str, text: str) -> None:
        self.calls, self.name = calls, name
        self.tree = ast.parse(text)
        self.cluster_tags: dict[str, str] = {}
        self.table_locations: dict[tuple[str, str], str] = {}

    def why(self, kwargs: dict[str, Any], kind: str) -> str:
        return f"{self.name}.{kwargs.get('task_id', '?')}: {kind}"

    def run(self) -> None:
        calls = [n for n in ast.walk(self.tree) if isinstance(n, ast.Call)]
        # Launches first: later cluster calls act on the cluster the launch tagged.
        calls.sort(key=lambda c: (_callee(c) != "EmrCreateJobFlowOperator", c.lineno))
        for call in calls:
            handler = getattr(self, f"_op_{_callee(call)}", None)
            if handler is not None:
                kwargs = _kwargs(call)
                if kwargs.get("aws_conn_id") or _callee(call) == "PythonOperator":
                    self.calls.secret(
                        self.why(kwargs, "connection"),
                        f"{self.calls.stage.secrets_connections_prefix}/{AWS_CONN_ID}",
                    )
                handler(kwargs)

    # -- Athena --------------------------------------------------------------------------
    def _op_AthenaOperator(self, kwargs: dict[str, Any]) -> None:
        self._athena(
            self.why(kwargs, "AthenaOperator"),
            _jinja(kwargs["query"]),
            kwargs["workgroup"],
            kwargs["output_location"],
            kwargs.get("database", "default"),
        )

    def _op_PythonOperator(self, kwargs: dict[str, Any]) -> None:
        op = kwargs.get("op_kwargs") or {}
        if {"sql", "workgroup", "output_location"} <= set(op):
            why = self.why(kwargs, "data-quality check (AthenaHook)")
            self._athena(why, _jinja(op["sql"]), op["workgroup"], op["output_location"], "default")

    def _athena(self, why: str, sql: str, workgroup: str, output: str, database: str) -> None:
        calls, stage = self.calls, self.calls.stage
        workgroup_arn = (
            f"arn:{stage.partition}:athena:{stage.region}:{stage.account_id}:workgroup/{workgroup}"
        )
        for action in (
            "athena:StartQueryExecution",
            "athena:GetQueryExecution",
            "athena:GetQueryResults",
            "athena:StopQueryExecution",
            "athena:GetWorkGroup",
        ):
            calls.add(why, action, workgroup_arn)
        bucket, prefix = _split_s3(_jinja(output))
        for action in ("s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"):
            calls.s3_object(why, action, bucket, f"{prefix}{QUERY_ID}.csv")
        calls.add(
            why,
            "s3:GetBucketLocation",
            f"arn:{stage.partition}:s3:::{bucket}",
            policy=calls.bucket_policy(bucket),
        )
        calls.kms(why, "s3", ["kms:GenerateDataKey", "kms:Decrypt"])
        calls.glue(why, "glue:GetDatabase", database)
        for db in _CREATE_DATABASE.findall(sql):
            calls.glue(why, "glue:CreateDatabase", db)
        created = set(_CREATE_TABLE.findall(sql))
        for db, table in created:
            calls.glue(why, "glue:CreateTable", db, table)
        for db, table in _DROP_TABLE.findall(sql):
            calls.glue(why, "glue:DeleteTable", db, table)
        reads = set(_READ.findall(sql)) - created
        for db, table in reads:
            calls.glue(why, "glue:GetTable", db, table)
            self._read_location(why, self._location(db, table))
        for db, table in _INSERT.findall(sql):
            calls.glue(why, "glue:GetTable", db, table)
            self._write_location(why, self._location(db, table))
        for location in _LOCATION.findall(sql):
            for db, table in created:
                self.table_locations[(db, table)] = location
            self._read_location(why, location)
        for location in _EXTERNAL_LOCATION.findall(sql):
            for db, table in created:
                self.table_locations[(db, table)] = location
            self._write_location(why, location)
        for location in _UNLOAD_TO.findall(sql):
            self._write_location(why, location)

    def _location(self, database: str, table: str) -> str:
        """A table's location: from DDL or CTAS seen so far, else its database's location."""
        known = self.table_locations.get((database, table))
        if known:
            return known
        stage = self.calls.stage
        logical = next(
            (name for name, real in stage.glue_databases.items() if real == database), database
        )
        base = stage.glue_database_locations.get(
            logical, f"s3://{stage.data_lake_bucket}/{logical}/"
        )
        return f"{base}{table}/"

    def _read_location(self, why: str, uri: str) -> None:
        bucket, prefix = _split_s3(uri)
        self.calls.s3_list(why, bucket, prefix)
        self.calls.s3_object(why, "s3:GetObject", bucket, f"{prefix}part-00000")

    def _write_location(self, why: str, uri: str) -> None:
        bucket, prefix = _split_s3(uri)
        self.calls.s3_list(why, bucket, prefix)  # Athena checks the location is empty
        for action in ("s3:PutObject", "s3:AbortMultipartUpload"):
            self.calls.s3_object(why, action, bucket, f"{prefix}part-00000")

    # -- S3 ------------------------------------------------------------------------------
    def _op_S3KeySensor(self, kwargs: dict[str, Any]) -> None:
        why = self.why(kwargs, "S3KeySensor")
        bucket, key = _split_s3(_jinja(kwargs["bucket_key"]))
        if kwargs.get("wildcard_match"):
            self.calls.s3_list(why, bucket, key.split("*", 1)[0])
        else:
            self.calls.s3_object(why, "s3:GetObject", bucket, key)
            self.calls.s3_list(why + " (404 for a key not there yet)", bucket, None)

    def _op_S3DeleteObjectsOperator(self, kwargs: dict[str, Any]) -> None:
        why = self.why(kwargs, "S3DeleteObjectsOperator")
        bucket, prefix = kwargs["bucket"], _jinja(kwargs["prefix"])
        self.calls.s3_list(why, bucket, prefix)
        self.calls.s3_object(why, "s3:DeleteObject", bucket, f"{prefix}part-00000")

    # -- EMR -----------------------------------------------------------------------------
    def _cluster_arn(self) -> str:
        stage = self.calls.stage
        return f"arn:{stage.partition}:elasticmapreduce:{stage.region}:{stage.account_id}:cluster/{NEW_CLUSTER_ID}"

    def _op_EmrCreateJobFlowOperator(self, kwargs: dict[str, Any]) -> None:
        calls, stage = self.calls, self.calls.stage
        why = self.why(kwargs, "EmrCreateJobFlowOperator")
        flow = kwargs["job_flow_overrides"]
        tags = {t["Key"]: t["Value"] for t in flow.get("Tags", [])}
        self.cluster_tags = tags
        request_tags = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
        tag_keys = {"aws:TagKeys": sorted(tags)}
        calls.add(why, "elasticmapreduce:RunJobFlow", "*", {**request_tags, **tag_keys})
        resource_tags = {f"aws:ResourceTag/{k}": v for k, v in tags.items()}
        calls.add(
            why + " (tag on create)",
            "elasticmapreduce:AddTags",
            self._cluster_arn(),
            {**request_tags, **tag_keys, **resource_tags},
        )
        for role, service in (
            (flow["ServiceRole"], "elasticmapreduce"),
            (flow["JobFlowRole"], "ec2"),
        ):
            calls.add(
                why,
                "iam:PassRole",
                stage.role_arn(role),
                {"iam:PassedToService": f"{service}.{stage.dns_suffix}"},
            )
        for match in _JINJA.finditer(str(flow)):
            expression = match.group(1)
            if expression.startswith("var.value."):
                variable = expression.removeprefix("var.value.")
                calls.secret(why, f"{stage.secrets_variables_prefix}/{variable}")

    def _cluster_call(self, why: str, action: str) -> None:
        tags = {f"aws:ResourceTag/{k}": v for k, v in self.cluster_tags.items()}
        self.calls.add(why, action, self._cluster_arn(), tags)

    def _op_EmrAddStepsOperator(self, kwargs: dict[str, Any]) -> None:
        self._cluster_call(
            self.why(kwargs, "EmrAddStepsOperator"), "elasticmapreduce:AddJobFlowSteps"
        )

    def _op_EmrStepSensor(self, kwargs: dict[str, Any]) -> None:
        self._cluster_call(self.why(kwargs, "EmrStepSensor"), "elasticmapreduce:DescribeStep")

    def _op_EmrTerminateJobFlowOperator(self, kwargs: dict[str, Any]) -> None:
        why = self.why(kwargs, "EmrTerminateJobFlowOperator")
        self._cluster_call(why, "elasticmapreduce:TerminateJobFlows")
        if kwargs.get("deferrable"):
            self._cluster_call(why, "elasticmapreduce:DescribeCluster")

    # -- notifications -------------------------------------------------------------------
    def _op_SnsNotifier(self, kwargs: dict[str, Any]) -> None:
        why = f"{self.name}: SnsNotifier"
        self.calls.add(why, "sns:Publish", kwargs["target_arn"])
        self.calls.kms(why, "sns", ["kms:GenerateDataKey", "kms:Decrypt"])


def execution_role_requests(stage: Stage, dag_files: dict[str, str]) -> list[Request]:
    """Every request `stage`'s execution role makes to run `dag_files` (name → rendered text)."""
    calls = _Calls(stage)
    _baseline(calls, [f"{stage.dags_prefix}{name}.py" for name in sorted(dag_files)])
    for name in sorted(dag_files):
        _Dag(calls, name, dag_files[name]).run()
    return _unique(calls.requests)


def _unique(requests: list[Request]) -> list[Request]:
    seen: set[tuple[Any, ...]] = set()
    found = []
    for request in requests:
        key = (
            request.action,
            request.resource,
            tuple(sorted((k, str(v)) for k, v in request.context.items())),
        )
        if key not in seen:
            seen.add(key)
            found.append(request)
    return found


# -- variants that must be denied --------------------------------------------------------------


def as_principal(requests: Iterable[Request], principal: str) -> list[Request]:
    """The same requests made by another principal (another stage's role)."""
    return [dataclasses.replace(r, principal=principal) for r in requests]


def in_foreign_account(stage: Stage, requests: Iterable[Request]) -> Iterator[Request]:
    """The stage-scoped requests against the same names in an account that is not the stage's."""
    for request in requests:
        if not request.scoped or stage.account_id not in request.resource:
            continue
        yield dataclasses.replace(
            request,
            resource=request.resource.replace(stage.account_id, FOREIGN_ACCOUNT),
            resource_account=FOREIGN_ACCOUNT,
            resource_policy=None,
            why=request.why + " [foreign account]",
        )


def on_other_clusters(requests: Iterable[Request], other_stage: str) -> Iterator[Request]:
    """EMR cluster requests on a cluster untagged, and on one tagged for `other_stage`."""
    for request in requests:
        if not request.action.startswith("elasticmapreduce:"):
            continue
        untagged = {
            k: v for k, v in request.context.items() if not k.startswith("aws:ResourceTag/")
        }
        if request.action == "elasticmapreduce:RunJobFlow":
            untagged = {
                k: v for k, v in untagged.items() if not k.startswith("aws:RequestTag/stage")
            }
        yield dataclasses.replace(request, context=untagged, why=request.why + " [untagged]")
        retagged = dict(request.context)
        for key in ("aws:ResourceTag/stage", "aws:RequestTag/stage"):
            if key in retagged:
                retagged[key] = other_stage
        yield dataclasses.replace(
            request, context=retagged, why=request.why + f" [tagged for {other_stage}]"
        )
