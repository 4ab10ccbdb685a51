"""Helpers to write a spec (and its SQL files) into a scratch folder and validate it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mwaa_elt.spec import validate_paths
from mwaa_elt.stage import Stage

VALID = """\
pipeline: demo
description: A demo pipeline.
owner: analytics
schedule: "0 6 * * *"
start_date: 2024-01-01
tasks:
  - id: first
    athena: {sql: "SELECT 1"}
  - id: second
    athena: {sql_file: sql/second.sql}
    depends_on: [first]
"""
SECOND_SQL = "SELECT * FROM {{ db.movielens }}.movies WHERE ds = '{{ ds }}'\n"

Problems = list[tuple[int, int, str]]


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """Write `<tmp>/<name>/<name>.yaml` with `files` beside it; returns the spec's path."""

    def write(text: str = VALID, name: str = "demo", files: dict[str, str] | None = None) -> Path:
        folder = tmp_path / name
        (folder / "sql").mkdir(parents=True, exist_ok=True)
        (folder / "sql" / "second.sql").write_text(SECOND_SQL)
        for rel, content in (files or {}).items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(content)
        path = folder / f"{name}.yaml"
        path.write_text(text)
        return path

    return write


@pytest.fixture
def check(write_spec: Callable[..., Path], stages: dict[str, Stage]) -> Callable[..., Problems]:
    """Validate one spec text; (line, col, message) of each problem of the spec itself."""

    def run(text: str = VALID, **kwargs: object) -> Problems:
        path = write_spec(text, **kwargs)
        report = validate_paths([path], stages)
        return [(p.line, p.col, p.message) for p in report.problems if p.path == path]

    return run


@pytest.fixture
def valid() -> str:
    """A small valid spec named demo, whose second task reads sql/second.sql."""
    return VALID
