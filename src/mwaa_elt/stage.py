"""The stage model: reads `stacks/Pulumi.<stage>.yaml` without Pulumi and derives every name.

The Pulumi program, the DAG generator and the promotion all ask this module for a stage's
names and ARNs; no other module spells one.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_snake

from mwaa_elt.airflow_versions import MWAA_AIRFLOW_RELEASES, AirflowRelease, airflow_release
from mwaa_elt.errors import ConfigError
from mwaa_elt.stage_cutover import CutoverConfig, check_cutover

NAMESPACE = "mwaa-elt"
STAGE_NAME = re.compile(r"^[a-z][a-z0-9]{1,11}$")
ENVIRONMENT_CLASSES = (
    "mw1.micro",
    "mw1.small",
    "mw1.medium",
    "mw1.large",
    "mw1.xlarge",
    "mw1.2xlarge",
)
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
MWAA_INTERFACE_ENDPOINTS = (
    "sqs",
    "logs",
    "monitoring",
    "kms",
    "ecr.api",
    "ecr.dkr",
    "airflow.api",
    "airflow.env",
    "airflow.ops",
)
# The suffixes of the log groups MWAA writes to (`airflow-<environment>-<suffix>`), per log type.
MWAA_LOG_TYPES = ("DAGProcessing", "Scheduler", "Task", "WebServer", "Worker")
# The Airflow variable (in the stage's Secrets Manager prefix) holding the subnet EMR clusters use.
EMR_SUBNET_VARIABLE = "emr_subnet_id"
# AmazonEMRServicePolicy_v2 acts only on resources carrying this tag: every cluster is launched
# with it (the execution role refuses launches without it) and EMR propagates it.
EMR_MANAGED_POLICIES_TAG = ("for-use-with-amazon-emr-managed-policies", "true")
PULUMI_STACK_FILE_KEYS = {
    "config",
    "secretsprovider",
    "encryptedkey",
    "encryptionsalt",
    "environment",
}
GLUE_DATABASE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
S3_PREFIX = re.compile(r"^([a-z0-9][a-z0-9!_.*'()-]*/)+$")
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
# Promotion only reads through Airflow's REST API (import errors, DAG sources, runs).
AIRFLOW_API_ROLE = "Viewer"
GITHUB_REPOSITORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
LogLevel = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]


class _Strict(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class LogLevels(_Strict):
    """The level of each of MWAA's five log types."""

    dag_processing: LogLevel = "WARNING"
    scheduler: LogLevel = "WARNING"
    task: LogLevel = "INFO"
    webserver: LogLevel = "WARNING"
    worker: LogLevel = "WARNING"


class ExistingNetwork(_Strict):
    """A VPC the stage runs in instead of creating one."""

    vpc_id: Annotated[str, Field(pattern=r"^vpc-[0-9a-f]{8,17}$")]
    private_subnet_ids: Annotated[
        list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]],
        Field(min_length=2, max_length=2),
    ]


class NetworkConfig(_Strict):
    """Where the environment runs: a new VPC (`vpcCidr`) or an existing one (`existing`)."""

    vpc_cidr: str | None = None
    nat_gateways: Annotated[int, Field(ge=0, le=2)] = 1
    private_endpoints: bool = False
    existing: ExistingNetwork | None = None

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            network = ipaddress.IPv4Network(value, strict=True)
        except ValueError:
            raise ValueError(
                f"'{value}' is not a valid IPv4 CIDR block; expected a network address "
                "such as 10.20.0.0/16"
            ) from None
        if not 16 <= network.prefixlen <= 24:
            raise ValueError(f"'{value}' has prefix /{network.prefixlen}; allowed: /16 to /24")
        return value

    @model_validator(mode="after")
    def _one_network(self) -> NetworkConfig:
        if (self.vpc_cidr is None) == (self.existing is None):
            raise ValueError("set exactly one of vpcCidr (create a VPC) or existing (use a VPC)")
        if self.vpc_cidr is not None and self.nat_gateways == 0 and not self.private_endpoints:
            raise ValueError(
                "natGateways is 0 and privateEndpoints is false: the environment could reach "
                "neither AWS services nor the internet; set natGateways to 1 or 2, or "
                "privateEndpoints to true"
            )
        return self


class EncryptionConfig(_Strict):
    """Whether the stage's data is encrypted with a customer-managed KMS key."""

    customer_managed_key: bool = False
    key_deletion_window_days: Annotated[int, Field(ge=7, le=30)] = 30


