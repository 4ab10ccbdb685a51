"""The hand-written variant: one plain Airflow DAG file per pipeline, as an engineer writes it.

Each file is self-contained (no shared helper module), uses the same operators and arguments as
the DAG mwaa-elt rendered, and is filled in from a string template per pipeline shape.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.dag_variants.recipe import Recipe, RecipeError, duration_code

SNS = "airflow.providers.amazon.aws.notifications.sns.SnsNotifier"
RUFF_FORMAT = (sys.executable, "-m", "ruff", "format", "--isolated", "--quiet", "--line-length=100")

ATHENA = '''\
"""{description}"""

from datetime import timedelta

import pendulum
from airflow.providers.amazon.aws.notifications.sns import SnsNotifier
from airflow.providers.amazon.aws.operators.athena import AthenaOperator
from airflow.providers.amazon.aws.operators.s3 import S3DeleteObjectsOperator
from airflow.sdk import DAG, Asset, TaskGroup

DATABASE = {database}
WORKGROUP = {workgroup}
RESULTS = {results}

with DAG(
    dag_id={dag_id},
    description={description_literal},
    doc_md={doc_md},
    schedule={schedule},
    start_date=pendulum.datetime({start.year}, {start.month}, {start.day}, tz="UTC"),
    catchup={catchup},
    max_active_runs={max_active_runs},
    is_paused_upon_creation={paused},
    tags={tags},
    default_args={{
        "owner": {owner},
        "retries": {retries},
        "retry_delay": {retry_delay},
        "on_failure_callback": [
            SnsNotifier(
                aws_conn_id={sns_conn_id},
                region_name={sns_region},
                target_arn={sns_arn},
                subject={sns_subject},
                message={sns_message},
            )
        ],
    }},
):
    create_database = AthenaOperator(
        task_id="create_database",
        query={create_database},
        database=DATABASE,
        workgroup=WORKGROUP,
        output_location=RESULTS,
        aws_conn_id={aws_conn_id},
        deferrable=True,
    )

    with TaskGroup(group_id="raw_tables"):
        create_orders = AthenaOperator(
            task_id="create_orders",
            query={create_orders},
            database=DATABASE,
            workgroup=WORKGROUP,
            output_location=RESULTS,
            aws_conn_id={aws_conn_id},
            deferrable=True,
        )
        create_customers = AthenaOperator(
            task_id="create_customers",
            query={create_customers},
            database=DATABASE,
            workgroup=WORKGROUP,
            output_location=RESULTS,
            aws_conn_id={aws_conn_id},
            deferrable=True,
        )

    drop_summary = AthenaOperator(
        task_id="drop_summary",
        query={drop_summary},
        database=DATABASE,
        workgroup=WORKGROUP,
        output_location=RESULTS,
        aws_conn_id={aws_conn_id},
        deferrable=True,
    )

    create_summary_clear = S3DeleteObjectsOperator(
        task_id="create_summary_clear",
        bucket={clear_bucket},
        prefix={clear_prefix},
        aws_conn_id={aws_conn_id},
    )

    create_summary = AthenaOperator(
        task_id="create_summary",
        query={create_summary},
        database=DATABASE,
        workgroup=WORKGROUP,
        output_location=RESULTS,
        aws_conn_id={aws_conn_id},
        deferrable=True,
        outlets=[Asset(name={asset_name}, uri={asset_uri})],
    )

    create_database >> [create_orders, create_customers] >> drop_summary
    drop_summary >> create_summary_clear >> create_summary
'''

EMR = '''\
"""{description}"""

from datetime import timedelta

import pendulum
from airflow.providers.amazon.aws.notifications.sns import SnsNotifier
from airflow.providers.amazon.aws.operators.emr import (
    EmrAddStepsOperator,
    EmrCreateJobFlowOperator,
    EmrTerminateJobFlowOperator,
)
from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor
from airflow.sdk import DAG, Asset

JOB_FLOW_ID = {job_flow_id}

with DAG(
    dag_id={dag_id},
    description={description_literal},
    doc_md={doc_md},
    schedule={schedule},
    start_date=pendulum.datetime({start.year}, {start.month}, {start.day}, tz="UTC"),
    catchup={catchup},
    max_active_runs={max_active_runs},
    is_paused_upon_creation={paused},
    tags={tags},
    default_args={{
        "owner": {owner},
        "retries": {retries},
        "retry_delay": {retry_delay},
        "on_failure_callback": [
            SnsNotifier(
                aws_conn_id={sns_conn_id},
                region_name={sns_region},
                target_arn={sns_arn},
                subject={sns_subject},
                message={sns_message},
            )
        ],
    }},
):
    create_cluster = EmrCreateJobFlowOperator(
        task_id="create_cluster",
        job_flow_overrides={job_flow_overrides},
        aws_conn_id={aws_conn_id},
    )

    clean_events_submit = EmrAddStepsOperator(
        task_id="clean_events_submit",
        job_flow_id=JOB_FLOW_ID,
        steps={clean_events_steps},
        aws_conn_id={aws_conn_id},
    )
    clean_events = EmrStepSensor(
        task_id="clean_events",
        job_flow_id=JOB_FLOW_ID,
        step_id={clean_events_step_id},
        aws_conn_id={aws_conn_id},
        poke_interval={clean_events_poke},
        timeout={clean_events_timeout},
        max_attempts={clean_events_attempts},
        deferrable=True,
    )

    build_sessions_submit = EmrAddStepsOperator(
        task_id="build_sessions_submit",
        job_flow_id=JOB_FLOW_ID,
        steps={build_sessions_steps},
        aws_conn_id={aws_conn_id},
    )
    build_sessions = EmrStepSensor(
        task_id="build_sessions",
        job_flow_id=JOB_FLOW_ID,
        step_id={build_sessions_step_id},
        aws_conn_id={aws_conn_id},
        poke_interval={build_sessions_poke},
        timeout={build_sessions_timeout},
        max_attempts={build_sessions_attempts},
        deferrable=True,
        outlets=[Asset(name={asset_name}, uri={asset_uri})],
    )

    terminate_cluster = EmrTerminateJobFlowOperator(
        task_id="terminate_cluster",
        job_flow_id=JOB_FLOW_ID,
        aws_conn_id={aws_conn_id},
        deferrable=True,
    )

    create_cluster >> [clean_events_submit, build_sessions_submit]
    clean_events_submit >> clean_events >> build_sessions_submit >> build_sessions
    [clean_events, build_sessions] >> terminate_cluster
    # Always ends the cluster, and a failed step still fails the run.
    terminate_cluster.as_teardown(setups=create_cluster)
'''


def code(value: Any) -> str:
    """`value` as Python source, SQL as a triple-quoted block; `ruff format` lays out the rest."""
    plain_block = isinstance(value, str) and "\n" in value and value[-1:] != '"'
    if plain_block and '"""' not in value and "\\" not in value:
        return '"""\\\n' + value + '"""'
    return repr(value)


