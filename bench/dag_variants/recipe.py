"""Read what the other variants must repeat from a loaded mwaa-elt DAG (probe.describe_dag's data).

The hand-written and dag-factory variants take their values (SQL, names, EMR steps) from the DAG
mwaa-elt rendered, so all three carry the same data; the code around the values is each variant's
own. A value the templates expect but the DAG lacks is a clear error, not a silent difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

CRON_TIMETABLES = ("CronTriggerTimetable", "CronDataIntervalTimetable")


class RecipeError(Exception):
    """The rendered DAG does not have the shape the benchmark's templates were written for."""


@dataclass(frozen=True)
class Recipe:
    """One rendered DAG as the writers of the other variants need it."""

    dag: dict[str, Any]

    @property
    def dag_id(self) -> str:
        return str(self.dag["dag_id"])

    def task(self, task_id: str) -> dict[str, Any]:
        try:
            return self.dag["tasks"][task_id]
        except KeyError:
            raise RecipeError(
                f"{self.dag_id}: mwaa-elt rendered no task {task_id!r} "
                f"(it has {sorted(self.dag['tasks'])}); update bench/dag_variants/ to the new shape"
            ) from None

    def field(self, task_id: str, name: str) -> Any:
        task = self.task(task_id)
        if name in task["fields"]:
            return task["fields"][name]
        if name in task["attributes"]:
            return task["attributes"][name]
        raise RecipeError(f"{self.dag_id}.{task_id}: no field {name!r} in the rendered DAG")

    def outlets(self, task_id: str) -> list[dict[str, str]]:
        return [{"name": o["name"], "uri": o["uri"]} for o in self.task(task_id)["outlets"]]

    @property
    def schedule(self) -> str | None:
        timetable = self.dag["timetable"]
        if timetable == "NullTimetable":
            return None
        if timetable in CRON_TIMETABLES:
            return str(self.dag["schedule"])
        raise RecipeError(f"{self.dag_id}: schedule {timetable} is not one the benchmark writes")

    @property
    def start_date(self) -> date:
        return date.fromisoformat(str(self.dag["start_date"])[:10])

    @property
    def tags(self) -> list[str]:
        return list(self.dag["tags"])

    def default(self, name: str) -> Any:
        return self.dag["default_args"][name]

    @property
    def retry_delay_seconds(self) -> float:
        return float(self.default("retry_delay")["timedelta_seconds"])

    def notifier(self) -> tuple[str, dict[str, Any]]:
        """The one failure notifier's class path and constructor values."""
        callbacks = self.default("on_failure_callback")
        if len(callbacks) != 1 or "notifier" not in callbacks[0]:
            # dag-factory 1.1 takes one callback per event; the bench's specs keep to one.
            raise RecipeError(f"{self.dag_id}: expected one failure notifier, found {callbacks}")
        return callbacks[0]["notifier"], callbacks[0]["fields"]


def duration_code(seconds: float) -> str:
    """A duration as a person writes it: `timedelta(minutes=5)`."""
    whole = int(seconds)
    if whole != seconds:
        return f"timedelta(seconds={seconds!r})"
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if whole and whole % size == 0:
            return f"timedelta({unit}={whole // size})"
    return f"timedelta(seconds={whole})"