class AthenaConfig(_Strict):
    """The stage's Athena workgroup settings."""

    bytes_scanned_cutoff_per_query: Annotated[int, Field(ge=10_485_760)] = 10 * 1024**3
    engine_version: Literal["AUTO", "Athena engine version 3"] = "Athena engine version 3"


class DataLakeConfig(_Strict):
    """The data-lake bucket and the shared prefixes every stage may read."""

    bucket: str | None = None
    read_prefixes: list[str] = Field(default_factory=list)

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        if value is not None and (not BUCKET_NAME.match(value) or ".." in value):
            raise ValueError(f"'{value}' is not a valid S3 bucket name")
        return value

    @field_validator("read_prefixes")
    @classmethod
    def _prefixes(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if not S3_PREFIX.match(prefix):
                raise ValueError(
                    f"'{prefix}' is not an S3 prefix; expected lower-case path segments "
                    "ending in '/', such as raw/movielens/"
                )
        return value


class EmrConfig(_Strict):
    """Defaults for the transient EMR clusters this stage's DAGs launch."""

    release_label: Annotated[str, Field(pattern=r"^emr-\d+\.\d+\.\d+$")] = "emr-7.5.0"
    applications: list[Literal["Hadoop", "Hive", "Spark", "Trino", "Presto", "Tez", "Livy"]] = (
        Field(default_factory=lambda: ["Hadoop", "Hive", "Spark"])
    )
    primary_instance_type: str = "m5.xlarge"
    core_instance_type: str = "m5.xlarge"
    core_instance_count: Annotated[int, Field(ge=1, le=50)] = 2
    idle_timeout_minutes: Annotated[int, Field(ge=5, le=1440)] = 60


class GatesConfig(_Strict):
    """Promotion gates that apply when promoting into this stage."""

    require_source_run_success: bool = False
    import_error_timeout_seconds: Annotated[int, Field(ge=0, le=3600)] = 300


class ReleasePipelineConfig(_Strict):
    """The CodePipeline that releases every stage, in the one stack that hosts it."""

    branch: Annotated[str, Field(pattern=r"^[A-Za-z0-9._/-]{1,100}$")] = "main"
    build_compute_type: Literal[
        "BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE"
    ] = "BUILD_GENERAL1_MEDIUM"
    build_image: str = "aws/codebuild/standard:7.0"
    artifact_expiration_days: Annotated[int, Field(ge=1, le=3650)] = 30


class DeliveryConfig(_Strict):
    """CI/CD as code: this stage's CI promoter and release-reader roles, trusted by GitHub
    Actions (OIDC) and the release pipeline's builds; `pipeline` hosts that pipeline here."""

    repository: str
    github_oidc_provider: Literal["create", "existing"] = "create"
    github_actions: bool = True
    pipeline: ReleasePipelineConfig | None = None

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        if not GITHUB_REPOSITORY.match(value) or value.endswith(".git"):
            raise ValueError(
                f"'{value}' is not a GitHub repository; expected owner/name, such as "
                "example-org/mwaa-elt (no URL, no .git)"
            )
        return value


# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy's retentionInDays).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
ALARM_PERIODS = (60, 300, 900, 3600)
ALARM_NAMES = ("schedulerHeartbeat", "importErrors", "taskFailures", "workerSaturation")


class AlarmSettings(_Strict):
    """One alarm's overrides; a key left out takes the stage's default (prod strict, others quiet).

    The alarm fires when `threshold` is crossed in `evaluationPeriods` consecutive periods of
    `periodSeconds`; for the scheduler heartbeat, when no heartbeat arrives for as long.
    """

    enabled: bool | None = None
    threshold: Annotated[int, Field(ge=1, le=100_000)] | None = None
    period_seconds: int | None = None
    evaluation_periods: Annotated[int, Field(ge=1, le=96)] | None = None

    @field_validator("period_seconds")
    @classmethod
    def _period(cls, value: int | None) -> int | None:
        if value is not None and value not in ALARM_PERIODS:
            raise ValueError(
                f"{value} is not an alarm period; allowed: {', '.join(map(str, ALARM_PERIODS))}"
            )
        return value


class MonitoringConfig(_Strict):
    """Alarms, dashboard and log retention of the stage; every key has a per-stage default."""

    alert_topic: str | None = None
    log_retention_days: int | None = None
    dashboard: bool = True
    scheduler_heartbeat: AlarmSettings = Field(default_factory=AlarmSettings)
    import_errors: AlarmSettings = Field(default_factory=AlarmSettings)
    task_failures: AlarmSettings = Field(default_factory=AlarmSettings)
    worker_saturation: AlarmSettings = Field(default_factory=AlarmSettings)

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int | None) -> int | None:
        if value is not None and value not in LOG_RETENTION_DAYS:
            raise ValueError(
                f"{value} is not a CloudWatch Logs retention period; allowed: "
                f"{', '.join(map(str, LOG_RETENTION_DAYS))}"
            )
        return value


