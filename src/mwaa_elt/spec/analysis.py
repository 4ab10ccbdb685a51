"""What a pipeline's SQL and templates mean, checked against the stages: the driver.

Each SQL text is parsed once (sql_parse caches it); the rules live in their own modules:
catalog (tables, databases, columns, destructive statements), s3_locations (where data is
read and written), quality (a check's shape) and templates (run-time names). Runs on a spec
that is valid on its own, so every field has its type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from mwaa_elt.errors import ConfigError
from mwaa_elt.spec import catalog as cat
from mwaa_elt.spec.model import Pipeline, ScheduleAfter, Task
from mwaa_elt.spec.pydantic_errors import key_text
from mwaa_elt.spec.quality import check_shape_problems
from mwaa_elt.spec.reads import read_bytes
from mwaa_elt.spec.s3_locations import (
    clear_location,
    location_problems,
    overlaps,
    statement_locations,
)
from mwaa_elt.spec.sql_parse import Statement, Templated, parse, templated
from mwaa_elt.spec.stage_vars import TextProblem, resolve_stage_vars
from mwaa_elt.spec.templates import computed_name_problems, template_problems
from mwaa_elt.stage import Stage

Where = Path | tuple[str | int, ...]
SQL_KINDS = ("athena", "unload", "check")
CLEAR_SUFFIX = "_clear"  # render/view.py's: the task that empties a folder before a write


@dataclass(frozen=True)
class Finding:
    """A problem at a position of a SQL file (Path) or of a spec field's text (YAML path);
    `inner` False: at the field itself (its line, not a position inside its text)."""

    where: Where
    problem: TextProblem
    inner: bool = True


@dataclass
class Analysis:
    """What one pipeline's analysis found, and what it hands to the checks across specs."""

    findings: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    creates: list[str] = field(default_factory=list)
    pending: list[tuple[cat.PendingRead, Where, bool]] = field(default_factory=list)


@dataclass
class _Text:
    task: Task
    index: int
    where: Where
    text: str


def _sql_texts(pipeline: Pipeline) -> list[_Text]:
    found = []
    for index, task in enumerate(pipeline.tasks):
        if task.kind not in SQL_KINDS:
            continue
        step: Any = task.step
        if step.sql is not None:
            found.append(_Text(task, index, ("tasks", index, task.kind, "sql"), step.sql))
        elif step.sql_file is not None:
            path = pipeline.source_dir / step.sql_file
            try:
                text = read_bytes(path).decode("utf-8").removeprefix("\ufeff")
            except (OSError, UnicodeDecodeError):
                continue  # reported by the file checks
            found.append(_Text(task, index, path, text))
    return found


def _strings(value: Any, path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in _strings(v, (*path, k))]
    if isinstance(value, list):
        return [x for i, v in enumerate(value) for x in _strings(v, (*path, i))]
    return []


def _ancestors(pipeline: Pipeline) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for task in pipeline.task_order():
        found[task.id] = set()
        for dep in task.depends_on:
            found[task.id] |= {dep, *found.get(dep, set())}
    return found


def unchecked_sql(pipeline: Pipeline) -> tuple[str, ...]:
    """`<task>: <why>` for each task whose SQL is not analysed (skip_sql_checks), for the
    stage's manifest: what went live unchecked stays visible."""
    return tuple(
        f"{task.id}: {task.step.skip_sql_checks}"  # type: ignore[attr-defined]
        for task in pipeline.tasks
        if getattr(task.step, "skip_sql_checks", None)
    )


