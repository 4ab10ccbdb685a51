"""A stage's derived names: every bucket, ARN, key and prefix, from its validated config.

The Pulumi program, the DAG generator and the promotion all ask the `Stage` for a stage's names
and ARNs; no other module spells one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from mwaa_elt.airflow_versions import AirflowRelease, airflow_release
from mwaa_elt.stage.schema import (
    AIRFLOW_API_ROLE,
    AIRFLOW_OPERATOR_ROLE,
    GITHUB_OIDC_HOST,
    MWAA_LOG_TYPES,
    StageConfig,
)


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
    # The stage's own records, whichever environment serves it: metadata backups and the
    # cutover record (`tool_state` is the environment's: its manifest, lock and histories).
    stage_state: str = ".mwaa-elt/"
    # Where mwaa-dr's DAGs (Airflow 2 stages) write and read the tables of one backup or restore;
    # `mwaa-elt backup` files each backup under its own id next to it (docs/upgrades.md).
    mwaa_dr: str = ".mwaa-elt/backups/mwaa-dr/"


# A cutover's second environment keeps these names for its whole life: while it runs beside
# the stage's own ("blue") and, once blue is retired (`servingEnvironment: green`), as the
# stage's own. See `mwaa_elt.stage.green`.
GREEN = "green"
GREEN_PATHS = StagePaths(
    dags=f"{GREEN}/dags/",
    plugins=f"{GREEN}/plugins.zip",
    requirements=f"{GREEN}/requirements.txt",
    startup_script=f"{GREEN}/startup.sh",
    tool_state=f".mwaa-elt/{GREEN}/",
)


def serving_paths(config: StageConfig) -> StagePaths:
    """The key prefixes of the environment `config` names as the stage's own."""
    return GREEN_PATHS if config.serving_environment == GREEN else StagePaths()


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
        """The cutover's green environment as a stage (`mwaa_elt.stage.green`), or None."""
        from mwaa_elt.stage.green import green_stage

        return green_stage(self)

    # -- MWAA -------------------------------------------------------------------------------
    @property
    def environment_suffix(self) -> str:
        """ "" for the stage's first ("blue") environment, "-green" once green serves the stage:
        the suffix of the environment's name and of its resources' Pulumi logical names."""
        return f"-{GREEN}" if self.config.serving_environment == GREEN else ""

    @property
    def environment_name(self) -> str:
        return f"{self.resource_prefix}{self.environment_suffix}"

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
    def backups_prefix(self) -> str:
        """The stage's metadata backups (`mwaa-elt backup`), whichever environment serves it."""
        return f"{self.paths.stage_state}backups/"

    @property
    def cutover_record_key(self) -> str:
        """Where `mwaa-elt cutover switch` records the switch."""
        return f"{self.paths.stage_state}cutover.json"

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
    def operator_role_name(self) -> str:
        """The role platform engineers assume for backup, restore, upgrade apply and cutover."""
        return f"{self.resource_prefix}-operator"

    @property
    def airflow_operator_role_arn(self) -> str:
        """The Airflow role the operator role may invoke the REST API as: Op."""
        return self._arn("airflow", f"role/{self.environment_name}/{AIRFLOW_OPERATOR_ROLE}")

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
        return {name: f"{self.data_lake_uri}{name}/" for name in self.config.glue_databases}

    # -- data lake --------------------------------------------------------------------------
    @property
    def data_lake_bucket(self) -> str:
        return self.config.data_lake.bucket or f"{self.resource_prefix}-lake-{self.account_id}"

    @property
    def manages_data_lake_bucket(self) -> bool:
        return self.config.data_lake.bucket is None

    @property
    def data_lake_prefix(self) -> str:
        """The stage's own prefix of the data lake, the one it writes."""
        return f"{self.name}/"

    @property
    def data_lake_write_prefixes(self) -> list[str]:
        return [self.data_lake_prefix]

    @property
    def data_lake_bucket_uri(self) -> str:
        return f"s3://{self.data_lake_bucket}/"

    @property
    def data_lake_uri(self) -> str:
        """Where the stage's own data lives: its prefix of the lake bucket."""
        return f"{self.data_lake_bucket_uri}{self.data_lake_prefix}"

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
            "serving_environment": self.config.serving_environment,
            "source_bucket": self.source_bucket,
            "dags_prefix": self.dags_prefix,
            "scripts_prefix": self.scripts_prefix,
            "manifest_key": self.manifest_key,
            "execution_role_name": self.execution_role_name,
            "execution_role_arn": self.execution_role_arn,
            "operator_role_arn": (
                self.role_arn(self.operator_role_name) if self.config.operator else None
            ),
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