class StageConfig(_Strict):
    """The `mwaa-elt:` keys of a stack file, validated."""

    account_id: Annotated[str, Field(pattern=r"^\d{12}$")]
    owner: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
    name_prefix: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,18}[a-z0-9]$")] = "mwaa-elt"
    production: bool | None = None
    promotes_from: str | None = None
    airflow_version: str
    environment_class: str
    min_workers: Annotated[int, Field(ge=1, le=25)] = 1
    max_workers: Annotated[int, Field(ge=1, le=25)] = 2
    schedulers: int = 2
    webserver_access_mode: Literal["PRIVATE_ONLY", "PUBLIC_ONLY"] = "PRIVATE_ONLY"
    log_levels: LogLevels = Field(default_factory=LogLevels)
    maintenance_window_start: Annotated[
        str, Field(pattern=r"^(MON|TUE|WED|THU|FRI|SAT|SUN):([01]\d|2[0-3]):(00|30)$")
    ] = "SUN:03:00"
    airflow_configuration_options: dict[str, str] = Field(default_factory=dict)
    network: NetworkConfig
    encryption: EncryptionConfig = Field(default_factory=EncryptionConfig)
    athena: AthenaConfig = Field(default_factory=AthenaConfig)
    glue_databases: Annotated[list[str], Field(min_length=1)]
    data_lake: DataLakeConfig = Field(default_factory=DataLakeConfig)
    emr: EmrConfig = Field(default_factory=EmrConfig)
    gates: GatesConfig = Field(default_factory=GatesConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    noncurrent_version_expiration_days: Annotated[int, Field(ge=1, le=3650)] = 90
    alert_topics: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,60}$")]] = Field(
        default_factory=lambda: ["data-alerts"]
    )
    # The Airflow connection (in Secrets Manager, under the stage's connections prefix) of an SMTP
    # server. Unset, nothing can send e-mail, so DAGs alert through SNS only.
    smtp_connection: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,250}$")] | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    delivery: DeliveryConfig | None = None
    # Last: its check compares it with the settings above (`mwaa_elt.stage_cutover`).
    cutover: Annotated[CutoverConfig | None, AfterValidator(check_cutover)] = None

    @field_validator("airflow_version", mode="before")
    @classmethod
    def _airflow_version(cls, value: Any) -> str:
        version = str(value)
        if version not in MWAA_AIRFLOW_RELEASES:
            raise ValueError(
                f"'{version}' is not an Airflow version MWAA offers; "
                f"allowed: {', '.join(MWAA_AIRFLOW_RELEASES)}"
            )
        return version

    @field_validator("environment_class")
    @classmethod
    def _environment_class(cls, value: str) -> str:
        if value not in ENVIRONMENT_CLASSES:
            raise ValueError(
                f"'{value}' is not an MWAA environment class; "
                f"allowed: {', '.join(ENVIRONMENT_CLASSES)}"
            )
        return value

    @field_validator("max_workers")
    @classmethod
    def _workers(cls, value: int, info: ValidationInfo) -> int:
        minimum = info.data.get("min_workers")
        if minimum is not None and minimum > value:
            raise ValueError(
                f"is {value}, less than minWorkers ({minimum}); minWorkers must be <= maxWorkers"
            )
        if info.data.get("environment_class") == "mw1.micro" and value != 1:
            raise ValueError(f"is {value}; mw1.micro runs exactly 1 worker")
        return value

    @field_validator("schedulers")
    @classmethod
    def _schedulers(cls, value: int, info: ValidationInfo) -> int:
        if info.data.get("environment_class") == "mw1.micro":
            if value != 1:
                raise ValueError(f"{value}: mw1.micro runs exactly 1 scheduler; set schedulers: 1")
        elif not 2 <= value <= 5:
            raise ValueError(f"{value} is outside the allowed range 2-5")
        return value

    @field_validator("glue_databases")
    @classmethod
    def _glue_databases(cls, value: list[str]) -> list[str]:
        for name in value:
            if not GLUE_DATABASE_NAME.match(name):
                raise ValueError(
                    f"'{name}' is not a Glue database name; expected lower-case letters, digits "
                    "and '_', starting with a letter (the stage prefix is added for you)"
                )
        if len(set(value)) != len(value):
            raise ValueError("lists a database twice")
        return value

    @field_validator("airflow_configuration_options")
    @classmethod
    def _no_managed_options(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not re.match(r"^[a-z_]+\.[a-z0-9_]+$", key):
                raise ValueError(f"'{key}' is not an Airflow option; expected section.option")
            if key.startswith("secrets."):
                raise ValueError(
                    f"'{key}' is set by mwaa-elt (the secrets backend points at the stage's "
                    "Secrets Manager prefix); remove it"
                )
        return value

    @field_validator("tags")
    @classmethod
    def _reserved_tags(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = {"stage", "project", "owner"} & set(value)
        if reserved:
            raise ValueError(
                f"tag {', '.join(sorted(reserved))} is set by mwaa-elt from the stage; remove it"
            )
        return value


@dataclass(frozen=True)
class StagePaths:
    """Key prefixes inside the stage's source bucket."""

    dags: str = "dags/"
    scripts: str = "scripts/"
    plugins: str = "plugins.zip"
    requirements: str = "requirements.txt"
    startup_script: str = "startup.sh"
    athena_results: str = "athena-results/"
    emr_logs: str = "emr-logs/"
    tool_state: str = ".mwaa-elt/"


@dataclass(frozen=True)
class Stage:
    """A validated stage with every name and ARN derived from its stack file."""

    name: str
    region: str
    config: StageConfig
    source_file: Path
    paths: StagePaths = StagePaths()

    # -- identity ---------------------------------------------------------------------------
    @property
    def account_id(self) -> str:
        return self.config.account_id

    @property
    def production(self) -> bool:
        return self.config.production if self.config.production is not None else self.name == "prod"

    @property
    def promotes_from(self) -> str | None:
        return self.config.promotes_from

    @property
    def airflow(self) -> AirflowRelease:
        return airflow_release(self.config.airflow_version)

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        if self.region.startswith("us-gov-"):
            return "aws-us-gov"
        return "aws"

    @property
    def dns_suffix(self) -> str:
        return "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"

    @property
    def resource_prefix(self) -> str:
        return f"{self.config.name_prefix}-{self.name}"

    @cached_property
    def tags(self) -> dict[str, str]:
        return {
            **self.config.tags,
            "stage": self.name,
            "project": self.config.name_prefix,
            "owner": self.config.owner,
        }

    @property
    def green(self) -> Stage | None:
        """The cutover's green environment as a stage (`mwaa_elt.cutover`), or None."""
        from mwaa_elt.cutover import green_stage

        return green_stage(self)

    # -- MWAA -------------------------------------------------------------------------------
    @property
    def environment_name(self) -> str:
        return self.resource_prefix

    @property
    def environment_arn(self) -> str:
        return self._arn("airflow", f"environment/{self.environment_name}")

    @property
    def source_bucket(self) -> str:
        return f"airflow-{self.resource_prefix}-{self.account_id}"

    @property
    def source_bucket_arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.source_bucket}"

    @property
    def dags_prefix(self) -> str:
        return self.paths.dags

    @property
    def scripts_prefix(self) -> str:
        return self.paths.scripts

    @property
    def manifest_key(self) -> str:
        return f"{self.paths.tool_state}manifest.json"

    @property
    def lock_key(self) -> str:
        return f"{self.paths.tool_state}lock.json"

    @property
    def bundles_prefix(self) -> str:
        return f"{self.paths.tool_state}bundles/"

    @property
    def templates_prefix(self) -> str:
        return f"{self.paths.tool_state}templates/"

    @property
    def history_prefix(self) -> str:
        return f"{self.paths.tool_state}history/"

    @property
    def log_group_prefix(self) -> str:
        return f"airflow-{self.environment_name}-"

    @property
    def log_groups(self) -> dict[str, str]:
        """MWAA's log type → the CloudWatch log group it writes to, `airflow-<env>-<Type>`."""
        return {kind: f"{self.log_group_prefix}{kind}" for kind in MWAA_LOG_TYPES}

    @property
    def execution_role_name(self) -> str:
        return f"{self.resource_prefix}-mwaa-execution"

    @property
    def execution_role_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:role/{self.execution_role_name}"

    @property
    def secrets_prefix(self) -> str:
        return f"{self.config.name_prefix}/{self.name}/"

    @property
    def secrets_connections_prefix(self) -> str:
        return f"{self.secrets_prefix}connections"

    @property
    def secrets_variables_prefix(self) -> str:
        return f"{self.secrets_prefix}variables"

    @property
    def secrets_arn_pattern(self) -> str:
        return self._arn("secretsmanager", f"secret:{self.secrets_prefix}*")

    def sns_topic_name(self, topic: str) -> str:
        """The real name of an alert topic that specs name by its short name."""
        return f"{self.resource_prefix}-{topic}"

    def sns_topic_arn(self, topic: str) -> str:
        return self._arn("sns", self.sns_topic_name(topic))

    def secrets_variable_name(self, key: str) -> str:
        """The Secrets Manager name Airflow's backend reads the variable `key` from."""
        return f"{self.secrets_variables_prefix}/{key}"

    @property
    def kms_key_alias(self) -> str | None:
        return (
            f"alias/{self.resource_prefix}" if self.config.encryption.customer_managed_key else None
        )

    @property
    def security_group_name(self) -> str:
        return f"{self.resource_prefix}-mwaa"

    # -- delivery (CI/CD) -------------------------------------------------------------------
    @property
    def ci_role_name(self) -> str:
        """The role CI assumes to promote into, see the status of, and roll back this stage."""
        return f"{self.resource_prefix}-ci"

    @property
    def release_reader_role_name(self) -> str:
        """The role the next stage's CI assumes to read this stage's releases."""
        return f"{self.resource_prefix}-release-reader"

    @property
    def github_oidc_provider_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:oidc-provider/{GITHUB_OIDC_HOST}"

    @property
    def release_pipeline_name(self) -> str:
        return f"{self.config.name_prefix}-release"

    @property
    def release_build_role_name(self) -> str:
        """The role the release pipeline's CodeBuild projects run as (in the hosting stage)."""
        return f"{self.config.name_prefix}-release-build"

    @property
    def airflow_rbac_role_arn(self) -> str:
        """The Airflow role `airflow:InvokeRestApi` is authorized for: Viewer (read only)."""
        return self._arn("airflow", f"role/{self.environment_name}/{AIRFLOW_API_ROLE}")

    # -- network ----------------------------------------------------------------------------
    @property
    def vpc_name(self) -> str:
        """The Name tag of the stage's VPC, and the prefix of its subnets' and gateways'."""
        return self.resource_prefix

    @property
    def availability_zones(self) -> list[str]:
        """The two zones a created VPC spans: MWAA needs two private subnets in different zones."""
        return [f"{self.region}a", f"{self.region}b"]

    def endpoint_service_name(self, service: str) -> str:
        return f"com.amazonaws.{self.region}.{service}"

    # -- Athena and Glue --------------------------------------------------------------------
    @property
    def athena_workgroup(self) -> str:
        return self.resource_prefix

    @property
    def athena_workgroup_arn(self) -> str:
        return self._arn("athena", f"workgroup/{self.athena_workgroup}")

    @property
    def athena_results_uri(self) -> str:
        return f"s3://{self.source_bucket}/{self.paths.athena_results}"

    @property
    def glue_database_prefix(self) -> str:
        return f"{self.name}_"

    @property
    def glue_databases(self) -> dict[str, str]:
        """Logical database name (as specs write it) → the stage's real database name."""
        return {name: f"{self.glue_database_prefix}{name}" for name in self.config.glue_databases}

    @property
    def glue_catalog_arn(self) -> str:
        return self._arn("glue", "catalog")

    @property
    def glue_database_locations(self) -> dict[str, str]:
        """Logical database name → its location in the stage's own prefix of the data lake."""
        (own,) = self.data_lake_write_prefixes
        lake = f"s3://{self.data_lake_bucket}/{own}"
        return {name: f"{lake}{name}/" for name in self.config.glue_databases}

    # -- data lake --------------------------------------------------------------------------
    @property
    def data_lake_bucket(self) -> str:
        return self.config.data_lake.bucket or f"{self.resource_prefix}-lake-{self.account_id}"

    @property
    def manages_data_lake_bucket(self) -> bool:
        return self.config.data_lake.bucket is None

    @property
    def data_lake_write_prefixes(self) -> list[str]:
        return [f"{self.name}/"]

    @property
    def data_lake_read_prefixes(self) -> list[str]:
        return sorted({*self.config.data_lake.read_prefixes, *self.data_lake_write_prefixes})

    # -- EMR --------------------------------------------------------------------------------
    @property
    def emr_service_role(self) -> str:
        return f"{self.resource_prefix}-emr-service"

    @property
    def emr_instance_role(self) -> str:
        return f"{self.resource_prefix}-emr-ec2"

    @property
    def emr_instance_profile(self) -> str:
        return f"{self.resource_prefix}-emr-ec2"

    @property
    def emr_log_uri(self) -> str:
        return f"s3://{self.source_bucket}/{self.paths.emr_logs}"

    @property
    def emr_cluster_arn_pattern(self) -> str:
        return self._arn("elasticmapreduce", "cluster/*")

    def role_arn(self, role_name: str) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:role/{role_name}"

    def arn(self, service: str, resource: str) -> str:
        """An ARN of `service` in the stage's partition, region and account."""
        return self._arn(service, resource)

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account_id}:{resource}"

    def summary(self) -> dict[str, Any]:
        """The stage's names, as `mwaa-elt stage show --json` prints them."""
        return {
            "stage": self.name,
            "production": self.production,
            "region": self.region,
            "account_id": self.account_id,
            "airflow_version": self.airflow.version,
            "python_version": self.airflow.python,
            "environment_name": self.environment_name,
            "environment_arn": self.environment_arn,
            "environment_class": self.config.environment_class,
            "source_bucket": self.source_bucket,
            "dags_prefix": self.dags_prefix,
            "scripts_prefix": self.scripts_prefix,
            "manifest_key": self.manifest_key,
            "execution_role_name": self.execution_role_name,
            "execution_role_arn": self.execution_role_arn,
            "athena_workgroup": self.athena_workgroup,
            "athena_results_uri": self.athena_results_uri,
            "glue_database_prefix": self.glue_database_prefix,
            "glue_databases": self.glue_databases,
            "data_lake_bucket": self.data_lake_bucket,
            "data_lake_read_prefixes": self.data_lake_read_prefixes,
            "data_lake_write_prefixes": self.data_lake_write_prefixes,
            "emr_service_role": self.emr_service_role,
            "emr_instance_profile": self.emr_instance_profile,
            "emr_log_uri": self.emr_log_uri,
            "secrets_prefix": self.secrets_prefix,
            "kms_key_alias": self.kms_key_alias,
            "webserver_access_mode": self.config.webserver_access_mode,
            "tags": self.tags,
            "promotes_from": self.promotes_from,
        }


