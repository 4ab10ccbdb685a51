"""The stage's Athena workgroup and its Glue databases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from mwaa_elt.stage import Stage


@dataclass(frozen=True)
class AnalyticsArgs:
    """The stage, and its KMS key for query results (None: SSE-S3)."""

    stage: Stage
    kms_key_arn: pulumi.Input[str] | None = None


class Analytics(pulumi.ComponentResource):
    """An Athena workgroup whose settings queries cannot override, and one Glue database each."""

    workgroup: aws.athena.Workgroup
    databases: dict[str, aws.glue.CatalogDatabase]

    def __init__(
        self, name: str, args: AnalyticsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mwaa-elt:analytics:Analytics", name, None, opts)
        stage = args.stage
        athena = stage.config.athena
        encryption: dict[str, Any] = (
            {"encryption_option": "SSE_S3"}
            if args.kms_key_arn is None
            else {"encryption_option": "SSE_KMS", "kms_key_arn": args.kms_key_arn}
        )
        self.workgroup = aws.athena.Workgroup(
            f"{name}-workgroup",
            name=stage.athena_workgroup,
            # The first environment's name, whichever serves the stage: a description changed
            # by retiring blue would update (a security group: replace) this shared resource.
            description=f"Queries of MWAA environment {stage.resource_prefix}",
            state="ENABLED",
            force_destroy=False,  # never drop saved queries and history with the stack
            configuration={
                # Enforced, so a DAG cannot send results elsewhere or lift the scan cutoff.
                "enforce_workgroup_configuration": True,
                "publish_cloudwatch_metrics_enabled": True,
                "bytes_scanned_cutoff_per_query": athena.bytes_scanned_cutoff_per_query,
                "engine_version": {"selected_engine_version": athena.engine_version},
                "result_configuration": {
                    "output_location": stage.athena_results_uri,
                    "encryption_configuration": encryption,
                },
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        locations = stage.glue_database_locations
        self.databases = {
            logical: aws.glue.CatalogDatabase(
                f"{name}-database-{logical}",
                name=real,
                description=f"{logical} tables of stage {stage.name}",
                location_uri=locations[logical],
                opts=pulumi.ResourceOptions(parent=self),
            )
            for logical, real in stage.glue_databases.items()
        }
        self.register_outputs(
            {
                "workgroup": self.workgroup.name,
                "databases": {k: db.name for k, db in self.databases.items()},
            }
        )