def analyze(pipeline: Pipeline, stages: Mapping[str, Stage]) -> Analysis:
    """Every finding of the meaning of `pipeline`'s SQL and templates in `stages`."""
    result = Analysis()
    texts = _sql_texts(pipeline)
    _templates(pipeline, texts, stages, result)
    skipped = {t.id for t in pipeline.tasks if getattr(t.step, "skip_sql_checks", None)}
    for task in pipeline.tasks:
        reason = getattr(task.step, "skip_sql_checks", None)
        if reason:
            index = pipeline.tasks.index(task)
            result.warnings.append(
                Finding(
                    ("tasks", index, task.kind, "skip_sql_checks"),
                    TextProblem(1, 1, f"SQL of task '{task.id}' is not analysed: {reason}"),
                    inner=False,
                )
            )
    databases = tuple(sorted(set.intersection(*(set(s.glue_databases) for s in stages.values()))))
    catalog = cat.Catalog(databases)
    for source in pipeline.sources:
        catalog.tables[source.table] = cat.Table(
            source.table, None, tuple(c.lower() for c in source.columns) if source.columns else None
        )
    parsed: dict[int, list[tuple[_Text, Templated, Statement]]] = {}
    for item in texts:
        if item.task.id in skipped:
            continue
        result_ = parse(item.text)
        if result_.problems:
            continue  # reported by the SQL check
        tpl = templated(item.text)
        parsed.setdefault(item.index, []).extend((item, tpl, s) for s in result_.statements)
    own = {}
    for entries in parsed.values():
        for item, tpl, statement in entries:
            if statement.kind in {"ctas", "create_table", "create_view"}:
                target = cat.target_of(statement)
                if target is not None:
                    ref = cat.table_ref(tpl, target)
                    if ref.name is not None:
                        own.setdefault(ref.name, item.task.id)
    result.creates = sorted(own)
    ancestors = _ancestors(pipeline)
    order = {t.id: i for i, t in enumerate(pipeline.tasks)}
    for task in pipeline.task_order():
        index = order[task.id]
        for item, tpl, statement in parsed.get(index, []):
            _statement(item, tpl, statement, catalog, own, ancestors, stages, result)
        if task.kind in {"check", "wait_for_partition"} and task.id not in skipped:
            _table_field(pipeline, task, index, catalog, own, ancestors, result)
    _locations(pipeline, parsed, catalog, stages, result)
    _clear_clashes(pipeline, texts, skipped, result)
    return result


def _clear_clashes(
    pipeline: Pipeline, texts: list[_Text], skipped: set[str], result: Analysis
) -> None:
    """The generator adds `<id>_clear` before an athena CTAS or UNLOAD: no task may be it."""
    ids = {
        (f"{t.group}." if t.group else "") + t.id: index for index, t in enumerate(pipeline.tasks)
    }
    for item in texts:
        if item.task.kind != "athena" or item.task.id in skipped:
            continue
        if clear_location(item.text) is None:
            continue
        prefix = f"{item.task.group}." if item.task.group else ""
        clear = prefix + item.task.id + CLEAR_SUFFIX
        if clear in ids:
            index = ids[clear]
            where = ("tasks", index, "id")
            message = (
                f"{key_text(where)}: Airflow task id '{clear}' would come from both this task "
                f"and the generated task that clears the folder task '{item.task.id}' writes; "
                "rename this task"
            )
            result.findings.append(Finding(where, TextProblem(1, 1, message), inner=False))


def _templates(
    pipeline: Pipeline, sql_texts: list[_Text], stages: Mapping[str, Stage], result: Analysis
) -> None:
    majors: dict[int, list[str]] = {}
    for stage in stages.values():
        majors.setdefault(stage.airflow.major, []).append(stage.name)
    asset_stages = set()
    for name in stages:
        override = pipeline.stages.get(name)
        schedule = (
            override.schedule
            if override is not None and "schedule" in override.model_fields_set
            else pipeline.schedule
        )
        if isinstance(schedule, ScheduleAfter):
            asset_stages.add(name)
    databases = tuple(sorted({d for s in stages.values() for d in s.glue_databases}))
    texts: list[tuple[Where, str]] = []
    for index, task in enumerate(pipeline.tasks):
        step = task.step.model_dump(exclude_unset=True)
        for path, text in _strings(step, ("tasks", index, task.kind)):
            if path[-1] not in {"sql_file", "script", "skip_sql_checks"}:
                texts.append((path, text))
    texts += [(t.where, t.text) for t in sql_texts if isinstance(t.where, Path)]
    frozen = tuple((major, tuple(names)) for major, names in sorted(majors.items()))
    for where, text in texts:
        found = list(_template_problems(text, frozen, frozenset(asset_stages), databases))
        found += computed_name_problems(text, stages)
        result.findings.extend(Finding(where, p) for p in found)