# -- loading -------------------------------------------------------------------------------


def stack_file(stacks_dir: Path, stage: str) -> Path:
    return stacks_dir / f"Pulumi.{stage}.yaml"


def available_stages(stacks_dir: Path) -> list[str]:
    """Stage names that have a stack file, in promotion order where one is known."""
    names = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in stacks_dir.glob("Pulumi.*.yaml"))
    order = {"dev": 0, "staging": 1, "prod": 2}
    return sorted(names, key=lambda n: (order.get(n, 1), n))


def load_stage(stacks_dir: Path, stage: str) -> Stage:
    """Read and validate one stage; raise ConfigError with every problem of its stack file."""
    path = stack_file(stacks_dir, stage)
    shown = _display_path(path)
    if not STAGE_NAME.match(stage):
        raise ConfigError(
            f"{shown}: stage name '{stage}' must be 2-12 lower-case letters and digits, "
            "starting with a letter"
        )
    if not path.is_file():
        known = available_stages(stacks_dir) if stacks_dir.is_dir() else []
        raise ConfigError(
            f"{shown}: no such stack file; known stages: {', '.join(known) or 'none'}"
        )
    raw = _read_yaml(path, shown)
    values, region, errors = _split_config(raw, shown)
    config: StageConfig | None = None
    try:
        config = StageConfig.model_validate(values)
    except ValidationError as exc:
        errors.extend(f"{shown}: {message}" for message in _pydantic_messages(exc, values))
    if config is not None:
        errors.extend(f"{shown}: {message}" for message in _stage_rules(stage, config, stacks_dir))
    if errors:
        raise ConfigError(errors)
    assert config is not None and region is not None
    return Stage(name=stage, region=region, config=config, source_file=path)


