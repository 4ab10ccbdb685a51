"""Validate pipeline specs: every problem of every file, located at file:line:col.

Returns data (`ValidationReport`) and never raises for user input; the CLI formats it.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from mwaa_elt.errors import ConfigError
from mwaa_elt.parallel import map_chunks
from mwaa_elt.spec.analysis import Analysis, Finding, analyze
from mwaa_elt.spec.catalog import did_you_mean
from mwaa_elt.spec.folder import path_problem
from mwaa_elt.spec.model import EMR_KINDS, TASK_KINDS, Cluster, Pipeline, stage_clusters
from mwaa_elt.spec.problems import FileReport, Problem, ValidationReport
from mwaa_elt.spec.pydantic_errors import key_text, located_messages
from mwaa_elt.spec.reads import read_bytes, reading_once
from mwaa_elt.spec.safety import safety_problems
from mwaa_elt.spec.sql_check import Engine, condition_problems, sql_problems
from mwaa_elt.spec.stage_vars import (
    TextProblem,
    hard_coded_problems,
    jinja_syntax_problems,
    resolve_stage_vars,
    stage_var_problems,
)
from mwaa_elt.spec.summary import IncrementalValidation, SpecSummary, after_problem, consistent
from mwaa_elt.spec.yaml_source import MAX_FILE_BYTES, Mark, YamlDocument, decode, load_yaml
from mwaa_elt.stage import Stage

YamlPath = tuple[str | int, ...]
_TABLE = re.compile(r"^\{\{\s*db\.[a-z][a-z0-9_]*\s*\}\}\.[A-Za-z_][A-Za-z0-9_]{0,127}$")
_SCRIPT_SUFFIXES = {"hive": (".hql", ".sql", ".q"), "spark": (".py",)}
_NEEDED_APP = {"hive": "Hive", "spark": "Spark", "trino": "Trino"}
_SQL_ENGINE: dict[str, Engine] = {
    "athena": "athena",
    "unload": "athena",
    "check": "athena",
    "trino": "trino",
}


@dataclass
class _File:
    """What one spec contributes to the checks across specs."""

    report: FileReport
    doc: YamlDocument | None = None
    name: str | None = None
    produces: list[str] = field(default_factory=list)
    creates: list[str] = field(default_factory=list)  # tables its SQL creates
    reads: list[tuple[str, Problem]] = field(default_factory=list)  # for other pipelines to create


class _Collector:
    """Collects the problems of one spec and the files it references."""

    def __init__(self, path: Path, doc: YamlDocument | None) -> None:
        self.path = path
        self.doc = doc
        self.problems: list[Problem] = []
        self._lines: list[str] | None = None

    def at(self, where: YamlPath | Mark, message: str, *, value: bool = False) -> None:
        """Report at a YAML key (or its value) or at an explicit mark of the spec."""
        if isinstance(where, Mark):
            mark = where
        elif self.doc is None:
            mark = Mark(1, 1)
        elif value and where in self.doc.value_marks:
            mark = self.doc.value_marks[where]
        else:
            mark = self.doc.mark(where)
        self.problems.append(Problem(self.path, mark.line, mark.col, message))

    def in_field(self, where: YamlPath, problem: TextProblem) -> None:
        """Report a problem found at (line, col) inside the string value at `where`."""
        assert self.doc is not None
        start = self.doc.value_marks.get(where)
        if start is None:
            self.at(where, f"{key_text(where)}: {problem.message}")
            return
        style = self.doc.styles.get(where)
        if style in {"|", ">"}:
            if self._lines is None:
                self._lines = self.doc.text.split("\n")
            content = start.line  # 0-based index of the first content line
            while content < len(self._lines) and not self._lines[content].strip():
                content += 1
            indent = 0
            if content < len(self._lines):
                indent = len(self._lines[content]) - len(self._lines[content].lstrip(" "))
            mark = Mark(content + problem.line, indent + problem.col)
        elif problem.line == 1:
            quote = 1 if style in {"'", '"'} else 0
            mark = Mark(start.line, start.col + quote + problem.col - 1)
        else:
            mark = Mark(start.line + problem.line - 1, problem.col)
        message = f"{key_text(where)}: {problem.message}"
        self.problems.append(Problem(self.path, mark.line, mark.col, message))

    def in_file(self, file: Path, problem: TextProblem) -> None:
        self.problems.append(Problem(file, problem.line, problem.col, problem.message))


# -- one spec ----------------------------------------------------------------------------------


def validate_file(path: Path, stages: Mapping[str, Stage]) -> FileReport:
    """Every problem of one spec on its own (without the checks across specs)."""
    return _check_file(path, stages).report


def _check_file(path: Path, stages: Mapping[str, Stage]) -> _File:
    with reading_once():  # the file checks, safety scans and analysis share each file's read
        return _check_file_once(path, stages)


def _check_file_once(path: Path, stages: Mapping[str, Stage]) -> _File:
    report = FileReport(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        report.problems.append(Problem(path, 1, 1, f"cannot read the spec: {exc.strerror}"))
        return _File(report)
    doc, yaml_problems = load_yaml(raw)
    if doc is None:
        report.problems.extend(
            Problem(path, p.mark.line, p.mark.col, p.message) for p in yaml_problems
        )
        return _File(report)
    out = _Collector(path, doc)
    data = doc.data
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        out.at(
            Mark(1, 1),
            f"expected a mapping of keys (pipeline:, owner:, tasks: ...), got {kind}; "
            "see pipelines/ for examples",
        )
        report.problems = out.problems
        return _File(report, doc)
    pipeline: Pipeline | None = None
    try:
        pipeline = Pipeline.model_validate(data)
    except ValidationError as exc:
        for mark, message in located_messages(exc, Pipeline, doc):
            out.at(mark, message)
    _check_identity(out, data, path)
    _check_graph(out, data)
    _check_stage_keys(out, data, stages)
    _check_alert_topics(out, data, stages)
    tasks = data.get("tasks")
    for index, item in enumerate(tasks if isinstance(tasks, list) else []):
        _check_task(out, item, index, path.parent, stages)
    _check_cluster(out, data, stages)
    out.problems += safety_problems(path, doc, stages)
    analysis: Analysis | None = None
    reads: list[tuple[str, Problem]] = []
    if not out.problems and pipeline is not None:
        pipeline._source = path
        analysis = analyze(pipeline, stages)
        for finding in analysis.findings:
            _report_finding(out, finding)
        for read, where, inner in analysis.pending:
            at = Finding(where, TextProblem(read.line, read.col, read.table), inner)
            reads.append((read.table, _finding_problem(out, at)))
        report.warnings = sorted({_finding_problem(out, f) for f in analysis.warnings})
    report.problems = sorted(set(out.problems))
    if not report.problems and pipeline is not None:
        report.pipeline = pipeline
    name = data.get("pipeline") if isinstance(data.get("pipeline"), str) else None
    produces = (
        [p for p in data.get("produces") or [] if isinstance(p, str)]
        if isinstance(data.get("produces"), list)
        else []
    )
    creates = analysis.creates if analysis is not None else []
    return _File(report, doc, name, produces, creates, reads)


def _report_finding(out: _Collector, finding: Finding) -> None:
    if isinstance(finding.where, Path):
        out.in_file(finding.where, finding.problem)
    elif finding.inner:
        out.in_field(finding.where, finding.problem)
    else:
        out.at(finding.where, finding.problem.message)


def _finding_problem(out: _Collector, finding: Finding) -> Problem:
    before = len(out.problems)
    _report_finding(out, finding)
    return out.problems.pop() if len(out.problems) > before else Problem(out.path, 1, 1, "")


def _check_identity(out: _Collector, data: dict[str, Any], path: Path) -> None:
    name = data.get("pipeline")
    if isinstance(name, str) and name != path.stem:
        out.at(
            ("pipeline",),
            f"pipeline: '{name}' must equal the file name '{path.stem}'; rename the file to "
            f"{name}.yaml or set pipeline: {path.stem}",
        )


def _check_graph(out: _Collector, data: dict[str, Any]) -> None:
    tasks = data.get("tasks")
    if not isinstance(tasks, list):
        return
    first_line: dict[str, int] = {}
    edges: dict[str, list[str]] = {}
    for index, item in enumerate(tasks):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        task_id = item["id"]
        if task_id in first_line:
            out.at(
                ("tasks", index, "id"),
                f"tasks[{index}].id: duplicate task id '{task_id}' (first at line "
                f"{first_line[task_id]}); task ids must be unique",
            )
            continue
        assert out.doc is not None
        first_line[task_id] = out.doc.mark(("tasks", index, "id")).line
        deps = item.get("depends_on")
        edges[task_id] = [d for d in deps if isinstance(d, str)] if isinstance(deps, list) else []
    ids = list(first_line)
    unknown = 0
    for index, item in enumerate(tasks):
        if not isinstance(item, dict) or not isinstance(item.get("depends_on"), list):
            continue
        for position, dep in enumerate(item["depends_on"]):
            if isinstance(dep, str) and dep not in first_line:
                unknown += 1
                hint = _task_hint(dep, ids, suggest=unknown <= _MAX_SUGGESTIONS)
                out.at(
                    ("tasks", index, "depends_on", position),
                    f"tasks[{index}].depends_on: '{dep}' is not a task of this pipeline; {hint}",
                )
    cycle = _find_cycle(edges)
    if cycle:
        index = next(
            i for i, t in enumerate(tasks) if isinstance(t, dict) and t.get("id") == cycle[0]
        )
        out.at(
            ("tasks", index, "depends_on"),
            f"dependency cycle: {' -> '.join(cycle)}; remove one of these depends_on entries",
        )


# A suggestion compares the name with every task id: a few are worth it, thousands (a spec of
# thousands of tasks that all name missing ones) took minutes.
_MAX_SUGGESTIONS = 20
_MAX_LISTED = 10


def _task_hint(dep: str, ids: list[str], *, suggest: bool) -> str:
    close = difflib.get_close_matches(dep, ids, n=1) if suggest else []
    if close:
        return f"did you mean '{close[0]}'?"
    more = f", ... ({len(ids)} in all)" if len(ids) > _MAX_LISTED else ""
    return f"tasks: {', '.join(ids[:_MAX_LISTED])}{more}"


def _find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or None (iterative DFS: no recursion limit)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in edges:
        if state.get(start):
            continue
        path: list[str] = []
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(edges[start]))]
        state[start] = 1
        path.append(start)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif child in edges and state.get(child) == 1:
                return [*path[path.index(child) :], child]
            elif child in edges and not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(edges[child])))
    return None


def _check_stage_keys(out: _Collector, data: dict[str, Any], stages: Mapping[str, Stage]) -> None:
    overrides = data.get("stages")
    if not isinstance(overrides, dict):
        return
    for name in overrides:
        if name not in stages:
            close = difflib.get_close_matches(name, list(stages), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            out.at(
                ("stages", name),
                f"stages: '{name}' is not a stage; {hint}known stages: {', '.join(stages)}",
            )


def _check_alert_topics(out: _Collector, data: dict[str, Any], stages: Mapping[str, Stage]) -> None:
    """An sns_topic must be one of the alert topics every stage it runs in provisions."""
    places: list[tuple[YamlPath, Any, list[str]]] = [
        (("on_failure", "sns_topic"), data.get("on_failure"), list(stages))
    ]
    overrides = data.get("stages")
    if isinstance(overrides, dict):
        for name, override in overrides.items():
            if isinstance(override, dict) and name in stages:
                places.append(
                    (
                        ("stages", name, "on_failure", "sns_topic"),
                        override.get("on_failure"),
                        [name],
                    )
                )
    for where, on_failure, stage_names in places:
        topic = on_failure.get("sns_topic") if isinstance(on_failure, dict) else None
        if not isinstance(topic, str):
            continue
        missing = [n for n in stage_names if topic not in stages[n].config.alert_topics]
        if missing:
            known = sorted({t for n in missing for t in stages[n].config.alert_topics})
            out.at(
                where,
                f"{key_text(where)}: '{topic}' is not an alert topic of stage "
                f"{', '.join(missing)} (alertTopics in stacks/Pulumi.<stage>.yaml); "
                f"known: {', '.join(known) or 'none'}",
                value=True,
            )


# -- tasks -------------------------------------------------------------------------------------


def _strings(value: Any, path: YamlPath) -> Iterator[tuple[YamlPath, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _text_problems(
    text: str, stages: Mapping[str, Stage], *, scripts: bool = False, jinja: bool = True
) -> list[TextProblem]:
    found = jinja_syntax_problems(text) if jinja else []
    found += stage_var_problems(text, stages, scripts=scripts)
    found += hard_coded_problems(text, stages)
    return found


def _check_task(
    out: _Collector, item: Any, index: int, spec_dir: Path, stages: Mapping[str, Stage]
) -> None:
    """Checks of one task that need files, stages or SQL; works on the raw YAML, so a task
    with a field error still gets its SQL and paths checked in the same run."""
    if not isinstance(item, dict):
        return
    kinds = [k for k in TASK_KINDS if isinstance(item.get(k), dict)]
    if len(kinds) != 1:
        return
    kind = kinds[0]
    step: dict[str, Any] = item[kind]
    step_path: YamlPath = ("tasks", index, kind)
    label = f"tasks[{index}].{kind}"
    # Every string field is a template: check its stage variables and hard-coded names.
    for path, text in _strings(step, step_path):
        if path[-1] in {"sql_file", "script"}:
            continue
        for problem in _text_problems(text, stages):
            out.in_field(path, problem)
    engine = _SQL_ENGINE.get(kind)
    if engine is not None:
        options = {"engine": engine, "single": engine == "athena", "query": kind != "athena"}
        if step.get("skip_sql_checks"):  # the analysis reports it as a warning
            options["skip"] = True
        sql_text = step.get("sql")
        if options.get("skip"):
            sql_text = None
        if isinstance(sql_text, str) and not jinja_syntax_problems(sql_text):
            for problem in sql_problems(sql_text, **_sql_options(options)):
                out.in_field((*step_path, "sql"), problem)
        sql_file = step.get("sql_file")
        if isinstance(sql_file, str) and sql_file:
            where = (*step_path, "sql_file")
            file = _referenced_file(out, where, spec_dir, sql_file, (".sql",))
            text = _read_text(out, where, file) if file else None
            if text is not None and file is not None:
                found = _text_problems(text, stages)
                if not jinja_syntax_problems(text) and not options.get("skip"):
                    found += sql_problems(text, **_sql_options(options))
                for problem in found:
                    out.in_file(file, problem)
    script = step.get("script")
    if kind in _SCRIPT_SUFFIXES and isinstance(script, str) and script:
        where = (*step_path, "script")
        file = _referenced_file(out, where, spec_dir, script, _SCRIPT_SUFFIXES[kind])
        text = _read_text(out, where, file) if file else None
        if text is not None and file is not None:
            for problem in _text_problems(text, stages, scripts=kind == "hive", jinja=False):
                out.in_file(file, problem)
    if kind == "unload" and isinstance(step.get("to"), str):
        _check_unload_target(out, (*step_path, "to"), step["to"])
    if kind == "wait_for_s3":
        for key in ("key", "prefix"):
            if isinstance(step.get(key), str):
                where = (*step_path, key)
                _check_s3_uri(out, where, f"{label}.{key}", step[key], key == "prefix", stages)
    if kind in {"wait_for_partition", "check"}:
        table = step.get("table")
        if isinstance(table, str) and not _TABLE.match(table):
            out.at(
                (*step_path, "table"),
                f"{label}.table: '{table}' is not a table reference; write "
                "{{ db.<database> }}.<table>, e.g. {{ db.movielens }}.ratings (the table name "
                "is letters, digits and '_')",
            )
        condition_key = "expression" if kind == "wait_for_partition" else "where"
        condition = step.get(condition_key)
        if isinstance(condition, str) and not jinja_syntax_problems(condition):
            for problem in condition_problems(condition):
                out.in_field((*step_path, condition_key), problem)


def _sql_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k != "skip"}


def _check_unload_target(out: _Collector, where: YamlPath, to: str) -> None:
    match = re.match(r"^\{\{\s*lake\.uri\s*\}\}(.*)$", to, re.DOTALL)
    rest = match.group(1) if match else ""
    if not match or not rest:
        out.at(
            where,
            f"{key_text(where)}: unload clears '{to}' before writing, so it must be a folder "
            "inside this stage's own prefix: write {{ lake.uri }}<folder>/, e.g. "
            "{{ lake.uri }}exports/scifi/",
        )
    elif not to.endswith("/"):
        out.at(where, f"{key_text(where)}: '{to}' must end with '/': unload writes a folder")


def _check_s3_uri(
    out: _Collector,
    where: YamlPath,
    label: str,
    value: str,
    folder: bool,
    stages: Mapping[str, Stage],
) -> None:
    if not (value.startswith("s3://") or re.match(r"^\{\{\s*lake\.", value)):
        out.at(
            where,
            f"{label}: '{value}' is not an S3 location; start with {{{{ lake.bucket_uri }}}}, "
            "{{ lake.uri }} or s3://",
        )
        return
    if folder and not value.endswith("/"):
        out.at(where, f"{label}: a prefix ends with '/'; write '{value}/'")
        return
    # What the sensor gets in each stage must name a bucket and a key, as rendering requires.
    for stage in stages.values():
        try:
            uri = resolve_stage_vars(value, stage, source=label)
        except ConfigError:
            return  # a bad stage variable is reported on its own
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if not uri.startswith("s3://") or not bucket or not key:
            out.at(
                where,
                f"{label}: '{value}' is '{uri}' in stage {stage.name}, not s3://<bucket>/<key>; "
                "write {{ lake.bucket_uri }}<key>, {{ lake.uri }}<key> or s3://<bucket>/<key>",
            )
            return


def _referenced_file(
    out: _Collector, where: YamlPath, spec_dir: Path, rel: str, suffixes: tuple[str, ...]
) -> Path | None:
    """The file `rel` names inside the spec's folder, or None after reporting why not."""
    label = key_text(where)
    posix = PurePosixPath(rel.replace("\\", "/"))
    if posix.is_absolute() or rel.startswith("~") or re.match(r"^[A-Za-z]:", rel):
        out.at(
            where,
            f"{label}: '{rel}' is absolute; write a path relative to the spec's folder, "
            "e.g. sql/create_movies.sql",
        )
        return None
    if ".." in posix.parts:
        out.at(
            where,
            f"{label}: '{rel}' leaves the pipeline's folder; keep SQL and scripts inside "
            f"{spec_dir}/",
        )
        return None
    if not posix.suffix or posix.suffix not in suffixes:
        out.at(where, f"{label}: '{rel}' should be a {' or '.join(suffixes)} file")
        return None
    file = spec_dir / posix
    link = path_problem(spec_dir, rel)
    if link is not None:
        out.at(where, f"{label}: {link}")
        return None
    if not os.path.lexists(file):
        out.at(where, f"{label}: file not found: {file}{_file_hint(spec_dir, rel, suffixes)}")
        return None
    # `path_problem` saw every component without following a link: a regular file reached
    # through folders only, with no `..`, is inside the pipeline's folder.
    return file