@lru_cache(maxsize=4096)
def _template_problems(
    text: str,
    majors: tuple[tuple[int, tuple[str, ...]], ...],
    asset_stages: frozenset[str],
    databases: tuple[str, ...],
) -> tuple[TextProblem, ...]:
    # Copies of a spec repeat their fields' texts; the answer depends on nothing else.
    by_major = {major: list(names) for major, names in majors}
    return tuple(template_problems(text, by_major, asset_stages=asset_stages, databases=databases))


def _add(result: Analysis, item: _Text, line: int, col: int, message: str) -> None:
    result.findings.append(Finding(item.where, TextProblem(line, col, message)))


def _resolve_read(
    ref: cat.TableRef,
    task: Task,
    catalog: cat.Catalog,
    own: dict[str, str],
    ancestors: dict[str, set[str]],
) -> str | None:
    """Why a table read does not resolve in this pipeline; '' to hand it on across specs."""
    assert ref.name is not None
    creator = own.get(ref.name)
    if creator is not None:
        if creator == task.id or creator in ancestors.get(task.id, set()):
            return None
        return (
            f"table '{ref.written}' is created by task '{creator}', which does not run before "
            f"task '{task.id}'; add '{creator}' to its depends_on"
        )
    if ref.name in catalog.tables:
        return None
    return ""


def _statement(
    item: _Text,
    tpl: Templated,
    statement: Statement,
    catalog: cat.Catalog,
    own: dict[str, str],
    ancestors: dict[str, set[str]],
    stages: Mapping[str, Stage],
    result: Analysis,
) -> None:
    task = item.task
    node = statement.node
    at = (statement.line, statement.col)
    if statement.kind == "drop_database":
        _add(
            result,
            item,
            *at,
            "DROP DATABASE is refused: databases belong to the stage "
            "(Pulumi provisions them); drop the tables this pipeline creates instead",
        )
        return
    if task.kind == "check" and task.step.sql_file is None and task.step.sql is None:
        return
    if task.kind == "check" and statement.kind == "select":
        for problem in check_shape_problems(statement):
            result.findings.append(Finding(item.where, problem))
    target = cat.target_of(statement)
    target_ref = cat.table_ref(tpl, target) if target is not None else None
    if statement.kind == "create_database" and node is not None:
        name = node.this.name if isinstance(node.this, cat.exp.Expression) else ""
        if name and tpl.expression_at(name) is None:
            _add(
                result,
                item,
                *at,
                f"database '{name}' is not one the stages provision; write "
                f"{{{{ db.<name> }}}} ({', '.join(catalog.databases)})",
            )
    if target_ref is not None:
        problem = cat.database_problem(target_ref, catalog)
        if problem:
            _add(result, item, target_ref.line, target_ref.col, problem)
        destructive = statement.kind in {"drop_table", "drop_view", "delete"} or (
            statement.kind == "insert" and bool(node is not None and node.args.get("overwrite"))
        )
        if destructive and target_ref.name is not None and target_ref.name not in own:
            verb = {"drop_table": "DROP TABLE", "drop_view": "DROP VIEW", "delete": "DELETE"}.get(
                statement.kind, "INSERT OVERWRITE"
            )
            _add(
                result,
                item,
                target_ref.line,
                target_ref.col,
                f"{verb} on '{target_ref.written}', which this pipeline does not create; a "
                "pipeline only drops, deletes from or overwrites its own tables (created by "
                "one of its tasks)",
            )
        if statement.kind == "insert" and target_ref.name is not None:
            why = _resolve_read(target_ref, task, catalog, own, ancestors)
            if why:
                _add(result, item, target_ref.line, target_ref.col, why)
            elif why == "":
                result.pending.append(
                    (
                        cat.PendingRead(target_ref.name, target_ref.line, target_ref.col),
                        item.where,
                        True,
                    )
                )
    query = cat.query_of(statement)
    if query is None:
        return
    ctes = cat.cte_names(query)
    refs: dict[str, str] = {}
    for table in query.find_all(cat.exp.Table):
        ref = cat.table_ref(tpl, table)
        if table.db and ref.database is not None and not ref.literal_database:
            refs[table.db] = ref.database
        if ref.name is None:
            if ref.literal_database and table.name.lower() not in ctes:
                problem = cat.database_problem(ref, catalog)
                if problem:
                    _add(result, item, ref.line, ref.col, problem)
            continue
        problem = cat.database_problem(ref, catalog)
        if problem:
            _add(result, item, ref.line, ref.col, problem)
            continue
        why = _resolve_read(ref, task, catalog, own, ancestors)
        if why:
            _add(result, item, ref.line, ref.col, why)
        elif why == "":
            result.pending.append((cat.PendingRead(ref.name, ref.line, ref.col), item.where, True))
    columns: tuple[str, ...] | None = None
    if statement.kind in {"create_table"}:
        columns = cat.declared_columns(statement)
    else:
        found, columns = cat.column_problems(tpl, query, refs, catalog)
        for line, col, message in found:
            _add(result, item, line, col, message)
        if statement.kind == "insert" and target_ref is not None and target_ref.name and columns:
            known = catalog.tables.get(target_ref.name)
            listed = (
                node.this.expressions
                if node is not None and hasattr(node.this, "expressions")
                else []
            )
            if known and known.columns and not listed and len(columns) != len(known.columns):
                _add(
                    result,
                    item,
                    *at,
                    f"INSERT gives {len(columns)} columns, but '{target_ref.written}' has "
                    f"{len(known.columns)} ({', '.join(known.columns)})",
                )
    _register(statement, target_ref, columns, task, catalog, tpl)


