"""A DAG the way the renderer should write it: owned, retried, tagged, alerting, Athena + EMR."""

from __future__ import annotations

import pendulum
from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.providers.amazon.aws.operators.emr import (
    EmrAddStepsOperator,
    EmrCreateJobFlowOperator,
    EmrTerminateJobFlowOperator,
)
from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor
from airflow.providers.amazon.aws.sensors.glue_catalog_partition import GlueCatalogPartitionSensor
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.providers.common.sql.operators.sql import SQLCheckOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

with DAG(
    dag_id="sales_orders",
    schedule="0 3 * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mwaa-elt", "sales"],
    params={"source_table": "raw_orders"},
    default_args={
        "owner": "sales-analytics",
        "retries": 2,
        "email": ["sales-data@example.com"],
        "email_on_failure": True,
    },
) as dag:
    landed = S3KeySensor(
        task_id="landed",
        bucket_key="s3://mwaa-elt-dev-source/raw/orders/{{ ds }}/_SUCCESS",
        deferrable=True,
    )
    partition = GlueCatalogPartitionSensor(
        task_id="partition",
        database_name="dev_raw",
        table_name="orders",
        expression="dt='{{ ds }}'",
    )
    load = AthenaOperator(
        task_id="load",
        query=(
            "INSERT INTO dev_curated.orders SELECT * FROM dev_raw.{{ params.source_table }} "
            "WHERE dt = '{{ ds }}' AND dt > '{{ macros.ds_add(ds, -1) }}'"
        ),
        database="dev_curated",
        workgroup="mwaa-elt-dev",
        output_location="s3://mwaa-elt-dev-athena/results/",
        deferrable=True,
    )
    row_count = SQLCheckOperator(
        task_id="row_count",
        conn_id="athena_default",
        sql="SELECT COUNT(*) > 0 FROM dev_curated.orders WHERE dt = '{{ ds }}'",
    )
    create_cluster = EmrCreateJobFlowOperator(
        task_id="create_cluster",
        job_flow_overrides={"Name": "sales-orders-{{ ds_nodash }}"},
    )
    add_steps = EmrAddStepsOperator(
        task_id="add_steps",
        job_flow_id="{{ ti.xcom_pull(task_ids='create_cluster') }}",
        steps=[
            {
                "Name": "aggregate",
                "ActionOnFailure": "TERMINATE_CLUSTER",
                "HadoopJarStep": {
                    "Jar": "command-runner.jar",
                    "Args": [
                        "spark-submit",
                        "s3://mwaa-elt-dev-source/scripts/aggregate-0123abcd.py",
                        "--from",
                        "{{ data_interval_start | ds }}",
                        "--to",
                        "{{ data_interval_end | ds }}",
                    ],
                },
            }
        ],
    )
    step_done = EmrStepSensor(
        task_id="step_done",
        job_flow_id="{{ ti.xcom_pull(task_ids='create_cluster') }}",
        step_id="{{ ti.xcom_pull(task_ids='add_steps')[0] }}",
        deferrable=True,
    )
    terminate = EmrTerminateJobFlowOperator(
        task_id="terminate",
        job_flow_id="{{ ti.xcom_pull(task_ids='create_cluster') }}",
        trigger_rule="all_done",
    )
    landed >> partition >> load >> row_count >> create_cluster >> add_steps >> step_done
    step_done >> terminate