def load_all_stages(stacks_dir: Path) -> dict[str, Stage]:
    """Every stage of the project, validated; ConfigError lists the problems of all of them."""
    stages: dict[str, Stage] = {}
    errors: list[str] = []
    for name in available_stages(stacks_dir):
        try:
            stages[name] = load_stage(stacks_dir, name)
        except ConfigError as exc:
            errors.extend(exc.messages)
    if errors:
        raise ConfigError(errors)
    return stages


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys, which plain YAML silently overwrites."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key '{key}' (first at line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path, shown: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{shown}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read: {exc.strerror}") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{shown}: {where}invalid YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{shown}: expected a mapping with a 'config:' key")
    return raw


def _split_config(raw: dict[str, Any], shown: str) -> tuple[dict[str, Any], str | None, list[str]]:
    """Separate `mwaa-elt:` keys (for the model) from `aws:region`; report unknown keys."""
    errors: list[str] = []
    for key in raw:
        if key not in PULUMI_STACK_FILE_KEYS:
            errors.append(
                f"{shown}: {key}: unknown top-level key; "
                f"allowed: {', '.join(sorted(PULUMI_STACK_FILE_KEYS))}"
            )
    config = raw.get("config")
    if not isinstance(config, dict):
        errors.append(f"{shown}: config: missing, or not a mapping of stack settings")
        return {}, None, errors
    values: dict[str, Any] = {}
    for key, value in config.items():
        namespace, _, name = str(key).partition(":")
        if namespace == NAMESPACE and name:
            values[name] = value
        elif namespace in {"aws", "pulumi"} and name:
            continue
        else:
            errors.append(
                f"{shown}: {key}: unknown key; stage settings are '{NAMESPACE}:<name>' "
                "(provider settings 'aws:<name>')"
            )
    region = config.get("aws:region")
    if region is None:
        errors.append(f"{shown}: aws:region: missing; expected an AWS region such as eu-west-1")
    elif not isinstance(region, str) or not re.match(r"^[a-z]{2}(-gov)?-[a-z]+-\d$", region):
        errors.append(f"{shown}: aws:region: '{region}' is not an AWS region, such as eu-west-1")
        region = None
    return values, region, errors