def _register(
    statement: Statement,
    target_ref: cat.TableRef | None,
    columns: tuple[str, ...] | None,
    task: Task,
    catalog: cat.Catalog,
    tpl: Templated,
) -> None:
    if statement.kind not in {"ctas", "create_table", "create_view"} or target_ref is None:
        return
    if target_ref.name is None:
        return
    if statement.kind == "create_table":
        columns = cat.declared_columns(statement)
    location = None
    for loc in statement_locations(tpl, statement):
        location = loc.uri
    catalog.tables[target_ref.name] = cat.Table(target_ref.name, task.id, columns, location)


def _table_field(
    pipeline: Pipeline,
    task: Task,
    index: int,
    catalog: cat.Catalog,
    own: dict[str, str],
    ancestors: dict[str, set[str]],
    result: Analysis,
) -> None:
    step: Any = task.step
    table = getattr(step, "table", None)
    if not isinstance(table, str):
        return
    ref = cat.field_table_ref(table)
    if ref is None or ref.name is None:
        return
    where = ("tasks", index, task.kind, "table")
    why = _resolve_read(ref, task, catalog, own, ancestors)
    if why:
        result.findings.append(
            Finding(where, TextProblem(1, 1, f"{key_text(where)}: {why}"), inner=False)
        )
        return
    if why == "":
        result.pending.append((cat.PendingRead(ref.name, 1, 1), where, False))
        return
    known = catalog.tables.get(ref.name)
    for column in getattr(step, "not_null", None) or []:
        if known is not None and known.columns is not None and column.lower() not in known.columns:
            result.findings.append(
                Finding(
                    ("tasks", index, task.kind, "not_null"),
                    TextProblem(
                        1,
                        1,
                        f"tasks[{index}].check.not_null: unknown column '{column}' "
                        f"of {ref.name}; {cat.did_you_mean(column, list(known.columns))}",
                    ),
                    inner=False,
                )
            )


