"""How a pipeline's runs change meaning when its stage crosses between Airflow 2 and 3.

Derived from each live pipeline's own spec and SQL (as promoted): its schedule kind and the
run-time names its templates read, each reported at its file:line:col. Only what applies to a
pipeline is listed; a change the generated DAGs absorb (`catchup` is always written explicitly,
`schedule_interval` is never written, Dataset/Asset imports follow the line) is not.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml
from jinja2 import TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

from mwaa_elt.spec.templates import _REPLACED_IN_3 as REPLACED_IN_3
from mwaa_elt.spec.templates import LOGICAL_DATE

_EXPRESSION = re.compile(r"\{\{(.*?)\}\}")
_ENV = SandboxedEnvironment()
_TEXT_SUFFIXES = (".yaml", ".yml", ".sql", ".hql", ".py", ".sh", ".json")
CRON_INTERVALS_OPTION = "scheduler.create_cron_data_intervals"


@dataclass(frozen=True)
class RuntimeDifference:
    """One way a pipeline's runs behave differently on the target Airflow line, and where."""

    pipeline: str
    path: str
    line: int
    col: int
    topic: str
    message: str

    def to_dict(self) -> dict[str, str | int]:
        return asdict(self)


def schedule_kind(spec: Path) -> tuple[str, int]:
    """'cron', 'after' or 'none' for a spec file, and the line of its `schedule:` key."""
    text = spec.read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    schedule = data.get("schedule") if isinstance(data, dict) else None
    line = next((n for n, raw in enumerate(text.splitlines(), 1) if raw.startswith("schedule:")), 1)
    if isinstance(schedule, dict) and "after" in schedule:
        return "after", line
    if isinstance(schedule, str) and schedule.strip():
        return "cron", line
    return "none", line


def template_names(folder: Path) -> Iterator[tuple[Path, int, int, str]]:
    """(file, line, column, name) of every run-time name a `{{ }}` of the folder's text reads."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if not path.name.endswith(_TEXT_SUFFIXES):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if line.lstrip().startswith("#") and path.suffix in {".yaml", ".yml", ".py", ".sh"}:
                continue  # a comment is not rendered
            for match in _EXPRESSION.finditer(line):
                try:
                    names = meta.find_undeclared_variables(_ENV.parse(match.group(0)))
                except TemplateSyntaxError:
                    continue
                for name in sorted(names):
                    yield path, number, match.start() + 1, name


def differences(
    pipeline: str,
    folder: Path,
    spec: Path,
    from_major: int,
    to_major: int,
    shown_root: Path,
    cron_intervals: bool = False,
) -> list[RuntimeDifference]:
    """What changes for `pipeline` (its sources in `folder`) from Airflow `from_major` to
    `to_major`; `cron_intervals` is True when the stage sets create_cron_data_intervals."""
    if from_major == to_major:
        return []

    def shown(path: Path) -> str:
        return f"(bundle) {path.relative_to(shown_root).as_posix()}"

    found: list[RuntimeDifference] = []
    kind, schedule_line = schedule_kind(spec)
    if kind == "after":
        if to_major == 3:
            message = (
                "scheduled on datasets: on Airflow 3 they are Assets and an asset-triggered run "
                "has no logical date (ds, ts, logical_date, data_interval_* are undefined); "
                "tell runs apart by run_id"
            )
        else:
            message = (
                "scheduled on other pipelines' datasets: on Airflow 2 they are Datasets "
                "(airflow.datasets) and a dataset-triggered run gets a logical date again"
            )
        found.append(
            RuntimeDifference(pipeline, shown(spec), schedule_line, 1, "asset-schedule", message)
        )
    for path, line, col, name in template_names(folder):
        where = (pipeline, shown(path), line, col)
        if to_major == 3 and name in REPLACED_IN_3:
            found.append(
                RuntimeDifference(
                    *where,
                    "removed-context",
                    f"'{name}' is not in Airflow 3's task context; use "
                    f"'{{{{ {REPLACED_IN_3[name]} }}}}' instead",
                )
            )
        elif name in LOGICAL_DATE and kind == "cron" and not cron_intervals:
            if to_major == 3:
                message = (
                    f"'{name}' under a cron schedule: Airflow 3 runs cron with "
                    "CronTriggerTimetable, so it is the run's own date, no longer the start of "
                    "the interval before it (a day later for a daily run); use "
                    "macros.ds_add(ds, -1) for the day before, or set "
                    f"{CRON_INTERVALS_OPTION}: 'True' in airflowConfigurationOptions"
                )
            else:
                message = (
                    f"'{name}' under a cron schedule: Airflow 2 gives the start of the interval "
                    "before the run, no longer the run's own date (a day earlier for a daily run)"
                )
            found.append(RuntimeDifference(*where, "cron-logical-date", message))
        elif name in LOGICAL_DATE and kind == "after" and to_major == 3:
            found.append(
                RuntimeDifference(
                    *where,
                    "asset-logical-date",
                    f"'{name}' is undefined in an asset-triggered run on Airflow 3 (no logical "
                    "date); use run_id or triggering_asset_events",
                )
            )
    return found