def _model_fields(model: type[BaseModel]) -> dict[str, Any]:
    return {field.alias or name: field for name, field in model.model_fields.items()}


def _key_path(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc if not isinstance(part, int)]
    indexes = [part for part in loc if isinstance(part, int)]
    path = ".".join(parts)
    if indexes:
        path += "".join(f"[{i}]" for i in indexes)
    return f"{NAMESPACE}:{path}" if path else NAMESPACE


def _pydantic_messages(exc: ValidationError, values: dict[str, Any]) -> list[str]:
    messages = []
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if part not in {"function-after", "list"})
        kind = error["type"]
        key = _key_path(loc)
        if kind == "extra_forbidden":
            messages.append(f"{key}: unknown key{_suggestion(loc)}")
        elif kind == "missing":
            messages.append(f"{key}: missing; this setting is required")
        elif kind in {"value_error", "assertion_error"}:
            messages.append(f"{key}: {error['msg'].removeprefix('Value error, ')}")
        elif kind == "literal_error":
            expected = error.get("ctx", {}).get("expected", "").replace(" or ", ", ")
            messages.append(f"{key}: {error['input']!r} is not allowed; allowed: {expected}")
        elif kind == "string_pattern_mismatch":
            messages.append(
                f"{key}: {error['input']!r} does not match the expected form "
                f"{error['ctx']['pattern']}"
            )
        else:
            messages.append(f"{key}: {error['msg'].lower()} (got {error['input']!r})")
    return messages


