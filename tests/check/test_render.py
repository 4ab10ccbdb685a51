"""Templated fields rendered by Airflow's own Jinja, as the renderer's task-level tests use them."""

from __future__ import annotations

from pathlib import Path

import pytest

from mwaa_elt.check import RenderedTask, render_tasks
from mwaa_elt.errors import ConfigError

RUN = "2024-03-05T03:00:00+00:00"
TASKS = [
    ("sales_orders", "load"),
    ("sales_orders", "create_cluster"),
    ("sales_orders", "add_steps"),
    ("sales_orders", "step_done"),
]


@pytest.fixture(scope="module")
def rendered(sample_dags: Path, airflow_version: str) -> dict[tuple[str, str], RenderedTask]:
    return render_tasks(sample_dags, airflow_version, TASKS, RUN)


def test_athena_query_renders_ds_params_and_macros(rendered: dict) -> None:
    load = rendered[("sales_orders", "load")]
    assert load.logical_date == RUN
    assert load.fields["query"] == (
        "INSERT INTO dev_curated.orders SELECT * FROM dev_raw.raw_orders "
        "WHERE dt = '2024-03-05' AND dt > '2024-03-04'"
    )
    assert load.fields["workgroup"] == "mwaa-elt-dev"


def test_emr_step_args_follow_each_lines_data_interval(rendered: dict, airflow_major: int) -> None:
    # A cron schedule means a data interval up to the next tick in Airflow 2 but a point in time
    # in Airflow 3 (CronTriggerTimetable), so `data_interval_end` differs between the lines.
    step = rendered[("sales_orders", "add_steps")].fields["steps"][0]
    end = "2024-03-06" if airflow_major == 2 else "2024-03-05"
    assert step["HadoopJarStep"]["Args"][-4:] == ["--from", "2024-03-05", "--to", end]
    assert rendered[("sales_orders", "create_cluster")].fields["job_flow_overrides"] == {
        "Name": "sales-orders-20240305"
    }


def test_xcoms_render_as_placeholders(rendered: dict) -> None:
    sensor = rendered[("sales_orders", "step_done")].fields
    assert sensor["job_flow_id"] == "<xcom:create_cluster>"
    assert sensor["step_id"] == "<xcom:add_steps[0]>"


def test_unknown_task_is_a_config_error(sample_dags: Path, airflow_version: str) -> None:
    with pytest.raises(ConfigError, match=r"cannot render sales_orders\.nope"):
        render_tasks(sample_dags, airflow_version, [("sales_orders", "nope")], RUN)
