"""The dag-factory variant: one YAML file per pipeline and one loader file per YAML.

The loader is dag-factory 1.1's documented pattern (`load_yaml_dags(globals_dict=globals(),
config_filepath=...)` beside its YAML, with the comment that makes Airflow's safe mode read it).
The YAML uses dag-factory's own notation for what is not plain data: `__type__` objects (Asset,
timedelta) and a provider notifier as `callback:` with its arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench.dag_variants.recipe import Recipe, RecipeError

ATHENA_OPERATOR = "airflow.providers.amazon.aws.operators.athena.AthenaOperator"
S3_DELETE_OPERATOR = "airflow.providers.amazon.aws.operators.s3.S3DeleteObjectsOperator"
EMR = "airflow.providers.amazon.aws.operators.emr"
STEP_SENSOR = "airflow.providers.amazon.aws.sensors.emr.EmrStepSensor"
ASSET = "airflow.sdk.Asset"
# dag-factory 1.1 has no setup/teardown: the closest it can say is "run when all are done".
TERMINATE_TRIGGER_RULE = "all_done"

LOADER = """\
from pathlib import Path

# The following import is here so Airflow parses this file
# from airflow import DAG
from dagfactory import load_yaml_dags

CONFIG_ROOT_DIR = Path(__file__).resolve().parent

config_file = str(CONFIG_ROOT_DIR / "{config}")

load_yaml_dags(
    globals_dict=globals(),
    config_filepath=config_file,
)
"""


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (SQL) as literal blocks, the way people write them in YAML."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _assets(recipe: Recipe, task_id: str) -> list[dict[str, str]]:
    return [{"__type__": ASSET, **outlet} for outlet in recipe.outlets(task_id)]


def _dag(recipe: Recipe) -> dict[str, Any]:
    kind, notifier = recipe.notifier()
    return {
        "description": recipe.dag["description"],
        "doc_md": recipe.dag["doc_md"],
        "schedule": recipe.schedule if recipe.schedule is not None else "None",
        "start_date": recipe.start_date,
        "catchup": recipe.dag["catchup"],
        "max_active_runs": recipe.dag["max_active_runs"],
        "is_paused_upon_creation": recipe.dag["is_paused_upon_creation"],
        "tags": recipe.tags,
        "default_args": {
            "owner": recipe.default("owner"),
            "retries": recipe.default("retries"),
            "retry_delay": {
                "__type__": "datetime.timedelta",
                "seconds": int(recipe.retry_delay_seconds),
            },
            "on_failure_callback": {
                "callback": kind,
                **{k: v for k, v in notifier.items() if k in _NOTIFIER_ARGS[kind]},
            },
        },
    }


_NOTIFIER_ARGS = {
    "airflow.providers.smtp.notifications.smtp.SmtpNotifier": ("to",),
    "airflow.providers.amazon.aws.notifications.sns.SnsNotifier": (
        "aws_conn_id",
        "region_name",
        "target_arn",
        "subject",
        "message",
    ),
}


def _athena(recipe: Recipe, task_id: str, **extra: Any) -> dict[str, Any]:
    full_id = f"{extra['task_group_name']}.{task_id}" if "task_group_name" in extra else task_id
    return {
        "operator": ATHENA_OPERATOR,
        "query": recipe.field(full_id, "query"),
        "database": recipe.field(full_id, "database"),
        "workgroup": recipe.field(full_id, "workgroup"),
        "output_location": recipe.field(full_id, "output_location"),
        "aws_conn_id": recipe.field(full_id, "aws_conn_id"),
        "deferrable": True,
        **extra,
    }


def athena_config(recipe: Recipe) -> dict[str, Any]:
    dag = _dag(recipe)
    dag["task_groups"] = {"raw_tables": {}}
    dag["tasks"] = {
        "create_database": _athena(recipe, "create_database"),
        "create_orders": _athena(
            recipe, "create_orders", task_group_name="raw_tables", dependencies=["create_database"]
        ),
        "create_customers": _athena(
            recipe,
            "create_customers",
            task_group_name="raw_tables",
            dependencies=["create_database"],
        ),
        "drop_summary": _athena(
            recipe, "drop_summary", dependencies=["create_orders", "create_customers"]
        ),
        # The CTAS's location is emptied before it runs, so a retry can write it again.
        "create_summary_clear": {
            "operator": S3_DELETE_OPERATOR,
            "bucket": recipe.field("create_summary_clear", "bucket"),
            "prefix": recipe.field("create_summary_clear", "prefix"),
            "aws_conn_id": recipe.field("create_summary_clear", "aws_conn_id"),
            "dependencies": ["drop_summary"],
        },
        "create_summary": _athena(
            recipe,
            "create_summary",
            dependencies=["create_summary_clear"],
            outlets=_assets(recipe, "create_summary"),
        ),
    }
    return {recipe.dag_id: dag}


def _step(recipe: Recipe, step: str, after: list[str]) -> dict[str, dict[str, Any]]:
    sensor: dict[str, Any] = {
        "operator": STEP_SENSOR,
        "job_flow_id": recipe.field(step, "job_flow_id"),
        "step_id": recipe.field(step, "step_id"),
        "aws_conn_id": recipe.field(step, "aws_conn_id"),
        "poke_interval": recipe.field(step, "poke_interval"),
        "timeout": recipe.field(step, "timeout"),
        "max_attempts": recipe.field(step, "max_attempts"),
        "deferrable": True,
        "dependencies": [f"{step}_submit"],
    }
    if recipe.outlets(step):
        sensor["outlets"] = _assets(recipe, step)
    return {
        f"{step}_submit": {
            "operator": f"{EMR}.EmrAddStepsOperator",
            "job_flow_id": recipe.field(f"{step}_submit", "job_flow_id"),
            "steps": recipe.field(f"{step}_submit", "steps"),
            "aws_conn_id": recipe.field(f"{step}_submit", "aws_conn_id"),
            "dependencies": after,
        },
        step: sensor,
    }


def emr_config(recipe: Recipe) -> dict[str, Any]:
    dag = _dag(recipe)
    dag["tasks"] = {
        "create_cluster": {
            "operator": f"{EMR}.EmrCreateJobFlowOperator",
            "job_flow_overrides": recipe.field("create_cluster", "job_flow_overrides"),
            "aws_conn_id": recipe.field("create_cluster", "aws_conn_id"),
        },
        **_step(recipe, "clean_events", ["create_cluster"]),
        **_step(recipe, "build_sessions", ["create_cluster", "clean_events"]),
        "terminate_cluster": {
            "operator": f"{EMR}.EmrTerminateJobFlowOperator",
            "job_flow_id": recipe.field("terminate_cluster", "job_flow_id"),
            "aws_conn_id": recipe.field("terminate_cluster", "aws_conn_id"),
            "deferrable": True,
            "trigger_rule": TERMINATE_TRIGGER_RULE,
            "dependencies": ["create_cluster", "clean_events", "build_sessions"],
        },
    }
    return {recipe.dag_id: dag}


def write(recipes: list[tuple[str, Recipe]], folder: Path) -> None:
    """Write `<dag_id>.yml` and its loader `<dag_id>.py` per (kind, recipe) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for kind, recipe in recipes:
        if kind not in ("athena", "emr"):
            raise RecipeError(f"{recipe.dag_id}: no dag-factory template for kind {kind!r}")
        config = athena_config(recipe) if kind == "athena" else emr_config(recipe)
        name = f"{recipe.dag_id}.yml"
        text = yaml.dump(config, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
        (folder / name).write_text(text)
        (folder / f"{recipe.dag_id}.py").write_text(LOADER.format(config=name))