def _suggestion(loc: tuple[Any, ...]) -> str:
    model: type[BaseModel] = StageConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = _model_fields(model).get(str(part))
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            for arg in getattr(annotation, "__args__", ()):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    model = arg
    known = list(_model_fields(model))
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; allowed: {', '.join(known)}"


def _stage_rules(stage: str, config: StageConfig, stacks_dir: Path) -> list[str]:
    """Rules across keys, and across stages, that a single field cannot check."""
    errors = []
    production = config.production if config.production is not None else stage == "prod"
    if production and config.webserver_access_mode != "PRIVATE_ONLY":
        errors.append(
            f"{NAMESPACE}:webserverAccessMode: a production stage must use PRIVATE_ONLY "
            f"(got {config.webserver_access_mode})"
        )
    if production and not config.encryption.customer_managed_key:
        errors.append(
            f"{NAMESPACE}:encryption.customerManagedKey: a production stage must encrypt with "
            "a customer-managed KMS key; set it to true"
        )
    if production and config.network.vpc_cidr and config.network.nat_gateways == 1:
        errors.append(
            f"{NAMESPACE}:network.natGateways: a production stage needs one NAT gateway per "
            "availability zone (2), so losing one zone does not cut the environment off"
        )
    if config.promotes_from is not None:
        if config.promotes_from == stage:
            errors.append(f"{NAMESPACE}:promotesFrom: a stage cannot promote from itself")
        elif not stack_file(stacks_dir, config.promotes_from).is_file():
            errors.append(
                f"{NAMESPACE}:promotesFrom: '{config.promotes_from}' has no stack file; known "
                f"stages: {', '.join(s for s in available_stages(stacks_dir) if s != stage)}"
            )
    elif stage != "dev" and stage in {"staging", "prod"}:
        expected = {"staging": "dev", "prod": "staging"}[stage]
        errors.append(
            f"{NAMESPACE}:promotesFrom: missing; {stage} must name the stage it promotes from "
            f"(usually {expected})"
        )
    errors.extend(_delivery_rules(stage, config, stacks_dir))
    monitoring = config.monitoring
    if monitoring.alert_topic is not None and monitoring.alert_topic not in config.alert_topics:
        errors.append(
            f"{NAMESPACE}:monitoring.alertTopic: '{monitoring.alert_topic}' is not one of the "
            f"stage's alertTopics ({', '.join(config.alert_topics) or 'none'}); name one of them"
        )
    if production and not config.alert_topics:
        errors.append(
            f"{NAMESPACE}:alertTopics: empty, so a production stage's alarms would notify no one; "
            "list a topic"
        )
    if production:
        for alarm in ALARM_NAMES:
            if getattr(monitoring, to_snake(alarm)).enabled is False:
                errors.append(
                    f"{NAMESPACE}:monitoring.{alarm}.enabled: a production stage keeps every "
                    "alarm; remove the key, or raise the alarm's threshold instead"
                )
    own = f"{stage}/"
    for prefix in config.data_lake.read_prefixes:
        first = prefix.split("/", 1)[0]
        if first != stage and stack_file(stacks_dir, first).is_file():
            errors.append(
                f"{NAMESPACE}:dataLake.readPrefixes: '{prefix}' is the stage '{first}''s own "
                f"prefix; a stage reads shared prefixes and its own ({own}) only"
            )
    return errors