def _locations(
    pipeline: Pipeline,
    parsed: dict[int, list[tuple[_Text, Templated, Statement]]],
    catalog: cat.Catalog,
    stages: Mapping[str, Stage],
    result: Analysis,
) -> None:
    own_locations = {
        t.name: t.location for t in catalog.tables.values() if t.task is not None and t.location
    }
    checks: list[tuple[Where, int, int, str, str, str, str | None]] = []
    for entries in parsed.values():
        for item, tpl, statement in entries:
            target = cat.target_of(statement)
            ref = cat.table_ref(tpl, target) if target is not None else None
            for loc in statement_locations(tpl, statement):
                checks.append(
                    (
                        item.where,
                        loc.line,
                        loc.col,
                        loc.uri,
                        loc.access,
                        loc.what,
                        ref.name if ref is not None else None,
                    )
                )
            if statement.kind == "insert" and ref is not None and ref.name in own_locations:
                uri = own_locations[ref.name]
                assert uri is not None
                checks.append(
                    (
                        item.where,
                        ref.line,
                        ref.col,
                        uri,
                        "insert",
                        f"INSERT into {ref.written}, whose location",
                        ref.name,
                    )
                )
    for index, task in enumerate(pipeline.tasks):
        if task.kind == "unload":
            to = task.step.to  # type: ignore[attr-defined]
            checks.append((("tasks", index, "unload", "to"), 0, 0, to, "export", "unload.to", None))
    seen: set[tuple[Any, ...]] = set()
    owned = tuple(sorted((n, loc) for n, loc in own_locations.items() if loc is not None))
    for where, line, col, uri, access, what, table in checks:
        messages = _location_messages(uri, access, what, table, owned, stages)
        if messages:
            for message in messages[:1]:
                # One problem per location: the first stage that refuses it says why.
                key = (where, line, col)
                if key in seen:
                    continue
                seen.add(key)
                if line:
                    result.findings.append(Finding(where, TextProblem(line, col, message)))
                else:
                    result.findings.append(
                        Finding(
                            where,
                            TextProblem(1, 1, f"{key_text(where)}: {message}"),
                            inner=False,
                        )
                    )


_LOCATION_CACHE: dict[tuple[Any, ...], tuple[tuple[Stage, ...], list[str]]] = {}


def _location_messages(
    uri: str,
    access: str,
    what: str,
    table: str | None,
    owned: tuple[tuple[str, str], ...],
    stages: Mapping[str, Stage],
) -> list[str]:
    """Why `uri` is refused, in the first stage that refuses it; a pure function of its
    arguments, so copies of a spec share the work (the entry holds the stages it is keyed by)."""
    held = tuple(stages.values())
    key = (uri, access, what, table, owned, tuple(map(id, held)))
    found = _LOCATION_CACHE.get(key)
    if found is None:
        if len(_LOCATION_CACHE) >= 4096:
            _LOCATION_CACHE.clear()
        found = (held, _refusal(uri, access, what, table, owned, stages))
        _LOCATION_CACHE[key] = found
    return found[1]


def _refusal(
    uri: str,
    access: str,
    what: str,
    table: str | None,
    owned: tuple[tuple[str, str], ...],
    stages: Mapping[str, Stage],
) -> list[str]:
    for stage in stages.values():
        try:
            resolved = resolve_stage_vars(uri, stage, source="location")
        except ConfigError:
            continue
        mode = "read" if access == "read" else "write"
        messages = location_problems(resolved, mode, what, stage, stages)
        if access in {"export", "write"} and not messages:
            for name, other in owned:
                if name == table:
                    continue
                try:
                    other_resolved = resolve_stage_vars(other, stage, source="location")
                except ConfigError:
                    continue
                if overlaps(resolved, other_resolved):
                    messages.append(
                        f"{what} '{uri}' overlaps the data of table {name} ({other}), which "
                        "this pipeline creates; it is cleared before writing: give it a folder "
                        "of its own"
                    )
        if messages:
            return messages[:1]
    return []
