"""Airflow's run-time template variables for a frozen logical date, rendered as Airflow would.

SQL tests have no Airflow: `{{ ds }}`, `{{ ts_nodash }}`, `{{ macros.ds_add(ds, -1) }}`... are
rendered here from the test's logical date and the stage's schedule, with Airflow's Jinja
settings (sandboxed, undefined names are errors).
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from croniter import croniter
from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment


class MacroError(Exception):
    """A run-time template that cannot be rendered; `line` is 1-based in the template."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _DateTime(dt.datetime):
    """A datetime that prints as Airflow's pendulum DateTime does (ISO 8601 with a 'T')."""

    def __str__(self) -> str:
        return self.isoformat()


def _airflow_datetime(value: dt.datetime) -> _DateTime:
    return _DateTime.fromtimestamp(value.timestamp(), tz=dt.UTC)


def _ds_add(ds: str, days: int) -> str:
    """Airflow's macros.ds_add: `ds` shifted by `days` days."""
    return (dt.datetime.strptime(ds, "%Y-%m-%d") + dt.timedelta(days=days)).strftime("%Y-%m-%d")


def _ds_format(ds: str, input_format: str, output_format: str) -> str:
    """Airflow's macros.ds_format: `ds` re-formatted."""
    return dt.datetime.strptime(str(ds), input_format).strftime(output_format)


MACROS = SimpleNamespace(
    ds_add=_ds_add,
    ds_format=_ds_format,
    datetime=dt.datetime,
    timedelta=dt.timedelta,
    time=time,
    uuid=uuid,
    random=random.random,
)


@dataclass(frozen=True)
class RunDates:
    """The dates of one scheduled run: Airflow's logical date and data interval."""

    logical_date: dt.datetime
    data_interval_start: dt.datetime
    data_interval_end: dt.datetime


def parse_logical_date(text: str) -> dt.datetime:
    """A test's `logical_date` (YYYY-MM-DD or an ISO moment) as an aware UTC datetime."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def run_dates(logical_date: dt.datetime, schedule: str | None, airflow_major: int) -> RunDates:
    """The data interval Airflow gives a run at `logical_date` under a cron `schedule`.

    Airflow 2 runs a cron schedule over the interval from the logical date to the next tick;
    Airflow 3 (CronTriggerTimetable, its default) gives an empty interval at the logical date.
    """
    if schedule and airflow_major < 3 and schedule != "@once":
        end = croniter(schedule, logical_date).get_next(dt.datetime)
        return RunDates(logical_date, logical_date, end)
    return RunDates(logical_date, logical_date, logical_date)


def airflow_context(dates: RunDates, dag_id: str, task_id: str) -> dict[str, Any]:
    """The template variables Airflow gives a task of `dag_id` in the run at `dates`."""
    logical = _airflow_datetime(dates.logical_date)
    run_id = f"scheduled__{logical.isoformat()}"
    return {
        "ds": logical.strftime("%Y-%m-%d"),
        "ds_nodash": logical.strftime("%Y%m%d"),
        "ts": logical.isoformat(),
        "ts_nodash": logical.strftime("%Y%m%dT%H%M%S"),
        "ts_nodash_with_tz": logical.isoformat().replace("-", "").replace(":", ""),
        "logical_date": logical,
        "data_interval_start": _airflow_datetime(dates.data_interval_start),
        "data_interval_end": _airflow_datetime(dates.data_interval_end),
        "run_id": run_id,
        "dag_run": SimpleNamespace(
            run_id=run_id, logical_date=logical, run_after=logical, conf={}, dag_id=dag_id
        ),
        "dag": SimpleNamespace(dag_id=dag_id),
        "task": SimpleNamespace(task_id=task_id),
        "params": {},
        "macros": MACROS,
    }


def _filters() -> dict[str, Any]:
    # Airflow's own filters on datetimes: {{ data_interval_end | ds }} and friends.
    return {
        "ds": lambda d: d.strftime("%Y-%m-%d"),
        "ds_nodash": lambda d: d.strftime("%Y%m%d"),
        "ts": lambda d: d.isoformat(),
        "ts_nodash": lambda d: d.strftime("%Y%m%dT%H%M%S"),
        "ts_nodash_with_tz": lambda d: d.isoformat().replace("-", "").replace(":", ""),
    }


_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_ENV.filters.update(_filters())


@lru_cache(maxsize=1024)
def _template(text: str) -> Template:
    # Compiling costs far more than rendering, and tests of one task share its SQL.
    return _ENV.from_string(text)


def render(text: str, context: Mapping[str, Any]) -> str:
    """`text` with its run-time Jinja rendered; MacroError (line, message) when it cannot be."""
    if "{{" not in text and "{%" not in text and "{#" not in text:
        return text
    try:
        return _template(text).render(context)
    except TemplateSyntaxError as exc:
        raise MacroError(exc.lineno or 1, f"Jinja template error: {exc.message}") from None
    except UndefinedError as exc:
        known = ", ".join(sorted(k for k in context if k != "params"))
        raise MacroError(
            _line_of(exc, text),
            f"{exc.message}; SQL tests know these Airflow variables: {known}",
        ) from None
    except (TemplateError, ArithmeticError, TypeError, ValueError) as exc:
        raise MacroError(_line_of(exc, text), f"cannot render the template: {exc}") from None


def _line_of(exc: Exception, text: str) -> int:
    """The template line an error was raised at, from Jinja's traceback, else the first tag."""
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    if line is not None:
        return line
    first = min((i for i in (text.find("{{"), text.find("{%")) if i >= 0), default=0)
    return text.count("\n", 0, first) + 1