def _raw_delivery(stacks_dir: Path, stage: str) -> dict[str, Any] | None:
    """Another stack's `delivery` block as written (None when absent or unreadable)."""
    try:
        raw = yaml.safe_load(stack_file(stacks_dir, stage).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    config = raw.get("config") if isinstance(raw, dict) else None
    found = config.get(f"{NAMESPACE}:delivery") if isinstance(config, dict) else None
    return found if isinstance(found, dict) else None


def _delivery_rules(stage: str, config: StageConfig, stacks_dir: Path) -> list[str]:
    """A release chain is provisioned whole: one pipeline host, CI roles in every stage of it."""
    delivery = config.delivery
    if delivery is None:
        return []
    errors = []
    others = [s for s in available_stages(stacks_dir) if s != stage]
    if delivery.pipeline is not None:
        hosts = [s for s in others if "pipeline" in (_raw_delivery(stacks_dir, s) or {})]
        if hosts:
            errors.append(
                f"{NAMESPACE}:delivery.pipeline: stack {hosts[0]} hosts the release pipeline too; "
                "one stack hosts it (remove the block from all but one)"
            )
    source = config.promotes_from
    if source is not None and source in others and _raw_delivery(stacks_dir, source) is None:
        errors.append(
            f"{NAMESPACE}:delivery: {stage} promotes from {source}, whose stack has no delivery "
            f"block, so it has no release-reader role to read from; add a delivery block to "
            f"{stack_file(stacks_dir, source).name}"
        )
    for other in others:
        found = _raw_delivery(stacks_dir, other)
        if found is not None and found.get("repository") != delivery.repository:
            errors.append(
                f"{NAMESPACE}:delivery.repository: '{delivery.repository}' differs from stack "
                f"{other}'s '{found.get('repository')}'; every stage releases the same repository"
            )
            break
    return errors
