"""The stage's schema: the `mwaa-elt:` keys of a stack file as pydantic models, and the constants
they are checked against."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from mwaa_elt.airflow_versions import MWAA_AIRFLOW_RELEASES
from mwaa_elt.lifecycle.adopt import AdoptConfig
from mwaa_elt.stage.cutover_config import CutoverConfig, check_cutover

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
# Backup, restore, `upgrade apply` and `cutover switch` manage variables, connections, pools
# and pauses: Airflow's Op role, granted only to the stage's operator role.
AIRFLOW_OPERATOR_ROLE = "Op"
IAM_PRINCIPAL = re.compile(
    r"^arn:aws(-cn|-us-gov)?:iam::(?P<account>\d{12}):(role|user)/[\w+=,.@/-]{1,512}$"
)
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


class OperatorConfig(_Strict):
    """The stage's operator role (`<prefix>-<stage>-operator`): who may assume it to run
    `backup`, `restore`, `upgrade apply` and `cutover switch`, and whether with MFA only."""

    principals: Annotated[list[str], Field(min_length=1)]
    require_mfa: bool = True

    @field_validator("principals")
    @classmethod
    def _principals(cls, value: list[str]) -> list[str]:
        for principal in value:
            if not IAM_PRINCIPAL.match(principal):
                raise ValueError(
                    f"'{principal}' is not an IAM role or user ARN; expected such as "
                    "arn:aws:iam::123456789012:role/platform-engineers"
                )
        if len(set(value)) != len(value):
            raise ValueError("lists a principal twice")
        return value


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


def offered_airflow_version(value: Any) -> str:
    """`value` as a version MWAA offers; ValueError naming the ones it does."""
    version = str(value)
    if version not in MWAA_AIRFLOW_RELEASES:
        raise ValueError(
            f"'{version}' is not an Airflow version MWAA offers; "
            f"allowed: {', '.join(MWAA_AIRFLOW_RELEASES)}"
        )
    return version


def known_environment_class(value: str) -> str:
    """`value` as an MWAA environment class; ValueError naming the classes."""
    if value not in ENVIRONMENT_CLASSES:
        raise ValueError(
            f"'{value}' is not an MWAA environment class; allowed: {', '.join(ENVIRONMENT_CLASSES)}"
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
    # The operator role, provisioned when set (`mwaa_elt.infra.documents.iam_policies`).
    operator: OperatorConfig | None = None
    # Existing resources `pulumi up` imports instead of creating (`mwaa-elt stage import`).
    adopt: AdoptConfig | None = None
    # Which environment is the stage's own: "blue" (`<prefix>-<stage>`) or, once a cutover's
    # old environment is retired, "green" (`<prefix>-<stage>-green`, its names and state kept).
    serving_environment: Literal["blue", "green"] = "blue"
    # Last: its check compares it with the settings above (`mwaa_elt.stage.cutover_config`).
    cutover: Annotated[CutoverConfig | None, AfterValidator(check_cutover)] = None

    @field_validator("airflow_version", mode="before")
    @classmethod
    def _airflow_version(cls, value: Any) -> str:
        return offered_airflow_version(value)

    @field_validator("environment_class")
    @classmethod
    def _environment_class(cls, value: str) -> str:
        return known_environment_class(value)

    @field_validator("operator")
    @classmethod
    def _operator_in_the_account(
        cls, value: OperatorConfig | None, info: ValidationInfo
    ) -> OperatorConfig | None:
        account = info.data.get("account_id")
        if value is None or account is None:
            return value
        for principal in value.principals:
            found = IAM_PRINCIPAL.match(principal)
            if found is not None and found["account"] != account:
                raise ValueError(
                    f"'{principal}' is in account {found['account']}, not the stage's "
                    f"({account}); name a role or user of account {account}, the one the "
                    "operator role lives in"
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
