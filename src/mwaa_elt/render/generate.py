"""From validated specs to DAG files (and EMR scripts) for one stage, returned as bytes."""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2

from mwaa_elt.errors import ConfigError
from mwaa_elt.parallel import map_chunks
from mwaa_elt.render.format import format_python
from mwaa_elt.render.imports import imported_modules
from mwaa_elt.render.literal import comment_text, py_literal
from mwaa_elt.render.result import (
    DAGS_DIR,
    RENDERER_VERSION,
    SCRIPTS_DIR,
    RenderedPipeline,
    RenderResult,
    templates_digest,
)
from mwaa_elt.render.view import DagView, build_view
from mwaa_elt.spec.model import Pipeline
from mwaa_elt.spec.resolve import StagePipeline, resolve_pipeline
from mwaa_elt.stage import Stage

DAG_TEMPLATE = "dag.py.j2"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _display_path(path: Path | None, real_root: Path, fallback: str) -> str:
    """`path` relative to the project (`real_root` is already resolved), posix."""
    if path is None:
        return fallback
    try:
        return path.resolve().relative_to(real_root).as_posix()
    except ValueError:
        return path.as_posix() if not path.is_absolute() else path.name


def _import_lines(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """`from module import names` groups in ruff's isort order (constants, classes, others)."""
    by_module: dict[str, set[str]] = {}
    for module, name in pairs:
        by_module.setdefault(module, set()).add(name)

    def member_key(name: str) -> tuple[int, str]:
        kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
        return kind, name

    return [
        (module, sorted(by_module[module], key=member_key))
        for module in sorted(by_module, key=str.lower)
    ]


def _raise(message: str) -> None:
    raise jinja2.TemplateError(message)


def template_environment(templates_dir: Path) -> jinja2.Environment:
    """The Jinja environment of `dag_templates/`: strict, and with the `py` literal filter."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # the output is Python; `py` is the escaping
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.do"],
    )
    env.filters["py"] = py_literal
    env.filters["comment"] = comment_text
    env.filters["import_lines"] = _import_lines
    env.globals["raise"] = _raise
    return env


def _script_key(stage: Stage, pipeline: str, script: Path, text: str) -> str:
    """Content-addressed key: a changed script gets a new key, so a live DAG keeps its own."""
    sha12 = _digest(text.encode("utf-8"))[:12]
    return f"{stage.scripts_prefix}{pipeline}/{sha12}/{script.name}"


_LEAVES = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    """JSON-ready form of a view, for hashing: dataclasses as dicts, timedeltas as seconds."""
    if type(value) in _LEAVES:  # most of a view; the checks below would all say no
        return value
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=json.dumps) if isinstance(value, set | frozenset) else items
    if hasattr(value, "total_seconds"):
        return value.total_seconds()
    return value


def content_hash(
    sp: StagePipeline, view: DagView, source: str, real_root: Path, templates: str
) -> str:
    """sha256 of everything the file is made from: spec and file bytes, the view, templates."""
    files: dict[str, str] = {}
    paths = [sp.pipeline.source, *(t.script for t in sp.tasks)]
    paths += [sp.pipeline.source_dir / t.step.sql_file for t in sp.tasks if _sql_file(t)]
    for path in paths:
        if path is not None and path.is_file():
            files[_display_path(path, real_root, path.name)] = _digest(path.read_bytes())
    inputs = {
        "renderer": RENDERER_VERSION,
        "templates": templates,
        "source": source,
        "files": files,
        "view": _plain(view),
    }
    return _digest(json.dumps(inputs, sort_keys=True, default=str).encode())


def _sql_file(task: Any) -> str | None:
    return getattr(task.step, "sql_file", None)


@dataclass(frozen=True)
class _Job:
    """What rendering any one pipeline of a batch needs (shared with forked workers as is)."""

    pipelines: Mapping[str, Pipeline]
    stage: Stage
    env: jinja2.Environment
    real_root: Path
    templates: str


_Outcome = tuple[RenderedPipeline, str, dict[str, bytes]] | list[str]


def _render_chunk(job: _Job, names: Sequence[str]) -> list[_Outcome]:
    """Each pipeline's (rendered, unformatted text, scripts), or its error messages."""
    outcomes: list[_Outcome] = []
    for name in names:
        try:
            outcomes.append(_render_one(job, job.pipelines[name]))
        except ConfigError as error:  # returned as data: exceptions are pickled lossily
            outcomes.append(error.messages)
    return outcomes


def _render_one(job: _Job, pipeline: Pipeline) -> tuple[RenderedPipeline, str, dict[str, bytes]]:
    stage, env, root = job.stage, job.env, job.real_root
    sp = resolve_pipeline(pipeline, stage)
    source = _display_path(
        pipeline.source, root, f"pipelines/{pipeline.pipeline}/{pipeline.pipeline}.yaml"
    )
    scripts: dict[str, bytes] = {}
    script_keys: dict[str, str] = {}
    for task in sp.tasks:
        if task.script is not None and task.script_text is not None:
            key = _script_key(stage, sp.dag_id, task.script, task.script_text)
            script_keys[task.id] = key
            local = PurePosixPath(SCRIPTS_DIR, *PurePosixPath(key).parts[1:]).as_posix()
            scripts[local] = task.script_text.encode("utf-8")
    view = build_view(sp, source, script_keys)
    digest = content_hash(sp, view, source, root, job.templates)
    header = {"source": source, "stage": stage.name, "content_hash": digest}
    try:
        text = env.get_template(DAG_TEMPLATE).render(view=view, header=header)
    except jinja2.TemplateError as error:
        raise ConfigError(f"{source}: the DAG template failed: {error}") from error
    rendered = RenderedPipeline(
        name=sp.dag_id,
        source=source,
        dag_path=f"{DAGS_DIR}/{sp.dag_id}.py",
        script_paths=tuple(sorted(scripts)),
        content_hash=digest,
        dag_imports=_dag_imports(text, source),
    )
    return rendered, text, scripts


def _dag_imports(text: str, source: str) -> tuple[str, ...]:
    """The modules a DAG file imports, read before it is formatted (formatting keeps every
    statement); ConfigError if the part read (up to its last import) is not Python."""
    try:
        return imported_modules(text)
    except (SyntaxError, ValueError) as error:  # ValueError: a NUL byte, before Python 3.12
        raise ConfigError(_invalid_python(source, error)) from None


def _python_problems(text: str, source: str) -> list[str]:
    """What makes the whole of a DAG file's text invalid Python, if anything."""
    try:
        ast.parse(text)
    except (SyntaxError, ValueError) as error:
        return [_invalid_python(source, error)]
    return []


def _invalid_python(source: str, error: SyntaxError | ValueError) -> str:
    where = f"line {error.lineno}: {error.msg}" if isinstance(error, SyntaxError) else error
    return (
        f"{source}: the DAG template made invalid Python ({where}); "
        "the templates in dag_templates/ must render Python — fix the template"
    )


def render_pipelines(
    pipelines: Mapping[str, Pipeline],
    stage: Stage,
    templates_dir: Path,
    *,
    project_root: Path | None = None,
) -> RenderResult:
    """Every pipeline's DAG file (ruff-formatted) and EMR scripts for `stage`, as bytes.

    Pure apart from reading the specs' files and running ruff; writes nothing. Pass pipelines
    that `validate_paths` accepted. ConfigError lists every pipeline that cannot be rendered.
    """
    root = project_root or templates_dir.parent
    job = _Job(
        pipelines=pipelines,
        stage=stage,
        env=template_environment(templates_dir),
        real_root=root.resolve(),
        templates=templates_digest(templates_dir),
    )
    # Compiled once here, not once per forked worker; an error is reported per pipeline.
    with contextlib.suppress(jinja2.TemplateError):
        job.env.get_template(DAG_TEMPLATE)
    rendered: dict[str, RenderedPipeline] = {}
    sources: dict[str, str] = {}
    files: dict[str, bytes] = {}
    names = sorted(pipelines)
    outcomes = dict(zip(names, map_chunks(_render_chunk, job, names), strict=True))
    for name, outcome in outcomes.items():
        if isinstance(outcome, list):
            continue
        item, text, scripts = outcome
        rendered[name] = item
        sources[item.dag_path] = text
        files.update(scripts)

    def problems() -> list[str]:
        """Every pipeline that cannot be rendered, in name order: its template's error, or
        what in its whole text is not Python (only the imports were parsed so far)."""
        return [
            message
            for outcome in outcomes.values()
            for message in (
                outcome
                if isinstance(outcome, list)
                else _python_problems(outcome[1], outcome[0].source)
            )
        ]

    if any(isinstance(outcome, list) for outcome in outcomes.values()):
        raise ConfigError(problems())
    try:
        formatted = format_python(sources)
    except RuntimeError:  # ruff refuses what Python's parser refuses: say where, per pipeline
        found = problems()
        if found:
            raise ConfigError(found) from None
        raise
    files.update({path: text.encode("utf-8") for path, text in formatted.items()})
    return RenderResult(
        stage=stage.name,
        airflow_version=stage.airflow.version,
        files=dict(sorted(files.items())),
        pipelines=rendered,
    )