def _file_hint(spec_dir: Path, rel: str, suffixes: tuple[str, ...]) -> str:
    candidates = []
    for count, found in enumerate(spec_dir.rglob("*")):
        if count > 500:  # a hint is not worth a slow walk of a huge folder
            break
        if found.suffix in suffixes:
            candidates.append(found.relative_to(spec_dir).as_posix())
    close = difflib.get_close_matches(rel, candidates, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _read_text(out: _Collector, where: YamlPath, file: Path) -> str | None:
    try:
        raw = read_bytes(file)
    except OSError as exc:
        out.at(where, f"{key_text(where)}: cannot read {file}: {exc.strerror}")
        return None
    text, problems = decode(raw, what="a SQL or script file", limit=MAX_FILE_BYTES)
    for problem in problems:
        out.in_file(file, TextProblem(problem.mark.line, problem.mark.col, problem.message))
    return text


# -- cluster -----------------------------------------------------------------------------------


def _cluster_fields(value: Any) -> dict[str, Any] | None:
    """The fields of a raw cluster mapping when they are valid on their own, else None."""
    if value is None:
        return {}
    try:
        return Cluster.model_validate(value).model_dump(exclude_unset=True)
    except ValidationError:
        return None  # reported by the pipeline's validation


def _check_cluster(out: _Collector, data: dict[str, Any], stages: Mapping[str, Stage]) -> None:
    tasks = data.get("tasks") if isinstance(data.get("tasks"), list) else []
    emr_tasks = [
        (index, kind)
        for index, item in enumerate(tasks)
        if isinstance(item, dict)
        for kind in EMR_KINDS
        if kind in item
    ]
    if not emr_tasks:
        if data.get("cluster") is not None:
            out.at(
                ("cluster",), "cluster: no task runs on EMR (hive, spark, trino); remove cluster"
            )
        return
    for stage_name, raw_override, merged in stage_clusters(data, stages, _cluster_fields):
        stage = stages[stage_name]
        where: YamlPath = ("stages", stage_name, "cluster") if raw_override else ("cluster",)
        if merged.get("existing_cluster_id"):
            others = sorted(set(merged) - {"existing_cluster_id"})
            if others:
                out.at(
                    where,
                    f"{key_text(where)}: in stage {stage_name} existing_cluster_id targets a "
                    f"running cluster, so {', '.join(others)} cannot apply; remove them",
                )
            continue
        apps = merged.get("applications") or list(stage.config.emr.applications)
        for index, kind in emr_tasks:
            needed = _NEEDED_APP[kind]
            if needed not in apps:
                out.at(
                    ("tasks", index, kind),
                    f"tasks[{index}].{kind}: needs {needed} on the cluster, but in stage "
                    f"{stage_name} the applications are {', '.join(apps)}; add {needed} to "
                    "cluster.applications",
                )


# -- across specs ------------------------------------------------------------------------------


def validate_paths(paths: list[Path], stages: dict[str, Stage]) -> ValidationReport:
    """Validate specs together: each file, plus DAG ids and dataset schedules across them."""
    return _across(_check_files(paths, stages))


def _check_chunk(stages: Mapping[str, Stage], paths: Sequence[Path]) -> list[_File]:
    return [_for_across(_check_file(path, stages)) for path in paths]


def _for_across(item: _File) -> _File:
    """`item` with its document cut to what the checks across specs read (the schedules and
    the marks they report at): worker processes send far less back."""
    doc = item.doc
    if doc is None:
        return item
    data: Any = doc.data
    paths: list[YamlPath] = [("pipeline",)]
    if isinstance(data, dict):
        slim: dict[str, Any] = {}
        if "schedule" in data:
            slim["schedule"] = data["schedule"]
        overrides = data.get("stages")
        if isinstance(overrides, dict):
            slim["stages"] = {
                name: {"schedule": override["schedule"]} if "schedule" in override else {}
                for name, override in overrides.items()
                if isinstance(override, dict)
            }
        paths += [where for where, _ in _after_refs(data)]
        data = slim
    marks = {
        path[:end]: doc.key_marks[path[:end]]
        for path in paths
        for end in range(1, len(path) + 1)
        if path[:end] in doc.key_marks
    }
    return _File(
        item.report,
        YamlDocument(data=data, text="", key_marks=marks),
        item.name,
        item.produces,
        item.creates,
        item.reads,
    )


def _check_files(paths: Sequence[Path], stages: Mapping[str, Stage]) -> list[_File]:
    """Each file checked on its own, over the machine's cores for large batches."""
    return map_chunks(_check_chunk, stages, paths)


def _summary(item: _File) -> SpecSummary | None:
    if item.report.problems or item.name is None or item.doc is None:
        return None
    refs = tuple(ref for _, ref in _after_refs(item.doc.data))
    reads = tuple(sorted({table for table, _ in item.reads}))
    return SpecSummary(item.name, tuple(item.produces), refs, tuple(item.creates), reads)


def validate_incremental(
    paths: list[Path], stages: dict[str, Stage], trusted: Mapping[Path, SpecSummary]
) -> IncrementalValidation:
    """Like `validate_paths`, trusting `trusted` specs to be valid on their own as summarized.

    Only the other specs are checked file by file; the checks across specs cover all of them.
    The caller guarantees a trusted spec and every file it reads are unchanged since it was
    summarized. On any problem the report is exactly `validate_paths`' for every spec.
    """
    fresh_paths = [path for path in paths if path not in trusted]
    fresh = dict(zip(fresh_paths, _check_files(fresh_paths, stages), strict=True))
    summaries: dict[Path, SpecSummary] = {}
    for path in paths:
        summary = trusted[path] if path in trusted else _summary(fresh[path])
        if summary is None:
            break
        summaries[path] = summary
    else:
        if consistent(summaries.values()):
            report = ValidationReport(files=[fresh[path].report for path in fresh_paths])
            return IncrementalValidation(report, summaries)
    # Something is wrong: locating it needs every spec's document, so check them all.
    rest = [path for path in paths if path not in fresh]
    fresh.update(zip(rest, _check_files(rest, stages), strict=True))
    report = _across([fresh[path] for path in paths])
    valid = {path: _summary(fresh[path]) for path in paths}
    return IncrementalValidation(report, {p: s for p, s in valid.items() if s is not None})


def _across(files: list[_File]) -> ValidationReport:
    """Add the problems across specs (DAG ids, dataset schedules) to files checked one by one."""
    owners: dict[str, _File] = {}
    for item in files:
        if item.name is None:
            continue
        if item.name in owners:
            first = owners[item.name].report.path
            _add(
                item,
                ("pipeline",),
                f"pipeline: '{item.name}' is also the DAG id of {first}; DAG ids must be unique",
            )
        else:
            owners[item.name] = item
    produces = {name: owner.produces for name, owner in owners.items()}
    for item in files:
        if item.doc is None or not isinstance(item.doc.data, dict):
            continue
        for where, ref in _after_refs(item.doc.data):
            message = after_problem(ref, item.name, produces)
            if message:
                _add(item, where, f"{key_text(where[:-1])}: {message}")
    _check_reads(files)
    for item in files:
        item.report.problems = sorted(set(item.report.problems))
        if item.report.problems:
            item.report.pipeline = None
    return ValidationReport(files=[item.report for item in files])


def _check_reads(files: list[_File]) -> None:
    """Tables a pipeline reads but does not create must be created by another pipeline."""
    creators: dict[str, str] = {}
    for item in files:
        for table in item.creates:
            creators.setdefault(table, item.name or str(item.report.path))
    known = sorted(creators)
    for item in files:
        for table, at in item.reads:
            if table in creators:
                continue
            message = (
                f"table '{table}' is created by no task of this pipeline nor of any other "
                f"pipeline validated with it, and is not declared under sources:; "
                f"{did_you_mean(table, known)}"
            )
            item.report.problems.append(Problem(at.path, at.line, at.col, message))


def _add(item: _File, where: YamlPath, message: str) -> None:
    mark = item.doc.mark(where) if item.doc is not None else Mark(1, 1)
    item.report.problems.append(Problem(item.report.path, mark.line, mark.col, message))


def _after_refs(data: dict[str, Any]) -> Iterator[tuple[YamlPath, str]]:
    schedules: list[tuple[YamlPath, Any]] = [(("schedule",), data.get("schedule"))]
    overrides = data.get("stages")
    if isinstance(overrides, dict):
        for name, override in overrides.items():
            if isinstance(override, dict):
                schedules.append((("stages", name, "schedule"), override.get("schedule")))
    for where, schedule in schedules:
        if isinstance(schedule, dict) and isinstance(schedule.get("after"), list):
            for index, ref in enumerate(schedule["after"]):
                if isinstance(ref, str) and "." in ref:
                    yield (*where, "after", index), ref


def load_pipelines(paths: list[Path], stages: dict[str, Stage]) -> dict[str, Pipeline]:
    """The pipelines of `paths` when all are valid; ConfigError with every problem otherwise."""
    report = validate_paths(paths, stages)
    if not report.ok:
        raise ConfigError([str(p) for p in report.problems])
    return report.pipelines
