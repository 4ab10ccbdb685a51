"""What a render produces, as data: light to import, for code that only reads renders."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# Bump when the generator changes what it writes in a way the templates do not show.
RENDERER_VERSION = "1"
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
    dag_imports: tuple[str, ...]  # the modules its DAG file imports (`render.imports`)


@dataclass(frozen=True)
class RenderResult:
    """Every file of one stage's render, keyed by posix path relative to the output folder."""

    stage: str
    airflow_version: str
    files: Mapping[str, bytes]
    pipelines: Mapping[str, RenderedPipeline]


# Templates of the platform's own DAGs (mwaa-dr's, `mwaa-elt dr install`), which no pipeline's
# DAG file is rendered from: changing them must not change every pipeline's hash.
PLATFORM_TEMPLATES = "platform"


def templates_digest(templates_dir: Path) -> str:
    """sha256 over every pipeline template's path and bytes: a template change changes every
    hash (the platform's own templates under `platform/` are left out)."""
    hasher = hashlib.sha256()
    files = (
        p
        for p in templates_dir.rglob("*")
        if p.is_file() and p.relative_to(templates_dir).parts[0] != PLATFORM_TEMPLATES
    )
    for path in sorted(files):
        hasher.update(path.relative_to(templates_dir).as_posix().encode() + b"\0")
        hasher.update(path.read_bytes() + b"\0")
    return hasher.hexdigest()