def _common(recipe: Recipe) -> dict[str, Any]:
    return {
        "description": recipe.dag["description"].replace('"""', "'''"),
        "description_literal": code(recipe.dag["description"]),
        "dag_id": code(recipe.dag_id),
        "doc_md": code(recipe.dag["doc_md"]),
        "schedule": code(recipe.schedule),
        "start": recipe.start_date,
        "catchup": code(recipe.dag["catchup"]),
        "max_active_runs": code(recipe.dag["max_active_runs"]),
        "paused": code(recipe.dag["is_paused_upon_creation"]),
        "tags": code(recipe.tags),
        "owner": code(recipe.default("owner")),
        "retries": code(recipe.default("retries")),
        "retry_delay": duration_code(recipe.retry_delay_seconds),
    }


def _asset(recipe: Recipe, task_id: str) -> dict[str, str]:
    outlets = recipe.outlets(task_id)
    if len(outlets) != 1:
        raise RecipeError(f"{recipe.dag_id}.{task_id}: expected one outlet, found {outlets}")
    return {"asset_name": code(outlets[0]["name"]), "asset_uri": code(outlets[0]["uri"])}


def _sns(recipe: Recipe) -> dict[str, str]:
    kind, notifier = recipe.notifier()
    if kind != SNS:
        raise RecipeError(f"{recipe.dag_id}: the templates notify by SNS, not {kind}")
    return {
        "sns_conn_id": code(notifier["aws_conn_id"]),
        "sns_region": code(notifier["region_name"]),
        "sns_arn": code(notifier["target_arn"]),
        "sns_subject": code(notifier["subject"]),
        "sns_message": code(notifier["message"]),
    }


def athena_source(recipe: Recipe) -> str:
    first = "create_database"
    values = {
        **_common(recipe),
        **_asset(recipe, "create_summary"),
        **_sns(recipe),
        "database": code(recipe.field(first, "database")),
        "workgroup": code(recipe.field(first, "workgroup")),
        "results": code(recipe.field(first, "output_location")),
        "clear_bucket": code(recipe.field("create_summary_clear", "bucket")),
        "clear_prefix": code(recipe.field("create_summary_clear", "prefix")),
        "aws_conn_id": code(recipe.field(first, "aws_conn_id")),
    }
    for task_id in ("create_database", "drop_summary", "create_summary"):
        values[task_id] = code(recipe.field(task_id, "query"))
    for task_id in ("create_orders", "create_customers"):
        values[task_id] = code(recipe.field(f"raw_tables.{task_id}", "query"))
    return ATHENA.format(**values)


def emr_source(recipe: Recipe) -> str:
    values = {
        **_common(recipe),
        **_asset(recipe, "build_sessions"),
        **_sns(recipe),
        "job_flow_id": code(recipe.field("terminate_cluster", "job_flow_id")),
        "job_flow_overrides": code(recipe.field("create_cluster", "job_flow_overrides")),
        "aws_conn_id": code(recipe.field("create_cluster", "aws_conn_id")),
    }
    for step in ("clean_events", "build_sessions"):
        values[f"{step}_steps"] = code(recipe.field(f"{step}_submit", "steps"))
        values[f"{step}_step_id"] = code(recipe.field(step, "step_id"))
        values[f"{step}_poke"] = duration_code(recipe.field(step, "poke_interval"))
        values[f"{step}_timeout"] = duration_code(recipe.field(step, "timeout"))
        values[f"{step}_attempts"] = code(recipe.field(step, "max_attempts"))
    return EMR.format(**values)


def write(recipes: list[tuple[str, Recipe]], folder: Path) -> None:
    """Write one hand-written DAG file per (kind, recipe) into `folder`, formatted by ruff."""
    folder.mkdir(parents=True, exist_ok=True)
    for kind, recipe in recipes:
        if kind not in ("athena", "emr"):
            raise RecipeError(f"{recipe.dag_id}: no hand-written template for kind {kind!r}")
        source = athena_source(recipe) if kind == "athena" else emr_source(recipe)
        (folder / f"{recipe.dag_id}.py").write_text(source)
    # An engineer runs a formatter; the generated variant is ruff-formatted too.
    subprocess.run([*RUFF_FORMAT, str(folder)], check=True)
