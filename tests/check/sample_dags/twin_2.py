"""One of two files defining dag_id 'twin'."""

from __future__ import annotations

import pendulum
from airflow.providers.amazon.aws.operators.athena import AthenaOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

with DAG(
    dag_id="twin",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["sales"],
    default_args={
        "owner": "sales-analytics",
        "retries": 1,
        "email": ["a@example.com"],
        "email_on_failure": True,
    },
) as dag:
    AthenaOperator(
        task_id="load", query="SELECT 1", database="dev_curated", output_location="s3://results/"
    )
