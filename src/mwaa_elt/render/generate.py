"""From validated specs to DAG files (and EMR scripts) for one stage, returned as bytes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2

from mwaa_elt.errors import ConfigError
from mwaa_elt.render.format import format_python
from mwaa_elt.render.literal import comment_text, py_literal
from mwaa_elt.render.view import DagView, build_view
from mwaa_elt.spec.model import Pipeline
from mwaa_elt.spec.resolve import StagePipeline, resolve_pipeline
from mwaa_elt.stage import Stage

# Bump when the generator changes what it writes in a way the templates do not show.
RENDERER_VERSION = "1"
DAG_TEMPLATE = "dag.py.j2"
DAGS_DIR = "dags"
SCRIPTS_DIR = "scripts"


@dataclass(frozen=True)
class RenderedPipeline:
    """What rendering one pipeline produced: its DAG file, its scripts and its inputs' hash."""

    name: str
    source: str  # the spec, relative to the project, posix
    dag_path: str  # relative to the output folder, e.g. dags/sales.py
    script_paths: tuple[str, ...]
    content_hash: str  # sha256 of spec, SQL, scripts, stage settings, templates, renderer


@dataclass(frozen=True)
class RenderResult:
    """Every file of one stage's render, keyed by posix path relative to the output folder."""

    stage: str
    airflow_version: str
    files: Mapping[str, bytes]
    pipelines: Mapping[str, RenderedPipeline]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _display_path(path: Path | None, root: Path, fallback: str) -> str:
    if path is None:
        return fallback
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
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


def templates_digest(templates_dir: Path) -> str:
    """sha256 over every template's path and bytes: a template change changes every hash."""
    hasher = hashlib.sha256()
    for path in sorted(p for p in templates_dir.rglob("*") if p.is_file()):
        hasher.update(path.relative_to(templates_dir).as_posix().encode() + b"\0")
        hasher.update(path.read_bytes() + b"\0")
    return hasher.hexdigest()


def _script_key(stage: Stage, pipeline: str, script: Path, text: str) -> str:
    """Content-addressed key: a changed script gets a new key, so a live DAG keeps its own."""
    sha12 = _digest(text.encode("utf-8"))[:12]
    return f"{stage.scripts_prefix}{pipeline}/{sha12}/{script.name}"


def _plain(value: Any) -> Any:
    """JSON-ready form of a view, for hashing: dataclasses as dicts, timedeltas as seconds."""
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


def content_hash(sp: StagePipeline, view: DagView, source: str, root: Path, templates: str) -> str:
    """sha256 of everything the file is made from: spec and file bytes, the view, templates."""
    files: dict[str, str] = {}
    paths = [sp.pipeline.source, *(t.script for t in sp.tasks)]
    paths += [sp.pipeline.source_dir / t.step.sql_file for t in sp.tasks if _sql_file(t)]
    for path in paths:
        if path is not None and path.is_file():
            files[_display_path(path, root, path.name)] = _digest(path.read_bytes())
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


def _render_one(
    pipeline: Pipeline, stage: Stage, env: jinja2.Environment, root: Path, templates: str
) -> tuple[RenderedPipeline, str, dict[str, bytes]]:
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
    digest = content_hash(sp, view, source, root, templates)
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
    )
    return rendered, text, scripts


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
    env = template_environment(templates_dir)
    templates = templates_digest(templates_dir)
    errors: list[str] = []
    rendered: dict[str, RenderedPipeline] = {}
    sources: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for name in sorted(pipelines):
        try:
            item, text, scripts = _render_one(pipelines[name], stage, env, root, templates)
        except ConfigError as error:
            errors.extend(error.messages)
            continue
        rendered[name] = item
        sources[item.dag_path] = text
        files.update(scripts)
    if errors:
        raise ConfigError(errors)
    formatted = format_python(sources)
    files.update({path: text.encode("utf-8") for path, text in formatted.items()})
    return RenderResult(
        stage=stage.name,
        airflow_version=stage.airflow.version,
        files=dict(sorted(files.items())),
        pipelines=rendered,
    )
