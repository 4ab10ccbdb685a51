"""The whole Pulumi program of a stage: components composed, stack outputs returned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from mwaa_elt.errors import ConfigError
from mwaa_elt.infra.analytics import Analytics, AnalyticsArgs
from mwaa_elt.infra.delivery import Delivery, DeliveryArgs
from mwaa_elt.infra.emr import EmrRoles, EmrRolesArgs
from mwaa_elt.infra.encryption import Encryption, EncryptionArgs
from mwaa_elt.infra.environment import AirflowEnvironment, AirflowEnvironmentArgs
from mwaa_elt.infra.environment_files import EnvironmentFiles, EnvironmentFilesArgs
from mwaa_elt.infra.execution_role import ExecutionRole, ExecutionRoleArgs
from mwaa_elt.infra.monitoring import Monitoring, MonitoringArgs
from mwaa_elt.infra.network import Network, NetworkArgs
from mwaa_elt.infra.operator_role import OperatorRole, OperatorRoleArgs
from mwaa_elt.infra.runtime import RuntimeSettings, RuntimeSettingsArgs
from mwaa_elt.infra.storage import Storage, StorageArgs
from mwaa_elt.lifecycle.adopt import adoption_problems
from mwaa_elt.project import Project
from mwaa_elt.stage import Stage, load_all_stages

PROVIDER_NAME = "aws"


def default_environment_dir(stage: Stage) -> Path:
    """The project's `infra/environment/` folder, found from the stage's stack file."""
    return Project(stage.source_file.resolve().parent.parent).environment_dir


def provision(stage: Stage, environment_dir: Path | None = None) -> dict[str, pulumi.Output[Any]]:
    """Declare every resource of `stage` and return the stack outputs by name."""
    problems = adoption_problems(stage)
    if problems:
        raise ConfigError([f"{stage.source_file.name}: {problem}" for problem in problems])
    provider = aws.Provider(
        PROVIDER_NAME,
        region=stage.region,
        # Credentials for another account (another stage) make the program refuse to run.
        allowed_account_ids=[stage.account_id],
        default_tags={"tags": stage.tags},
    )
    with_provider = pulumi.ResourceOptions(providers=[provider])
    protect = stage.production

    encryption = (
        Encryption("encryption", EncryptionArgs(stage, protect=protect), with_provider)
        if stage.config.encryption.customer_managed_key
        else None
    )
    key_arn = encryption.key_arn if encryption else None
    network = Network("network", NetworkArgs(stage), with_provider)
    storage = Storage("storage", StorageArgs(stage, key_arn, protect), with_provider)
    execution_role = ExecutionRole("execution-role", ExecutionRoleArgs(stage), with_provider)
    emr = EmrRoles("emr", EmrRolesArgs(stage), with_provider)
    analytics = Analytics("analytics", AnalyticsArgs(stage, key_arn), with_provider)
    runtime = RuntimeSettings(
        "runtime", RuntimeSettingsArgs(stage, key_arn, network.private_subnet_ids), with_provider
    )
    topic_arns = {topic: resource.arn for topic, resource in runtime.topics.items()}

    def environment_of(of: Stage, suffix: str) -> tuple[AirflowEnvironment, Monitoring]:
        return _airflow_environment(
            stage=of,
            suffix=suffix,
            storage=storage,
            network=network,
            execution_role=execution_role,
            topic_arns=topic_arns,
            environment_dir=environment_dir or default_environment_dir(stage),
            key_arn=key_arn,
            protect=protect,
            provider=with_provider,
        )

    # The stage's own environment. Once blue is retired (`servingEnvironment: green`) it is the
    # former green one under the same logical names, so Pulumi keeps it as it is and deletes
    # only what blue had (its environment, files, log groups and alarms).
    airflow, monitoring = environment_of(stage, stage.environment_suffix)
    # A cutover's green environment (`mwaa_elt.stage.green`): the same network, role, bucket and
    # key; its own files (its version's constraints), log groups, alarms and dashboard.
    green = stage.green
    green_airflow = environment_of(green, "-green") if green is not None else None

    operator = (
        OperatorRole("operator", OperatorRoleArgs(stage), with_provider)
        if stage.config.operator is not None
        else None
    )

    delivery = (
        Delivery(
            "delivery",
            # The release chain spans every stage: CI roles trust and assume across them.
            DeliveryArgs(stage, load_all_stages(stage.source_file.parent), key_arn, protect),
            with_provider,
        )
        if stage.config.delivery is not None
        else None
    )

    outputs: dict[str, pulumi.Output[Any]] = {
        "webserver_url": airflow.webserver_url,
        "environment_name": airflow.environment.name,
        "environment_arn": airflow.arn,
        "source_bucket": storage.source.name,
        "execution_role_arn": execution_role.arn,
        "athena_workgroup": analytics.workgroup.name,
        "glue_databases": pulumi.Output.from_input(
            {logical: database.name for logical, database in analytics.databases.items()}
        ),
        "emr_service_role": emr.service_role.name,
        "emr_instance_profile": emr.instance_profile.name,
        "alert_topics": pulumi.Output.from_input(
            {topic: resource.arn for topic, resource in runtime.topics.items()}
        ),
    }
    outputs["log_groups"] = pulumi.Output.from_input(
        {kind: group.name for kind, group in monitoring.log_groups.items()}
    )
    outputs["alarms"] = pulumi.Output.from_input(
        {key: alarm.name for key, alarm in monitoring.alarms.items()}
    )
    if monitoring.dashboard is not None:
        outputs["dashboard"] = monitoring.dashboard.dashboard_name
    if storage.data_lake is not None:
        outputs["data_lake_bucket"] = storage.data_lake.name
    if encryption is not None:
        outputs["kms_key_arn"] = encryption.key_arn
    if green_airflow is not None:
        environment, green_monitoring = green_airflow
        outputs["cutover_environment_name"] = environment.environment.name
        outputs["cutover_environment_arn"] = environment.arn
        outputs["cutover_webserver_url"] = environment.webserver_url
        outputs["cutover_alarms"] = pulumi.Output.from_input(
            {key: alarm.name for key, alarm in green_monitoring.alarms.items()}
        )
    if operator is not None:
        outputs["operator_role_arn"] = operator.arn
    if delivery is not None:
        outputs["ci_roles"] = pulumi.Output.from_input(
            {role: resource.arn for role, resource in delivery.roles.items()}
        )
        if delivery.pipeline is not None:
            outputs["release_pipeline"] = delivery.pipeline.name
    return outputs


def _airflow_environment(
    *,
    stage: Stage,
    suffix: str,
    storage: Storage,
    network: Network,
    execution_role: ExecutionRole,
    topic_arns: dict[str, pulumi.Output[str]],
    environment_dir: Path,
    key_arn: pulumi.Input[str] | None,
    protect: bool,
    provider: pulumi.ResourceOptions,
) -> tuple[AirflowEnvironment, Monitoring]:
    """An MWAA environment of the stage with its own files, log groups, alarms and dashboard;
    resources named with `suffix` ("" for the stage's own environment)."""
    monitoring = Monitoring(
        f"monitoring{suffix}", MonitoringArgs(stage, key_arn, topic_arns, protect), provider
    )
    files = EnvironmentFiles(
        f"environment-files{suffix}",
        EnvironmentFilesArgs(stage, storage.source, environment_dir),
        provider,
    )
    environment = AirflowEnvironment(
        f"airflow{suffix}",
        AirflowEnvironmentArgs(
            stage,
            execution_role_arn=execution_role.arn,
            source_bucket_arn=storage.source.arn,
            security_group_id=network.security_group_id,
            private_subnet_ids=network.private_subnet_ids,
            requirements_object=files.requirements,
            plugins_object=files.plugins,
            startup_script_object=files.startup_script,
            kms_key_arn=key_arn,
            protect=protect,
            # MWAA writes to its log groups as they are when they exist: create them first.
            depends_on=[execution_role, network, storage.source, *monitoring.log_groups.values()],
        ),
        provider,
    )
    return environment, monitoring
