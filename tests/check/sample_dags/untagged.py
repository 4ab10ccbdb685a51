"""Fails tags only; notifies through a DAG-level on_failure_callback instead of email."""

from __future__ import annotations

import pendulum
from airflow.providers.amazon.aws.operators.athena import AthenaOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

with DAG(
    dag_id="untagged",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    on_failure_callback=lambda context: None,
    default_args={"owner": "sales-analytics", "retries": 1},
) as dag:
    AthenaOperator(
        task_id="load", query="SELECT 1", database="dev_curated", output_location="s3://results/"
    )
