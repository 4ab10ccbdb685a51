"""Strict run-time templates: every name a `{{ }}` reads exists when Airflow renders it.

A name is a stage variable (stage, db, lake, athena: resolved by mwaa-elt) or a key of the task
context of the stage's Airflow line. Asset-triggered runs on Airflow 3 have no logical date, so
an `after:`-scheduled pipeline may not read the logical-date keys there. Constant expressions
(`{{ 'prod' ~ '_analytics' }}`) are evaluated, so a name built from pieces is checked like a
literal one.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from functools import lru_cache

from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from mwaa_elt.spec.stage_vars import RESERVED, TextProblem, expressions, hard_coded_problems
from mwaa_elt.stage import Stage

# The task context's keys, from airflow.utils.context.KNOWN_CONTEXT_KEYS (2.11) and
# airflow.sdk.definitions.context.Context (3.0); tests/spec compares them with the installed
# Airflow of each check environment.
_COMMON = frozenset(
    [
        "conn",
        "dag",
        "dag_run",
        "data_interval_end",
        "data_interval_start",
        "ds",
        "ds_nodash",
        "exception",
        "expanded_ti_count",
        "inlet_events",
        "inlets",
        "logical_date",
        "macros",
        "map_index_template",
        "outlet_events",
        "outlets",
        "params",
        "prev_data_interval_end_success",
        "prev_data_interval_start_success",
        "prev_end_date_success",
        "prev_start_date_success",
        "reason",
        "run_id",
        "task",
        "task_instance",
        "task_instance_key_str",
        "templates_dict",
        "test_mode",
        "ti",
        "try_number",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "var",
    ]
)
CONTEXT: dict[int, frozenset[str]] = {
    2: _COMMON
    | frozenset(
        [
            "conf",
            "execution_date",
            "next_ds",
            "next_ds_nodash",
            "next_execution_date",
            "prev_ds",
            "prev_ds_nodash",
            "prev_execution_date",
            "prev_execution_date_success",
            "tomorrow_ds",
            "tomorrow_ds_nodash",
            "triggering_dataset_events",
            "yesterday_ds",
            "yesterday_ds_nodash",
        ]
    ),
    3: _COMMON | {"start_date", "task_reschedule_count", "triggering_asset_events"},
}
_MACROS = frozenset(
    [
        "datetime",
        "datetime_diff_for_humans",
        "dateutil",
        "ds_add",
        "ds_format",
        "ds_format_locale",
        "json",
        "random",
        "time",
        "timedelta",
        "uuid",
        "yaml",
    ]
)
MACROS: dict[int, frozenset[str]] = {2: _MACROS, 3: _MACROS}
# Keys that need a logical date: undefined in an asset-triggered run on Airflow 3.
LOGICAL_DATE = frozenset(
    [
        "ds",
        "ds_nodash",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "logical_date",
        "data_interval_start",
        "data_interval_end",
    ]
)
# Jinja's own globals, usable in any template.
_JINJA_GLOBALS = frozenset({"range", "dict", "lipsum", "cycler", "joiner", "namespace", "loop"})
_ENV = SandboxedEnvironment()
_REPLACED_IN_3 = {
    "execution_date": "logical_date",
    "next_ds": "data_interval_end | ds",
    "prev_ds": "prev_data_interval_start_success | ds",
    "tomorrow_ds": "macros.ds_add(ds, 1)",
    "yesterday_ds": "macros.ds_add(ds, -1)",
    "triggering_dataset_events": "triggering_asset_events",
    "conf": "var or params",
}


@lru_cache(maxsize=1024)
def _undeclared(text: str) -> frozenset[str] | None:
    try:
        return frozenset(meta.find_undeclared_variables(_ENV.parse(text)))
    except (TemplateSyntaxError, RecursionError):
        return None  # the Jinja syntax check reports it


@lru_cache(maxsize=4096)
def _macro_attributes(inner: str) -> tuple[str, ...]:
    try:
        tree = _ENV.parse("{{" + inner + "}}")
    except (TemplateSyntaxError, RecursionError):
        return ()
    return tuple(
        node.attr
        for node in tree.find_all(nodes.Getattr)
        if isinstance(node.node, nodes.Name) and node.node.name == "macros"
    )


def template_problems(
    text: str,
    majors: Mapping[int, list[str]],
    *,
    asset_stages: frozenset[str] = frozenset(),
    databases: tuple[str, ...] = (),
) -> list[TextProblem]:
    """Problems of the run-time names of `text` on every Airflow line in `majors` (major ->
    its stages); `asset_stages` run the pipeline on asset events (Airflow 3: no logical date)."""
    if "{{" not in text and "{%" not in text:
        return []
    undeclared = _undeclared(text)
    if undeclared is None:
        return []
    problems: list[TextProblem] = []
    for expr in expressions(text):
        names = expr.names & undeclared
        if not names or expr.render_time:
            continue
        for name in sorted(names):
            message = _name_problem(name, expr.inner, majors, asset_stages, databases)
            if message:
                problems.append(TextProblem(expr.line, expr.col, message))
        for attr in _macro_attributes(expr.inner) if "macros" in names else ():
            for major in sorted(majors):
                if attr not in MACROS[major]:
                    close = difflib.get_close_matches(attr, sorted(MACROS[major]), n=1)
                    hint = f"did you mean macros.{close[0]}?" if close else "see Airflow's macros"
                    problems.append(
                        TextProblem(
                            expr.line,
                            expr.col,
                            f"'macros.{attr}' is not an Airflow {major} macro; {hint}",
                        )
                    )
                    break
    return problems


def _name_problem(
    name: str,
    inner: str,
    majors: Mapping[int, list[str]],
    asset_stages: frozenset[str],
    databases: tuple[str, ...],
) -> str | None:
    if name in _JINJA_GLOBALS:
        return None
    shown = "{{" + inner + "}}"
    for major in sorted(majors):
        known = CONTEXT[major]
        stages = ", ".join(majors[major])
        if name not in known:
            if major == 3 and name in _REPLACED_IN_3:
                hint = f"use {{{{ {_REPLACED_IN_3[name]} }}}}"
            elif name in {"database", "databases", "dbs"} and databases:
                hint = f"did you mean {{{{ db.{databases[0]} }}}}? (a stage's databases: db.<name>)"
            else:
                close = difflib.get_close_matches(name, sorted(known | set(RESERVED)), n=1)
                hint = (
                    f"did you mean '{close[0]}'?" if close else "see Airflow's template reference"
                )
            return (
                f"'{shown}' reads '{name}', which is neither a stage variable (stage, db, lake, "
                f"athena) nor an Airflow {major} template variable (stage {stages}); {hint}"
            )
        if major == 3 and name in LOGICAL_DATE:
            hit = [s for s in majors[major] if s in asset_stages]
            if hit:
                return (
                    f"'{shown}' reads '{name}', but in stage {', '.join(hit)} (Airflow 3) this "
                    "pipeline runs on asset events, which have no logical date, so it is "
                    "undefined; use {{ run_id }} (unique per run) or "
                    "{{ dag_run.run_after | ds }}, or schedule the pipeline with cron there"
                )
    return None


def computed_name_problems(text: str, stages: Mapping[str, Stage]) -> list[TextProblem]:
    """Names of a stage that Jinja builds from constants (`{{ 'prod' ~ '_analytics' }}`, or
    `{{ 'pr' ~ 'od' }}_analytics`): the text as Airflow renders those, checked like literal text."""
    if "{{" not in text:
        return []
    pieces: list[str] = []
    spans: list[tuple[int, int, int, int]] = []  # (start in rendered, end, line, col)
    last = 0
    length = 0
    for expr in expressions(text):
        if expr.names:
            continue
        value = _constant(expr.inner)
        if value is None:
            continue
        pieces.append(text[last : expr.start])
        length += expr.start - last
        spans.append((length, length + len(value), expr.line, expr.col))
        pieces.append(value)
        length += len(value)
        last = expr.end
    if not spans:
        return []
    pieces.append(text[last:])
    rendered = "".join(pieces)
    problems = []
    for problem in hard_coded_problems(rendered, stages):
        offset = _offset(rendered, problem.line, problem.col)
        for start, end, line, col in spans:
            # The name must touch a computed value; literal text alone is reported as it is.
            if offset < end and offset + 1 > start - 64 and _touches(rendered, offset, start, end):
                message = problem.message.replace("hard-coded name", "name computed as")
                problems.append(TextProblem(line, col, message))
                break
    return problems


def _touches(rendered: str, offset: int, start: int, end: int) -> bool:
    word_end = offset
    while word_end < len(rendered) and (rendered[word_end].isalnum() or rendered[word_end] in "_-"):
        word_end += 1
    return offset < end and word_end > start


def _offset(text: str, line: int, col: int) -> int:
    offset = 0
    for _ in range(line - 1):
        offset = text.index("\n", offset) + 1
    return offset + col - 1


_UNBOUNDED = re.compile(r"[*%]|\d{4,}|range|center|format|indent|wordwrap|join|repeat")


@lru_cache(maxsize=1024)
def _constant(inner: str) -> str | None:
    """The value of a `{{ }}` that reads no variable, as Airflow would render it."""
    # Only small string building: anything that could allocate without bound is not evaluated.
    if len(inner) > 500 or _UNBOUNDED.search(inner):
        return None
    try:
        value = _ENV.from_string("{{" + inner + "}}").render()
    except Exception:  # the sandbox refuses, or the expression fails: not a constant name
        return None
    return value if len(value) <= 1000 else None
