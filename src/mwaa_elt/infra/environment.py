"""The Amazon MWAA environment of a stage."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws

from mwaa_elt.lifecycle.adopt import ENVIRONMENT_IGNORED
from mwaa_elt.stage import LogLevels, Stage

SECRETS_BACKEND = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"


class S3Object(Protocol):
    """What the environment needs of an uploaded file: its key and the version to pin."""

    @property
    def key(self) -> pulumi.Output[str]: ...

    @property
    def version_id(self) -> pulumi.Output[str]: ...


def airflow_configuration_options(stage: Stage) -> dict[str, str]:
    """The stage's Airflow options plus the Secrets Manager backend under the stage's prefixes."""
    kwargs = {
        "connections_prefix": stage.secrets_connections_prefix,
        "variables_prefix": stage.secrets_variables_prefix,
    }
    return {
        **stage.config.airflow_configuration_options,
        "secrets.backend": SECRETS_BACKEND,
        "secrets.backend_kwargs": json.dumps(kwargs, sort_keys=True),
    }


def logging_configuration(levels: LogLevels) -> dict[str, Any]:
    """All five MWAA log types enabled, each at the stage's level."""
    return {
        f"{kind}_logs": {"enabled": True, "log_level": getattr(levels, kind)}
        for kind in ("dag_processing", "scheduler", "task", "webserver", "worker")
    }


@dataclass(frozen=True)
class AirflowEnvironmentArgs:
    """The stage and what the environment is wired to: role, bucket, network, files, key."""

    stage: Stage
    execution_role_arn: pulumi.Input[str]
    source_bucket_arn: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    requirements_object: S3Object
    plugins_object: S3Object
    startup_script_object: S3Object
    kms_key_arn: pulumi.Input[str] | None = None
    protect: bool = False
    # Creation fails when the role's policies or the routes out of the subnets are missing.
    depends_on: Sequence[pulumi.Resource] = ()


class AirflowEnvironment(pulumi.ComponentResource):
    """The MWAA environment, pinned to exact versions of its requirements, plugins and script."""

    environment: aws.mwaa.Environment
    arn: pulumi.Output[str]
    webserver_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: AirflowEnvironmentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mwaa-elt:mwaa:Environment", name, None, opts)
        stage, config = args.stage, args.stage.config
        # An adopted environment is imported by name (see mwaa_elt.lifecycle.adopt).
        adopted = config.adopt.environment if config.adopt is not None else None
        self.environment = aws.mwaa.Environment(
            f"{name}-environment",
            name=stage.environment_name,
            airflow_version=stage.airflow.version,
            environment_class=config.environment_class,
            min_workers=config.min_workers,
            max_workers=config.max_workers,
            schedulers=config.schedulers,
            webserver_access_mode=config.webserver_access_mode,
            execution_role_arn=args.execution_role_arn,
            source_bucket_arn=args.source_bucket_arn,
            dag_s3_path=stage.dags_prefix.rstrip("/"),
            requirements_s3_path=args.requirements_object.key,
            requirements_s3_object_version=args.requirements_object.version_id,
            plugins_s3_path=args.plugins_object.key,
            plugins_s3_object_version=args.plugins_object.version_id,
            startup_script_s3_path=args.startup_script_object.key,
            startup_script_s3_object_version=args.startup_script_object.version_id,
            network_configuration={
                "security_group_ids": [args.security_group_id],
                "subnet_ids": args.private_subnet_ids,
            },
            logging_configuration=logging_configuration(config.log_levels),
            airflow_configuration_options=airflow_configuration_options(stage),
            weekly_maintenance_window_start=config.maintenance_window_start,
            kms_key=args.kms_key_arn,
            tags=stage.tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                depends_on=list(args.depends_on),
                import_=adopted,
                ignore_changes=list(ENVIRONMENT_IGNORED) if adopted else None,
                retain_on_delete=True if adopted else None,
            ),
        )
        self.arn = self.environment.arn
        self.webserver_url = self.environment.webserver_url
        self.register_outputs({"arn": self.arn, "webserver_url": self.webserver_url})
