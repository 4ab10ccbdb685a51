"""What generated DAGs read at run time: the stage's alert topics and its Airflow variables."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from mwaa_elt.stage import EMR_SUBNET_VARIABLE, Stage

DR_BUCKET_VARIABLE = "DR_BACKUP_BUCKET"  # read by mwaa-dr's DAGs (mwaa_elt.lifecycle.mwaa_dr)


@dataclass(frozen=True)
class RuntimeSettingsArgs:
    """The stage, its key (prod) and the private subnets EMR clusters launch into."""

    stage: Stage
    key_arn: pulumi.Input[str] | None
    private_subnet_ids: pulumi.Input[list[str]]


class RuntimeSettings(pulumi.ComponentResource):
    """SNS topics for failure alerts and the Airflow variables DAGs read, in Secrets Manager:
    `emr_subnet_id`, and on Airflow 2 stages mwaa-dr's `DR_BACKUP_BUCKET`."""

    topics: dict[str, aws.sns.Topic]

    def __init__(
        self, name: str, args: RuntimeSettingsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mwaa-elt:runtime:RuntimeSettings", name, None, opts)
        stage = args.stage
        child = pulumi.ResourceOptions(parent=self)
        self.topics = {
            topic: aws.sns.Topic(
                f"{name}-topic-{topic}",
                name=stage.sns_topic_name(topic),
                # CloudWatch alarms cannot publish to a topic encrypted with the AWS-managed key
                # (alias/aws/sns: its policy is AWS's and excludes them). With the stage's key
                # they can (its policy lets them); a stage without one (never production) keeps
                # its alert text unencrypted at rest rather than lose its alarms.
                kms_master_key_id=args.key_arn,
                opts=child,
            )
            for topic in stage.config.alert_topics
        }
        subnet = aws.secretsmanager.Secret(
            f"{name}-emr-subnet",
            name=stage.secrets_variable_name(EMR_SUBNET_VARIABLE),
            description=f"Airflow variable {EMR_SUBNET_VARIABLE}: the subnet of EMR clusters",
            kms_key_id=args.key_arn,
            opts=child,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-emr-subnet-value",
            secret_id=subnet.id,
            # Airflow's Secrets Manager backend reads a plain string as the variable's value.
            secret_string=pulumi.Output.from_input(args.private_subnet_ids).apply(
                lambda ids: ids[0]
            ),
            opts=child,
        )
        if stage.airflow.major == 2:
            # mwaa-dr's DAGs (Airflow 2) read their bucket from the run's conf, which
            # `mwaa-elt backup` sets, else from this variable: a run started in the UI then
            # writes to the stage's bucket too, under the work area its DAG file names.
            bucket = aws.secretsmanager.Secret(
                f"{name}-dr-backup-bucket",
                name=stage.secrets_variable_name(DR_BUCKET_VARIABLE),
                description=f"Airflow variable {DR_BUCKET_VARIABLE}: mwaa-dr's backup bucket",
                kms_key_id=args.key_arn,
                opts=child,
            )
            aws.secretsmanager.SecretVersion(
                f"{name}-dr-backup-bucket-value",
                secret_id=bucket.id,
                secret_string=stage.source_bucket,
                opts=child,
            )
        self.register_outputs({name: topic.arn for name, topic in self.topics.items()})
